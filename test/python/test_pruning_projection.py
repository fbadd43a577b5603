"""Projections and library selection on hand-made tensors."""

from __future__ import annotations

import itertools

import pytest
import torch

from pconv_mlir.patterns import ALL_PATTERNS, PRUNED, pattern_mask
from pconv_mlir.pruning.projection import (
    group_index,
    ids_to_mask,
    keep_count,
    kernel_shape_ids,
    project_connectivity,
    project_joint,
    project_patterns,
    select_library,
)

LIB = [(0, 1, 2, 4), (4, 6, 7, 8), (1, 3, 4, 5), (3, 4, 5, 7)]


def kernel(pattern, scale=1.0):
    """A 3x3 kernel whose energy sits exactly on ``pattern``."""
    return torch.from_numpy(pattern_mask(pattern)) * scale


def test_group_index_runs_and_remainders():
    assert group_index(10, 4).tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]
    assert group_index(3, 8).tolist() == [0, 0, 0]
    # runs restart at each conv group; depthwise gives one filter per group
    assert group_index(6, 2, conv_groups=2).tolist() == [0, 0, 1, 2, 2, 3]
    assert group_index(4, 8, conv_groups=4).tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError):
        group_index(5, 1, conv_groups=2)


def test_keep_count_rounds_and_keeps_one():
    assert keep_count(64, 1 / 3.6) == 18
    assert keep_count(32, 1 / 3.6) == 9
    assert keep_count(1, 1 / 3.6) == 1
    assert keep_count(3, 0.01) == 1
    assert keep_count(5, 1.0) == 5


def test_kernel_shape_is_centre_plus_top3_neighbours():
    w = torch.zeros(1, 2, 3, 3)
    w[0, 0] = torch.tensor([[5.0, -6, 7], [0.1, 0.0, 0.2], [0.3, 0.4, 0.5]])  # centre is 0: still kept
    w[0, 1] = torch.tensor([[0.0, 0, 0], [0, 1, -3], [0, 2, 2.5]])
    ids = kernel_shape_ids(w)
    assert ALL_PATTERNS[ids[0, 0]] == (0, 1, 2, 4)
    assert ALL_PATTERNS[ids[0, 1]] == (4, 5, 7, 8)


def test_select_library_by_frequency_ignoring_zero_kernels():
    shapes = [(0, 1, 2, 4)] * 3 + [(4, 6, 7, 8)] * 5 + [(1, 3, 4, 5)] * 1
    w1 = torch.stack([kernel(p) for p in shapes])[:, None]  # (9, 1, 3, 3)
    w2 = torch.zeros(7, 1, 3, 3)  # all-zero kernels have no shape
    w2[0, 0] = kernel((1, 3, 4, 5))
    lib = select_library([w1, w2], 4)
    assert lib[:3] == [(4, 6, 7, 8), (0, 1, 2, 4), (1, 3, 4, 5)]
    # the 4th is a tie among unseen shapes, broken by ALL_PATTERNS order
    assert lib[3] == next(p for p in ALL_PATTERNS if p not in lib[:3])


def test_project_patterns_per_kernel_and_per_group():
    w = torch.stack([kernel(LIB[0], 1.0) + kernel(LIB[1], 0.9), kernel(LIB[1], 2.0)])[:, None]
    assert project_patterns(w, LIB, group_index(2, 1)).tolist() == [[0], [1]]
    # with G = 2 both filters take the pattern with the larger summed energy
    assert project_patterns(w, LIB, group_index(2, 2)).tolist() == [[1], [1]]


def test_project_connectivity_ranks_by_group_norm():
    norms = torch.tensor([[3.0, 1.0, 2.0, 0.5], [0.1, 0.2, 0.3, 5.0], [1.0, 0.2, 0.1, 0.0]])
    w = norms[..., None, None] * torch.ones(3, 4, 3, 3) / 3.0  # kernel L2 norm == norms
    kept = project_connectivity(w, 2, group_index(3, 1))
    assert kept.int().tolist() == [[1, 0, 1, 0], [0, 0, 1, 1], [1, 1, 0, 0]]
    # G = 2, group {0, 1}: energies 9.01, 1.04, 4.09, 25.25 -> channels 0 and 3
    kept = project_connectivity(w, 2, group_index(3, 2))
    assert kept.int().tolist() == [[1, 0, 0, 1], [1, 0, 0, 1], [1, 1, 0, 0]]


def test_joint_projection_beats_norm_first():
    spread = torch.ones(3, 3)  # energy 9, best pattern keeps 4
    concentrated = kernel(LIB[2], 5**0.5 / 2)  # energy 5, all inside a pattern
    w = torch.stack([spread, concentrated])[None]  # one filter, two kernels
    assert project_connectivity(w, 1, group_index(1, 1)).tolist() == [[True, False]]
    assert project_joint(w, LIB, 1, group_index(1, 1)).tolist() == [[PRUNED, 2]]


def _kept_energy(w, ids, lib):
    return float((w * ids_to_mask(ids, lib)).square().sum())


@pytest.mark.parametrize("group_size", [1, 2, 4])
def test_joint_projection_is_exact(group_size):
    """Brute force over every admissible structure of each group: none keeps more energy."""
    torch.manual_seed(group_size)
    K, C, n_keep = 5, 4, 2
    w = torch.randn(K, C, 3, 3)
    gidx = group_index(K, group_size)
    ids = project_joint(w, LIB, n_keep, gidx)
    assert (ids != PRUNED).sum(1).tolist() == [n_keep] * K
    for g in gidx.unique():
        rows = w[gidx == g]
        best = 0.0
        for chans in itertools.combinations(range(C), n_keep):
            for pats in itertools.product(range(len(LIB)), repeat=n_keep):
                trial = torch.full((len(rows), C), PRUNED)
                for c, p in zip(chans, pats):
                    trial[:, c] = p
                best = max(best, _kept_energy(rows, trial, LIB))
        assert _kept_energy(rows, ids[gidx == g], LIB) == pytest.approx(best, rel=1e-6)


def test_ids_to_mask():
    ids = torch.tensor([[0, PRUNED], [3, 1]])
    mask = ids_to_mask(ids, LIB)
    assert mask.shape == (2, 2, 3, 3)
    assert torch.equal(mask[0, 0], kernel(LIB[0]))
    assert not mask[0, 1].any()
    assert torch.equal(mask[1, 0], kernel(LIB[3]))
