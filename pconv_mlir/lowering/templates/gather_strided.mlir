  %cge0 = tensor.empty() : ${gather_type}
  %cg0 = linalg.generic {indexing_maps = [affine_map<(b, r, n, i, j) -> (b, r)>, affine_map<(b, r, n, i, j) -> (b, r, n, i, j)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%tc : ${tab_type}) outs(%cge0 : ${gather_type}) {
  ^bb0(%cm: i32, %out: ${elt}):
    %b = linalg.index 0 : index
    %r = linalg.index 1 : index
    %n = linalg.index 2 : index
    %i = linalg.index 3 : index
    %j = linalg.index 4 : index
    %c32 = tensor.extract %tc[%b, %r] : ${tab_type}
    %y32 = tensor.extract %tdy[%b, %r] : ${tab_type}
    %x32 = tensor.extract %tdx[%b, %r] : ${tab_type}
    %z32 = arith.constant 0 : i32
    %cc = arith.maxsi %c32, %z32 : i32
    %c = arith.index_cast %cc : i32 to index
    %dy = arith.index_cast %y32 : i32 to index
    %dx = arith.index_cast %x32 : i32 to index
    %sh = arith.constant ${stride_h} : index
    %sw = arith.constant ${stride_w} : index
    %is = arith.muli %i, %sh : index
    %js = arith.muli %j, %sw : index
    %h = arith.addi %is, %dy : index
    %w = arith.addi %js, %dx : index
    %v0 = tensor.extract ${xp}[%n, %c, %h, %w] : ${xp_type}
    %real = arith.cmpi sge, %cm, %z32 : i32
    %v = arith.select %real, %v0, %zero : f32
${narrow}    linalg.yield ${yielded} : ${elt}
  } -> ${gather_type}
