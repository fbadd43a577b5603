"""Pattern conventions shared by the pruner and the compiler.

A 3x3 kernel's taps are numbered row-major: tap ``t`` sits at row ``t // 3`` and
column ``t % 3``; the centre is tap 4. A *pattern* is a sorted tuple of 4 distinct taps
that contains the centre (C(8,3) = 56 candidates). A *pattern library* is a list of
patterns; a kernel's *pattern id* indexes that list, and ``PRUNED`` (-1) marks a kernel
removed by connectivity pruning.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

import numpy as np

CENTER_TAP = 4
TAPS_PER_PATTERN = 4
KERNEL_TAPS = 9
PRUNED = -1

Pattern = tuple[int, int, int, int]

#: All 56 legal patterns in a fixed order (lexicographic over the 3 non-centre taps).
ALL_PATTERNS: tuple[Pattern, ...] = tuple(
    tuple(sorted((CENTER_TAP,) + rest))  # type: ignore[misc]
    for rest in itertools.combinations([t for t in range(KERNEL_TAPS) if t != CENTER_TAP], 3)
)


def pattern_error(taps: Sequence[int]) -> str | None:
    """Why ``taps`` is not a legal pattern, or None when it is."""
    taps = list(taps)
    if len(taps) != TAPS_PER_PATTERN:
        return f"a pattern has exactly {TAPS_PER_PATTERN} taps, got {len(taps)}"
    if any(not 0 <= t < KERNEL_TAPS for t in taps):
        return f"taps must lie in [0, {KERNEL_TAPS}), got {taps}"
    if len(set(taps)) != len(taps):
        return f"taps must be distinct, got {taps}"
    if CENTER_TAP not in taps:
        return f"a pattern must contain the centre tap {CENTER_TAP}, got {taps}"
    return None


def normalize_pattern(taps: Iterable[int]) -> Pattern:
    """Return ``taps`` as a sorted pattern tuple; raise ValueError when illegal."""
    taps = [int(t) for t in taps]
    err = pattern_error(taps)
    if err:
        raise ValueError(err)
    return tuple(sorted(taps))  # type: ignore[return-value]


def pattern_mask(pattern: Sequence[int]) -> np.ndarray:
    """3x3 float32 mask with ones on the pattern's taps."""
    mask = np.zeros(KERNEL_TAPS, dtype=np.float32)
    mask[list(pattern)] = 1.0
    return mask.reshape(3, 3)


def library_masks(library: Sequence[Sequence[int]]) -> np.ndarray:
    """Stack of masks, shape (len(library), 3, 3)."""
    return np.stack([pattern_mask(p) for p in library]) if library else np.zeros((0, 3, 3), np.float32)


def tap_offset(tap: int) -> tuple[int, int]:
    """(row, col) of a tap inside the 3x3 window."""
    return divmod(int(tap), 3)


def match_kernel_patterns(weight: np.ndarray, library: Sequence[Sequence[int]] | None = None):
    """Classify every 3x3 kernel of ``weight`` (K, C, 3, 3).

    Returns ``(library, ids)`` where ``ids`` has shape (K, C): ``PRUNED`` for an all-zero
    kernel, else the index into ``library`` of a pattern that covers every non-zero tap.
    When ``library`` is None it is built from the kernels themselves (first-seen order).
    Returns None when some kernel is not pattern-sparse (too many non-zeros, no centre
    needed is fine: a kernel whose non-zeros are a subset of a pattern matches it).
    """
    w = np.asarray(weight)
    if w.ndim != 4 or w.shape[2:] != (3, 3):
        return None
    K, C = w.shape[:2]
    nz = (w.reshape(K, C, KERNEL_TAPS) != 0)
    lib: list[Pattern] = [normalize_pattern(p) for p in library] if library is not None else []
    lib_masks = np.array([[t in p for t in range(KERNEL_TAPS)] for p in lib], dtype=bool).reshape(-1, KERNEL_TAPS)
    ids = np.full((K, C), PRUNED, dtype=np.int64)
    for k in range(K):
        for c in range(C):
            m = nz[k, c]
            if not m.any():
                continue
            hit = np.nonzero(~(m & ~lib_masks).any(axis=1))[0] if len(lib) else np.array([], dtype=int)
            if hit.size:
                ids[k, c] = int(hit[0])
                continue
            taps = [int(t) for t in np.nonzero(m)[0]]
            if library is not None or len(taps) > TAPS_PER_PATTERN:
                return None
            # Complete a kernel with < 4 non-zeros to a legal pattern deterministically.
            cand = [p for p in ALL_PATTERNS if set(taps) <= set(p)]
            if not cand:
                return None
            lib.append(cand[0])
            lib_masks = np.vstack([lib_masks, np.array([[t in cand[0] for t in range(KERNEL_TAPS)]])])
            ids[k, c] = len(lib) - 1
    return lib, ids
