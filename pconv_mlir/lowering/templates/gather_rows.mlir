  %ctc${i} = tensor.extract_slice %tc[${b0}, 0] [${nbc}, ${rows}] [1, 1] : ${tab_type} to ${ctab_type}
  %cge${i} = tensor.empty() : ${gather_type}
  %cg${i} = linalg.generic {indexing_maps = [affine_map<(b, r, n, q) -> (b, r)>, affine_map<(b, r, n, q) -> (b, r, n, q)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%ctc${i} : ${ctab_type}) outs(%cge${i} : ${gather_type}) {
  ^bb0(%cm: i32, %out: ${elt}):
    %bl = linalg.index 0 : index
    %r = linalg.index 1 : index
    %n = linalg.index 2 : index
    %ql = linalg.index 3 : index
    %b0 = arith.constant ${b0} : index
    %q0 = arith.constant ${q0} : index
    %b = arith.addi %bl, %b0 : index
    %q = arith.addi %ql, %q0 : index
    %c32 = tensor.extract %tc[%b, %r] : ${tab_type}
    %o32 = tensor.extract %toff[%b, %r] : ${tab_type}
    %z32 = arith.constant 0 : i32
    %cc = arith.maxsi %c32, %z32 : i32
    %c = arith.index_cast %cc : i32 to index
    %o = arith.index_cast %o32 : i32 to index
    %p = arith.addi %o, %q : index
    %v0 = tensor.extract %xf[%n, %c, %p] : ${xf_type}
${mask}    %real = arith.cmpi sge, %cm, %z32 : i32
    %v = arith.select %real, ${value}, %zero : f32
${narrow}    linalg.yield ${yielded} : ${elt}
  } -> ${gather_type}
