"""Random pattern-sparse weights with G structure (for tests and benchmarks)."""

from __future__ import annotations

import numpy as np

from pconv_mlir.patterns import ALL_PATTERNS


def random_pattern_weight(K: int, Cg: int, group_size: int, keep: float = 1 / 3.6, n_patterns: int = 8,
                          groups: int = 1, seed: int = 0) -> np.ndarray:
    """(K, Cg, 3, 3) weights: blocks of ``group_size`` consecutive filters (within each conv
    group) share kept input channels and each kept channel's pattern; ``keep`` of kernels kept."""
    rng = np.random.default_rng(seed)
    lib = [ALL_PATTERNS[i] for i in rng.choice(len(ALL_PATTERNS), n_patterns, replace=False)]
    w = np.zeros((K, Cg, 9), np.float32)
    Kg = K // groups
    nkeep = max(1, int(round(Cg * keep)))
    for gi in range(groups):
        for b0 in range(0, Kg, group_size):
            fl = np.arange(gi * Kg + b0, gi * Kg + min(b0 + group_size, Kg))
            chans = rng.choice(Cg, nkeep, replace=False)
            for c in chans:
                taps = list(lib[rng.integers(n_patterns)])
                w[np.ix_(fl, [c], taps)] = rng.standard_normal((len(fl), 1, 4)).astype(np.float32)
    return w.reshape(K, Cg, 3, 3)
