  %ctc${i} = tensor.extract_slice %tc[${b0}, 0] [${nbc}, ${rows}] [1, 1] : ${tab_type} to ${ctab_type}
  %cge${i} = tensor.empty() : ${gather_type}
  %cg${i} = linalg.generic {indexing_maps = [affine_map<(b, n, i, j, r) -> (b, r)>, affine_map<(b, n, i, j, r) -> (b, n, i, j, r)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%ctc${i} : ${ctab_type}) outs(%cge${i} : ${gather_type}) {
  ^bb0(%cm: i32, %out: ${elt}):
    %n = linalg.index 1 : index
    %il = linalg.index 2 : index
    %j = linalg.index 3 : index
    %r0 = arith.constant ${r0} : index
    %sh = arith.constant ${stride_h} : index
    %sw = arith.constant ${stride_w} : index
    %i = arith.addi %il, %r0 : index
    %h = arith.muli %i, %sh : index
    %w = arith.muli %j, %sw : index
    %z32 = arith.constant 0 : i32
    %cc = arith.maxsi %cm, %z32 : i32
    %c = arith.index_cast %cc : i32 to index
    %v0 = tensor.extract %x[%n, %h, %w, %c] : ${x_type}
    %real = arith.cmpi sge, %cm, %z32 : i32
    %v = arith.select %real, %v0, %zero : f32
${narrow}    linalg.yield ${yielded} : ${elt}
  } -> ${gather_type}
  %crows${i} = tensor.collapse_shape %cg${i} [[0], [1, 2, 3], [4]] : ${gather_type} into ${crows_type}
  %cwp${i} = tensor.extract_slice %wpt[${b0}, 0, 0] [${nbc}, ${rows}, ${g}] [1, 1, 1] : ${wp_type} to ${cwp_type}
  %cae${i} = tensor.empty() : ${cmm_type}
  %cacc${i} = linalg.fill ins(${acc_zero} : ${acc_elt}) outs(%cae${i} : ${cmm_type}) -> ${cmm_type}
  %cmm${i} = linalg.batch_matmul ${matmul_attrs}ins(%crows${i}, %cwp${i} : ${crows_type}, ${cwp_type}) outs(%cacc${i} : ${cmm_type}) -> ${cmm_type}
  %cm5${i} = tensor.expand_shape %cmm${i} [[0], [1, 2, 3], [4]] output_shape [${nbc}, ${n}, ${rc}, ${ow}, ${g}] : ${cmm_type} into ${cm5_type}
  %cb${i} = tensor.extract_slice %bias[${b0}, 0] [${nbc}, ${g}] [1, 1] : ${bias_type} to ${cb_type}
  %coe${i} = tensor.empty() : ${co_type}
  %co${i} = linalg.generic {indexing_maps = [affine_map<(n, i, j, b, g) -> (b, n, i, j, g)>, affine_map<(n, i, j, b, g) -> (b, g)>, affine_map<(n, i, j, b, g) -> (n, i, j, b, g)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%cm5${i}, %cb${i} : ${cm5_type}, ${cb_type}) outs(%coe${i} : ${co_type}) {
  ^bb0(%a: ${acc_elt}, %bv: f32, %o: f32):
${widen}    %s = arith.addf ${a}, %bv : f32
    linalg.yield %s : f32
  } -> ${co_type}
  %coc${i} = tensor.collapse_shape %co${i} [[0], [1], [2], [3, 4]] : ${co_type} into ${coc_type}
