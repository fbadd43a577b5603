"""Pattern conventions and the kernel classifier used by the raising pass."""

import numpy as np
import pytest

from pconv_mlir.patterns import ALL_PATTERNS, PRUNED, match_kernel_patterns, normalize_pattern, pattern_error


def test_all_patterns():
    assert len(ALL_PATTERNS) == 56 and len(set(ALL_PATTERNS)) == 56
    assert all(4 in p and len(p) == 4 and list(p) == sorted(p) for p in ALL_PATTERNS)


@pytest.mark.parametrize("taps,why", [((0, 1, 2, 3), "centre"), ((4, 5), "exactly 4"), ((4, 4, 5, 6), "distinct"),
                                      ((4, 5, 6, 9), "[0, 9)")])
def test_illegal_patterns(taps, why):
    assert why in pattern_error(taps)
    with pytest.raises(ValueError):
        normalize_pattern(taps)


def test_match_kernel_patterns():
    w = np.zeros((2, 3, 3, 3), np.float32)
    w[0, 0].flat[[1, 3, 4, 5]] = 1.0
    w[1, 2].flat[[0, 4]] = 2.0  # fewer than 4 non-zeros: completed to a legal pattern
    library, ids = match_kernel_patterns(w)
    assert ids[0, 1] == PRUNED and ids[1, 0] == PRUNED
    assert library[ids[0, 0]] == (1, 3, 4, 5)
    assert {0, 4} <= set(library[ids[1, 2]])
    w[0, 1].flat[[0, 2, 6, 8]] = 1.0  # no centre and 4 corners: no pattern covers it
    assert match_kernel_patterns(w) is None
    assert match_kernel_patterns(np.ones((1, 1, 3, 3))) is None
