  %cwp${i} = tensor.extract_slice %wp[${b0}, 0, 0] [${nbc}, ${g}, ${rows}] [1, 1, 1] : ${wp_type} to ${cwp_type}
  %crows${i} = tensor.collapse_shape %cg${i} ${gather_collapse} : ${gather_type} into ${crows_type}
  %cae${i} = tensor.empty() : ${cmm_type}
  %cacc${i} = linalg.fill ins(${acc_zero} : ${acc_elt}) outs(%cae${i} : ${cmm_type}) -> ${cmm_type}
  %cmm${i} = linalg.batch_matmul ${matmul_attrs}ins(%cwp${i}, %crows${i} : ${cwp_type}, ${crows_type}) outs(%cacc${i} : ${cmm_type}) -> ${cmm_type}
