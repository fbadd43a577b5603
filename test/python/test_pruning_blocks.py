"""Block connectivity pruning of 1x1 convs: the exact weight structure the compiler detects,
keep rates, ADMM, one-shot, masked retraining."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from pconv_mlir.patterns import PRUNED
from pconv_mlir.pruning import PatternPruner, PruningConfig, prune_and_retrain
from pconv_mlir.pruning.projection import group_index, keep_count, project_connectivity

pytestmark = pytest.mark.usefixtures("one_thread")


class Net(nn.Module):
    """1x1 convs with K divisible by 8 (16), not divisible (13), a grouped one (2 groups of 6
    filters), and a 3x3 conv to check that the two keep rates stay apart."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(8, 16, 3, padding=1)
        self.pw_even = nn.Conv2d(16, 16, 1)
        self.pw_odd = nn.Conv2d(16, 13, 1, bias=False)
        self.pw_mid = nn.Conv2d(13, 12, 1)
        self.pw_grouped = nn.Conv2d(12, 12, 1, groups=2)
        self.head = nn.Linear(12, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.pw_odd(F.relu(self.pw_even(F.relu(self.conv(x))))))
        x = F.relu(self.pw_grouped(F.relu(self.pw_mid(x))))
        return self.head(x.mean((2, 3)))


def batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(8, 8, 5, 5, generator=g), torch.randint(0, 3, (8,), generator=g)


def compiler_blocks(weight: torch.Tensor, block: int, conv_groups: int = 1) -> list[tuple[int, int]]:
    """Row ranges [start, stop) of the blocks the compiler looks at: runs of ``block``
    consecutive filters, restarting at each conv group (the last run may be shorter)."""
    per = weight.shape[0] // conv_groups
    return [(g * per + s, g * per + min(s + block, per)) for g in range(conv_groups) for s in range(0, per, block)]


def assert_block_structure(weight: torch.Tensor, block: int, n_keep: int, conv_groups: int = 1) -> None:
    """What the compiler detects from the weights alone: in every block all rows have exactly
    the same zero columns (exactly 0.0), and ``n_keep`` non-zero columns (random weights)."""
    w = weight.detach()[:, :, 0, 0]
    for start, stop in compiler_blocks(weight, block, conv_groups):
        zero = w[start:stop] == 0
        assert (zero == zero[0]).all(), f"rows {start}:{stop} differ in zero columns"
        assert int((~zero[0]).sum()) == n_keep, f"rows {start}:{stop} keep {int((~zero[0]).sum())}, want {n_keep}"


def prune(config: PruningConfig, seed: int = 0) -> tuple[Net, dict[str, torch.Tensor], PatternPruner]:
    torch.manual_seed(seed)
    model = Net()
    dense = {n: m.weight.detach().clone() for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    pruner = PatternPruner(config).prepare(model)
    pruner.hard_prune()
    return model, dense, pruner


@pytest.mark.parametrize("block, keep", [(8, 0.5), (4, 0.25), (8, 1 / 3), (5, 0.75)])
def test_structure_is_exact_for_any_k(block, keep):
    config = PruningConfig(prune_1x1=True, keep_1x1=keep, group_size_1x1=block, prune_unaccelerated=True)
    model, dense, pruner = prune(config)
    meta = pruner.finalize()
    for name, groups in (("pw_even", 1), ("pw_odd", 1), ("pw_mid", 1), ("pw_grouped", 2)):
        conv = model.get_submodule(name)
        layer = meta.layer(name)
        assert layer.kind == "connectivity" and layer.keep == keep
        assert layer.group_size == min(block, conv.out_channels // groups)
        assert_block_structure(conv.weight, block, keep_count(conv.weight.shape[1], keep), groups)
        # kept weights are the dense ones, untouched (hard prune only zeroes)
        kept = conv.weight != 0
        assert torch.equal(conv.weight[kept], dense[name][kept])
    # 13 filters in blocks of 8: the last block has 5 filters and may keep other columns
    assert len(compiler_blocks(model.pw_odd.weight, block)) == -(-13 // block)


def test_blocks_keep_the_columns_with_the_largest_block_norm():
    w = torch.zeros(6, 5, 1, 1)
    # block 0 (filters 0-3): column norms 4, 1, 3, 0.5, 2 (spread over the rows) -> keeps 0 and 2
    w[0, :, 0, 0] = torch.tensor([2.0, 1.0, 0.0, 0.5, 0.0])
    w[1, :, 0, 0] = torch.tensor([0.0, 0.0, 3.0, 0.0, 2.0])
    w[2, :, 0, 0] = torch.tensor([2 * 3**0.5, 0.0, 0.0, 0.0, 0.0])
    # block 1 (filters 4-5, the short one): keeps 3 and 4
    w[4, :, 0, 0] = torch.tensor([0.1, 0.0, 0.0, 5.0, 0.0])
    w[5, :, 0, 0] = torch.tensor([0.0, 0.2, 0.0, 0.0, 1.0])
    kept = project_connectivity(w, 2, group_index(6, 4))
    assert kept.int().tolist() == [[1, 0, 1, 0, 0]] * 4 + [[0, 0, 0, 1, 1]] * 2


def test_grouped_1x1_blocks_never_straddle_a_conv_group():
    # 2 conv groups of 6 filters, G=4: blocks 0-3, 4-5 | 6-9, 10-11 (not 4-7)
    assert group_index(12, 4, conv_groups=2).tolist() == [0] * 4 + [1] * 2 + [2] * 4 + [3] * 2
    config = PruningConfig(prune_1x1=True, keep_1x1=0.5, group_size_1x1=4, prune_unaccelerated=True)
    model, _, pruner = prune(config)
    ids = pruner.finalize().layer("pw_grouped").pattern_ids
    assert_block_structure(model.pw_grouped.weight, 4, 3, conv_groups=2)
    # the straddling block 4-7 would have to share columns; with random weights it does not
    assert not (ids[4:8] == ids[4]).all()


def test_grouped_convs_are_skipped_unless_asked():
    model, _, pruner = prune(PruningConfig(prune_1x1=True))
    assert "pw_grouped" not in pruner.layer_names and "pw_even" in pruner.layer_names
    assert model.pw_grouped.weight.count_nonzero() == model.pw_grouped.weight.numel()


def test_keep_rates_per_layer_type():
    config = PruningConfig(prune_1x1=True, keep=0.25, keep_1x1=0.75, group_size=4, group_size_1x1=8)
    model, _, pruner = prune(config)
    meta = pruner.finalize()
    conv = meta.layer("conv")
    assert (conv.kind, conv.keep, conv.group_size) == ("pattern", 0.25, 4)
    assert (conv.kept.sum(1) == keep_count(8, 0.25)).all()
    pw = meta.layer("pw_even")
    assert (pw.kind, pw.keep, pw.group_size) == ("connectivity", 0.75, 8)
    assert (pw.kept.sum(1) == 12).all()
    assert_block_structure(model.pw_even.weight, 8, 12)
    # 1x1 blocks default to the 3x3 G
    assert prune(PruningConfig(prune_1x1=True, group_size=4))[2].finalize().layer("pw_even").group_size == 4


@pytest.mark.parametrize(
    "bad, message",
    [
        (dict(keep_1x1=0.0), "keep_1x1 must be in \\(0, 1\\], got 0.0"),
        (dict(keep_1x1=-0.5), "keep_1x1 must be in"),
        (dict(keep_1x1=1.5), "keep_1x1 must be in \\(0, 1\\], got 1.5"),
        (dict(group_size_1x1=0), "group_size_1x1 must be >= 1"),
        (dict(keep=1.01), "keep must be in"),
    ],
)
def test_bad_values_are_rejected(bad, message):
    with pytest.raises(ValueError, match=message):
        PruningConfig(**bad)


def test_admm_projection_is_idempotent_and_on_the_block_set():
    torch.manual_seed(0)
    model = Net()
    config = PruningConfig(prune_1x1=True, keep_1x1=0.5, group_size_1x1=4)
    pruner = PatternPruner(config).prepare(model)
    pairs = [p for p in pruner._admm.pairs if p.weight is model.pw_odd.weight]  # noqa: SLF001
    assert len(pairs) == 1  # 1x1 convs: the block-connectivity constraint only
    project = pairs[0].project
    w = torch.randn_like(model.pw_odd.weight)
    once = project(w)
    assert torch.equal(project(once), once)
    assert_block_structure(once, 4, 8)
    # it is the nearest such point: it keeps every kept weight as it was
    assert torch.equal(once[once != 0], w[once != 0])


def test_admm_then_hard_prune_gives_blocks():
    torch.manual_seed(0)
    model = Net()
    pruner = PatternPruner(PruningConfig(prune_1x1=True, keep_1x1=0.5, rho=0.5, rho_max=10.0)).prepare(model)
    pairs = [p for p in pruner._admm.pairs if p.weight is model.pw_even.weight]  # noqa: SLF001

    def block_residual() -> float:
        w = pairs[0].weight.detach()
        return float((w - pairs[0].aux).norm() / w.norm())

    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    start = block_residual()
    for _ in range(8):
        for i in range(10):
            x, y = batch(i)
            loss = 1e-3 * F.cross_entropy(model(x), y) + pruner.admm_loss()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        pruner.on_epoch_end()
    assert block_residual() < 0.1 * start  # the penalty pulled the 1x1 weights onto the blocks
    pruner.hard_prune()
    meta = pruner.finalize()
    assert_block_structure(model.pw_even.weight, 8, 8)
    assert_block_structure(model.pw_odd.weight, 8, 8)
    assert meta.layer("pw_odd").group_size == 8


def test_one_shot_recipe_gives_blocks():
    torch.manual_seed(0)
    model = Net()
    loader = [batch(0), batch(1)]
    config = PruningConfig(prune_1x1=True, keep_1x1=0.25)
    meta = prune_and_retrain(model, loader, config, "oneshot", admm_epochs=1, retrain_epochs=1)
    meta.check(model)
    assert_block_structure(model.pw_even.weight, 8, 4)
    assert_block_structure(model.pw_odd.weight, 8, 4)
    assert_block_structure(model.pw_mid.weight, 8, 3)


@pytest.mark.parametrize(
    "make_optimizer",
    [
        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-2),
        lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=1e-1),
    ],
    ids=["sgd", "adamw"],
)
def test_zero_columns_survive_retraining(make_optimizer):
    torch.manual_seed(0)
    model = Net()
    optimizer = make_optimizer(model.parameters())
    for i in range(3):  # momentum / moments built up before pruning
        x, y = batch(i)
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    pruner = PatternPruner(PruningConfig(prune_1x1=True, keep_1x1=0.5)).prepare(model)
    pruner.hard_prune()
    before = model.pw_even.weight.detach().clone()
    for i in range(4):
        x, y = batch(10 + i)
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
        pruner.after_optimizer_step(optimizer)
    meta = pruner.finalize()
    assert_block_structure(model.pw_even.weight, 8, 8)
    kept = torch.from_numpy(meta.layer("pw_even").kept)
    assert not torch.equal(model.pw_even.weight[kept], before[kept])  # kept weights did train
    assert (meta.layer("pw_even").pattern_ids[~kept.numpy()] == PRUNED).all()


def test_depthwise_is_never_connectivity_pruned():
    model = nn.Sequential(
        nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.Conv2d(16, 16, 1, groups=16), nn.Conv2d(16, 16, 1)
    )
    pruner = PatternPruner(PruningConfig(prune_1x1=True, keep_1x1=0.25, prune_unaccelerated=True)).prepare(model)
    pruner.hard_prune()
    meta = pruner.finalize()
    assert [layer.name for layer in meta.layers] == ["0", "2"]  # the depthwise 1x1 is left alone
    assert (meta.layer("0").pattern_ids != PRUNED).all()
    assert np.count_nonzero(model[1].weight.detach().numpy()) == 16
