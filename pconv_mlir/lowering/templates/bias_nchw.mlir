  %cb${i} = tensor.extract_slice %bias[${b0}, 0] [${nbc}, ${g}] [1, 1] : ${bias_type} to ${cb_type}
  %cbe${i} = tensor.empty() : ${cmb_type}
  %cmb${i} = linalg.generic {indexing_maps = [affine_map<(b, g, p) -> (b, g, p)>, affine_map<(b, g, p) -> (b, g)>, affine_map<(b, g, p) -> (b, g, p)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%cmm${i}, %cb${i} : ${cmm_type}, ${cb_type}) outs(%cbe${i} : ${cmb_type}) {
  ^bb0(%a: ${acc_elt}, %bv: f32, %o: f32):
${widen}    %s = arith.addf ${a}, %bv : f32
    linalg.yield %s : f32
  } -> ${cmb_type}
