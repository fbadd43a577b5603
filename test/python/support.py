"""Helpers shared by the pytest files (imported as ``support``)."""

import numpy as np
import pytest

from pconv_mlir.runtime import vulkan_available


def rel_err(got, want) -> float:
    """max|got - want| / max|want|: the project's parity measure (tolerance 1e-4)."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.abs(got - want).max() / max(float(np.abs(want).max()), 1e-30))


needs_vulkan = pytest.mark.skipif(not vulkan_available(), reason="no Vulkan driver (install mesa-vulkan-drivers for lavapipe)")
