"""Euclidean projections onto PCONV's constraint sets, on one conv weight at a time.

A conv weight has shape (K, Cg, kh, kw): K output channels (filters), Cg input channels per
conv group. Its kernels are grouped by output channel (see :func:`group_index`): all filters
of a group share which input channels they keep and which pattern each kept channel uses.
G = 1 is PCONV's per-kernel freedom; G > 1 is what the compiler's fast lowering needs
(one gather feeds a GEMM shared by the group's filters).

Every projection here is *exact* for its set: the kept weights of a kernel are its own
values, so the squared distance to the set is the total energy minus the energy kept, and
the best member keeps the most energy. With groups, the energy is summed over the group's
filters before choosing. Selections return pattern ids (``patterns.PRUNED`` for cut
kernels) rather than weights, because the ids are what the metadata and compiler need.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import torch

from pconv_mlir.patterns import ALL_PATTERNS, CENTER_TAP, KERNEL_TAPS, PRUNED, TAPS_PER_PATTERN, Pattern

__all__ = [
    "group_index",
    "keep_count",
    "kernel_shape_ids",
    "select_library",
    "project_patterns",
    "project_connectivity",
    "project_joint",
    "ids_to_mask",
]


def group_index(out_channels: int, group_size: int, conv_groups: int = 1) -> torch.Tensor:
    """Group id (0..n-1) of every output channel, shape (out_channels,).

    Groups are runs of ``group_size`` consecutive output channels; a run never crosses a
    conv-group boundary, because filters of different conv groups read different input
    channels and cannot share them. The last run of each conv group may be shorter, so any
    channel count works. A depthwise conv therefore always has one filter per group.
    """
    if group_size < 1 or conv_groups < 1 or out_channels % conv_groups:
        raise ValueError(f"bad grouping: out_channels={out_channels} group_size={group_size} conv_groups={conv_groups}")
    per = out_channels // conv_groups
    runs = -(-per // group_size)
    local = torch.arange(per) // group_size
    return (torch.arange(conv_groups)[:, None] * runs + local[None, :]).reshape(-1)


def keep_count(in_channels: int, keep: float) -> int:
    """Kernels each filter keeps under connectivity pruning: ``round(keep * C)``, at least 1
    (so a filter never goes dead, and a depthwise filter keeps its single kernel)."""
    return max(1, min(in_channels, round(keep * in_channels)))


def _group_sum(x: torch.Tensor, gidx: torch.Tensor) -> torch.Tensor:
    """Sum rows of ``x`` (first dim = output channels) by group id."""
    n = int(gidx.max()) + 1
    return x.new_zeros((n,) + x.shape[1:]).index_add_(0, gidx.to(x.device), x)


def _tap_energy(weight: torch.Tensor) -> torch.Tensor:
    """Squared weights per tap, shape (K, Cg, kh*kw), in float32 for stable sums."""
    return weight.detach().float().flatten(2).square()


def _library_rows(library: Sequence[Pattern], device: torch.device) -> torch.Tensor:
    """(P, 9) 0/1 matrix: row p marks the taps of pattern p."""
    rows = torch.zeros(len(library), KERNEL_TAPS, device=device)
    for i, pattern in enumerate(library):
        rows[i, list(pattern)] = 1.0
    return rows


_SHAPE_OF_BITS = {sum(1 << t for t in p): i for i, p in enumerate(ALL_PATTERNS)}


def kernel_shape_ids(weight: torch.Tensor) -> torch.Tensor:
    """Index into ``ALL_PATTERNS`` of each 3x3 kernel's natural shape: the centre plus its
    three largest-magnitude neighbours. Shape (K, Cg)."""
    mag = weight.detach().abs().flatten(2).clone()
    mag[..., CENTER_TAP] = float("inf")
    taps = mag.topk(TAPS_PER_PATTERN, dim=-1).indices
    bits = torch.pow(2, taps).sum(-1)
    lookup = torch.full((1 << KERNEL_TAPS,), -1, dtype=torch.long, device=bits.device)
    lookup[list(_SHAPE_OF_BITS)] = torch.tensor(list(_SHAPE_OF_BITS.values()), device=bits.device)
    return lookup[bits]


def select_library(weights: Iterable[torch.Tensor], num_patterns: int) -> list[Pattern]:
    """PCONV's library: the ``num_patterns`` most frequent natural kernel shapes over all
    given 3x3 weights. All-zero kernels have no shape and are not counted; ties go to the
    earlier pattern in ``ALL_PATTERNS`` so the choice is deterministic."""
    counts = torch.zeros(len(ALL_PATTERNS), dtype=torch.long)
    for w in weights:
        live = w.detach().flatten(2).abs().sum(-1) > 0
        counts += torch.bincount(kernel_shape_ids(w)[live].cpu(), minlength=len(ALL_PATTERNS))
    order = torch.argsort(-counts, stable=True)[:num_patterns]
    return [ALL_PATTERNS[int(i)] for i in order]


def _group_pattern_energy(weight: torch.Tensor, library: Sequence[Pattern], gidx: torch.Tensor) -> torch.Tensor:
    """Energy each library pattern keeps per (group, input channel), shape (n_groups, Cg, P)."""
    energy = _tap_energy(weight) @ _library_rows(library, weight.device).T
    return _group_sum(energy, gidx)


def project_patterns(weight: torch.Tensor, library: Sequence[Pattern], gidx: torch.Tensor) -> torch.Tensor:
    """Pattern id of every kernel (none cut): per (group, channel) the library pattern that
    keeps the most energy summed over the group's filters. Shape (K, Cg)."""
    best = _group_pattern_energy(weight, library, gidx).argmax(-1)
    return best[gidx.to(best.device)]


def project_connectivity(weight: torch.Tensor, n_keep: int, gidx: torch.Tensor) -> torch.Tensor:
    """Kept-kernel mask (K, Cg): per group the ``n_keep`` input channels with the largest
    kernel energy summed over the group's filters (L2 norm ranking for G = 1)."""
    energy = _group_sum(_tap_energy(weight).sum(-1), gidx)
    top = energy.topk(n_keep, dim=1).indices
    kept = torch.zeros_like(energy, dtype=torch.bool).scatter_(1, top, True)
    return kept[gidx.to(kept.device)]


def project_joint(
    weight: torch.Tensor, library: Sequence[Pattern], n_keep: int, gidx: torch.Tensor
) -> torch.Tensor:
    """Projection onto both sets at once: pattern ids (K, Cg) with ``PRUNED`` for cut kernels.

    Each (group, channel) is scored by the energy its best pattern keeps, and the ``n_keep``
    best channels per group survive. This is the exact projection onto the intersection
    (the objective is a sum over channels), so it never keeps less energy than cutting by
    full-kernel norm first and fitting patterns afterwards.
    """
    best_energy, best_id = _group_pattern_energy(weight, library, gidx).max(-1)
    top = best_energy.topk(n_keep, dim=1).indices
    ids = torch.full_like(best_id, PRUNED).scatter_(1, top, best_id.gather(1, top))
    return ids[gidx.to(ids.device)]


def ids_to_mask(ids: torch.Tensor, library: Sequence[Pattern]) -> torch.Tensor:
    """0/1 float mask (K, Cg, 3, 3) from pattern ids; ``PRUNED`` kernels are all zero."""
    rows = torch.cat([_library_rows(library, ids.device), torch.zeros(1, KERNEL_TAPS, device=ids.device)])
    index = torch.where(ids == PRUNED, len(library), ids)
    return rows[index].reshape(*ids.shape, 3, 3)
