  %cwp${i} = tensor.extract_slice %wpt[${b0}, 0, 0] [${nbc}, ${rows}, ${g}] [1, 1, 1] : ${wp_type} to ${cwp_type}
  %crows${i} = tensor.collapse_shape %cg${i} ${gather_collapse} : ${gather_type} into ${crows_type}
  %cpe${i} = tensor.empty() : ${cpm_type}
  %cpa${i} = linalg.fill ins(${acc_zero} : ${acc_elt}) outs(%cpe${i} : ${cpm_type}) -> ${cpm_type}
  %cpm${i} = linalg.batch_matmul indexing_maps = [affine_map<(b, m, n, k) -> (b, k, m)>, affine_map<(b, m, n, k) -> (b, k, n)>, affine_map<(b, m, n, k) -> (b, m, n)>] ${matmul_attrs}ins(%crows${i}, %cwp${i} : ${crows_type}, ${cwp_type}) outs(%cpa${i} : ${cpm_type}) -> ${cpm_type}
  %cte${i} = tensor.empty() : ${cmm_type}
  %cmm${i} = linalg.transpose ins(%cpm${i} : ${cpm_type}) outs(%cte${i} : ${cmm_type}) permutation = [0, 2, 1]
