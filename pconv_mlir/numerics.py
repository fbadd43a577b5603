"""What "the same numbers as PyTorch" means here: one relative error and one tolerance.

Every compiled path (tests, benchmarks, the demo, Android bundles, the peers) is checked with
:func:`rel_err` against a reference and must stay within :data:`TOLERANCE`.
"""

from __future__ import annotations

import math

__all__ = ["TOLERANCE", "FP16_TOLERANCE", "FP16_TOP1_AGREEMENT", "ZERO_REFERENCE_ATOL", "rel_err"]

#: The project's correctness bar: max|out - reference| / max|reference| <= 1e-4.
TOLERANCE = 1e-4

#: The bar for ``precision="fp16-storage"`` / ``"fp16"`` modules against PyTorch fp32: f16 weights
#: round at 2^-11 relative and an f16 accumulator over hundreds of rows adds more (measured
#: 3.6e-4 / 2.0e-3 on a 3-conv net, test_precision.py). Their top-1 answers must agree with the
#: fp32 module's on >= 99.5% of the digits test set (FP16_TOP1_AGREEMENT, a slow test).
FP16_TOLERANCE = 1e-2
FP16_TOP1_AGREEMENT = 0.995

#: An all-zero reference has no scale; outputs must then be zero within this.
ZERO_REFERENCE_ATOL = 1e-6


def rel_err(got, want) -> float:
    """max|got - want| / max|want| over the whole output, computed in float64.

    ``inf`` when the shapes differ or the difference is not finite (NaN, inf); 0.0 for two
    empty arrays; against an all-zero ``want``, 0.0 when every |got| <= ZERO_REFERENCE_ATOL,
    else ``inf``.
    """
    import numpy as np  # here, not at the top: the CLI reads TOLERANCE while building its parser

    got = np.asarray(got, np.float64)
    want = np.asarray(want, np.float64)
    if got.shape != want.shape:
        return math.inf
    if not want.size:
        return 0.0
    diff = float(np.max(np.abs(got - want)))
    if not math.isfinite(diff):
        return math.inf
    scale = float(np.max(np.abs(want)))
    if scale == 0.0:
        return 0.0 if diff <= ZERO_REFERENCE_ATOL else math.inf
    return diff / scale
