  %cm5${i} = tensor.expand_shape %cmm${i} [[0], [1], [2, 3, 4]] output_shape [${nbc}, ${g}, ${n}, ${rc}, ${qw}] : ${cmm_type} into ${cm5_type}
  %cms${i} = tensor.extract_slice %cm5${i}[0, 0, 0, 0, 0] [${nbc}, ${g}, ${n}, ${rc}, ${ow}] [1, 1, 1, 1, 1] : ${cm5_type} to ${cms_type}
  %cb${i} = tensor.extract_slice %bias[${b0}, 0] [${nbc}, ${g}] [1, 1] : ${bias_type} to ${cb_type}
  %coe${i} = tensor.empty() : ${co_type}
  %co${i} = linalg.generic {indexing_maps = [affine_map<(n, i, j, b, g) -> (b, g, n, i, j)>, affine_map<(n, i, j, b, g) -> (b, g)>, affine_map<(n, i, j, b, g) -> (n, i, j, b, g)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%cms${i}, %cb${i} : ${cms_type}, ${cb_type}) outs(%coe${i} : ${co_type}) {
  ^bb0(%a: ${acc_elt}, %bv: f32, %o: f32):
${widen}    %s = arith.addf ${a}, %bv : f32
    linalg.yield %s : f32
  } -> ${co_type}
  %coc${i} = tensor.collapse_shape %co${i} [[0], [1], [2], [3, 4]] : ${co_type} into ${coc_type}
