"""Pattern-sparse weights without training: for compiler tests, the demo and benchmarks.

Real models come from :mod:`pconv_mlir.pruning`; these random projections have the same
structure (library patterns, connectivity, G-shared groups) so compiler speed and
correctness can be checked on any architecture in seconds.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from pconv_mlir.patterns import PRUNED

DEFAULT_LIBRARY = [(1, 3, 4, 5), (0, 1, 4, 7), (3, 4, 5, 7), (1, 4, 5, 8), (0, 3, 4, 6), (2, 4, 5, 8),
                   (1, 4, 6, 7), (4, 5, 7, 8)]


def pattern_prune_conv(conv: nn.Conv2d, rng: np.random.Generator, group_size: int = 1, keep: float = 1 / 3.6,
                       library=DEFAULT_LIBRARY) -> None:
    """Zero ``conv``'s 3x3 weights outside random library patterns; keep ``keep`` of the
    kernels (not for depthwise); ``group_size`` consecutive filters share the structure."""
    k, c = conv.weight.shape[:2]
    mask = np.zeros((k, c, 9), np.float32)
    for start in range(0, k, group_size):
        ids = rng.integers(0, len(library), size=c)
        if conv.groups == 1:
            ids[rng.random(c) > keep] = PRUNED
            if (ids == PRUNED).all():
                ids[0] = 0
        for ch, pid in enumerate(ids):
            if pid != PRUNED:
                mask[start:start + group_size, ch, list(library[pid])] = 1
    with torch.no_grad():
        conv.weight.mul_(torch.from_numpy(mask.reshape(k, c, 3, 3)))


def pattern_prune_model(model: nn.Module, seed: int = 0, group_size: int = 1, keep: float = 1 / 3.6) -> nn.Module:
    """Apply :func:`pattern_prune_conv` to every 3x3 conv of ``model`` (in place)."""
    rng = np.random.default_rng(seed)
    for module in model.modules():
        if isinstance(module, nn.Conv2d) and tuple(module.kernel_size) == (3, 3):
            pattern_prune_conv(module, rng, group_size if module.groups == 1 else 1, keep)
    return model


def block_prune_1x1(conv: nn.Conv2d, rng: np.random.Generator, group_size: int = 8, keep: float = 0.5) -> None:
    """Block connectivity of a 1x1 conv: in each block of ``group_size`` consecutive filters every
    filter keeps the same random ``keep`` share of the input channels (at least one)."""
    k, c = conv.weight.shape[:2]
    mask = np.zeros((k, c), np.float32)
    kept = max(1, round(keep * c))
    for start in range(0, k, group_size):
        mask[start:start + group_size, rng.choice(c, size=kept, replace=False)] = 1
    with torch.no_grad():
        conv.weight.mul_(torch.from_numpy(mask.reshape(k, c, 1, 1)))


def block_prune_model_1x1(model: nn.Module, seed: int = 0, group_size: int = 8, keep: float = 0.5) -> nn.Module:
    """Apply :func:`block_prune_1x1` to every ungrouped 1x1 conv of ``model`` (in place)."""
    rng = np.random.default_rng(seed + 1)
    for module in model.modules():
        if isinstance(module, nn.Conv2d) and tuple(module.kernel_size) == (1, 1) and module.groups == 1:
            block_prune_1x1(module, rng, group_size, keep)
    return model
