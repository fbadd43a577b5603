"""Helpers shared by the pytest files (imported as ``support``)."""

import pytest

from pconv_mlir.runtime import vulkan_available

needs_vulkan = pytest.mark.skipif(not vulkan_available(),
                                  reason="no Vulkan driver (install mesa-vulkan-drivers for lavapipe)")
