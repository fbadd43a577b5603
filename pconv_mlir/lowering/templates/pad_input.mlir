  %xp = tensor.pad ${source} low[0, 0, ${low_h}, ${low_w}] high[0, 0, ${high_h}, ${high_w}] {
  ^bb0(%i0: index, %i1: index, %i2: index, %i3: index):
    tensor.yield %zero : f32
  } : ${source_type} to ${xp_type}
