"""Helpers shared by the pytest files (imported as ``support``)."""

import pytest

from pconv_mlir.runtime import vulkan_available

#: The smallest module: y = x + x on a 2x4 f32 tensor (compiles in about a second).
ADD_MLIR = """
func.func @main(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
  %e = tensor.empty() : tensor<2x4xf32>
  %y = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i, j)>],
       iterator_types = ["parallel", "parallel"]} ins(%x : tensor<2x4xf32>) outs(%e : tensor<2x4xf32>) {
  ^bb0(%a: f32, %o: f32):
    %s = arith.addf %a, %a : f32
    linalg.yield %s : f32
  } -> tensor<2x4xf32>
  return %y : tensor<2x4xf32>
}
"""

needs_vulkan = pytest.mark.skipif(not vulkan_available(),
                                  reason="no Vulkan driver (install mesa-vulkan-drivers for lavapipe)")
