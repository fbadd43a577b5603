"""PatternPruner: structure of a finalized model, masks under optimizers, ADMM, phases."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from pconv_mlir.patterns import PRUNED, match_kernel_patterns
from pconv_mlir.pruning import Admm, PatternPruner, PruningConfig, classify_convs, find_prunable, prune_and_retrain
from pconv_mlir.pruning.projection import group_index, keep_count


class Net(nn.Module):
    """Every conv form the pruner must handle: channel counts not divisible by G, depthwise,
    1x1, a grouped 3x3, and a 5x5 it must leave alone."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 10, 3, padding=1)
        self.dw = nn.Conv2d(10, 10, 3, padding=1, groups=10, bias=False)
        self.pw = nn.Conv2d(10, 12, 1)
        self.grouped = nn.Conv2d(12, 9, 3, padding=1, groups=3)
        self.big = nn.Conv2d(9, 4, 5, padding=2)
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.dw(F.relu(self.conv(x))))
        x = F.relu(self.big(F.relu(self.grouped(F.relu(self.pw(x))))))
        return self.head(x.mean((2, 3)))


pytestmark = pytest.mark.usefixtures("one_thread")


def batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(8, 3, 6, 6, generator=g), torch.randint(0, 3, (8,), generator=g)


def train_steps(model, optimizer, steps, pruner=None):
    for i in range(steps):
        x, y = batch(i)
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if pruner is not None:
            pruner.after_optimizer_step(optimizer)


def pruned(group_size: int = 1, prune_1x1: bool = True, keep: float = 1 / 3.6):
    torch.manual_seed(0)
    model = Net()
    config = PruningConfig(group_size=group_size, prune_1x1=prune_1x1, keep=keep, prune_unaccelerated=True)
    pruner = PatternPruner(config).prepare(model)
    pruner.hard_prune()
    return model, pruner, pruner.finalize()


def test_layer_selection():
    model = Net()
    # by default the 3-channel conv and the grouped conv stay dense: the compiler keeps them so
    assert find_prunable(model, PruningConfig()) == {"dw": "pattern"}
    everything = PruningConfig(prune_unaccelerated=True)
    assert find_prunable(model, everything) == {"conv": "pattern", "dw": "pattern", "grouped": "pattern"}
    kinds = find_prunable(model, PruningConfig(prune_1x1=True, exclude=("conv",), prune_unaccelerated=True))
    assert kinds == {"dw": "pattern", "pw": "connectivity", "grouped": "pattern"}
    why = classify_convs(model, PruningConfig(prune_1x1=True))
    assert why["conv"] == (None, "skipped as the compiler keeps it dense: 3 input channels (< 8) "
                                 "(prune_unaccelerated prunes it)")
    assert why["grouped"][0] is None and "grouped conv (groups=3" in why["grouped"][1]
    assert why["big"] == (None, "kernel 5x5 (patterns cover 3x3)")
    assert why["pw"] == ("connectivity", "")
    with pytest.raises(ValueError, match="exclude"):
        PatternPruner(PruningConfig(exclude=("nope",))).prepare(model)


@pytest.mark.parametrize("group_size", [1, 4, 8])
def test_finalized_structure(group_size):
    model, pruner, meta = pruned(group_size)
    assert [l.name for l in meta.layers] == ["conv", "dw", "pw", "grouped"]
    assert 4 <= len(pruner.library) == 8
    for layer in meta.layers:
        conv = model.get_submodule(layer.name)
        w = conv.weight.detach()
        ids = layer.pattern_ids
        # per-filter connectivity counts are exact, at each layer type's rate
        assert layer.keep == (1 / 3.6 if layer.kind == "pattern" else PruningConfig.keep_1x1)
        assert (layer.kept.sum(1) == keep_count(w.shape[1], layer.keep)).all()
        # weights live only inside their kernel's mask
        assert not (w.numpy() * (1 - layer.mask)).any()
        if layer.kind == "pattern":
            # every kernel is zero or fits one library pattern, the recorded one
            # (random weights: a kept kernel's 4 taps are non-zero, so its match is unique)
            match = match_kernel_patterns(w.numpy(), pruner.library)
            assert match is not None and np.array_equal(match[1], ids)
        # G structure: filters of a group share kept channels and patterns
        gidx = group_index(w.shape[0], layer.group_size, conv.groups).numpy()
        for g in np.unique(gidx):
            rows = ids[gidx == g]
            assert (rows == rows[0]).all()
    assert meta.layer("dw").group_size == 1  # depthwise: one filter per group
    assert (meta.layer("dw").pattern_ids != PRUNED).all()  # and never cut
    assert meta.layer("conv").group_size == min(group_size, 10)
    assert meta.layer("grouped").group_size == min(group_size, 3)


def test_rates_give_about_8x():
    model = nn.Sequential(nn.Conv2d(64, 64, 3), nn.Conv2d(64, 128, 3))
    pruner = PatternPruner(PruningConfig(group_size=8)).prepare(model)
    pruner.hard_prune()
    meta = pruner.finalize()
    assert meta.compression() == pytest.approx(9 / 4 * 64 / 18)
    assert meta.config["group_size"] == 8 and meta.arch is None


@pytest.mark.parametrize(
    "make_optimizer",
    [
        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-2),
        lambda p: torch.optim.Adam(p, lr=1e-2, weight_decay=1e-2),
        lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=1e-1),
    ],
    ids=["sgd", "adam", "adamw"],
)
def test_masks_survive_optimizer_steps(make_optimizer):
    torch.manual_seed(0)
    model = Net()
    optimizer = make_optimizer(model.parameters())
    train_steps(model, optimizer, 3)  # momentum / moments built up before pruning
    pruner = PatternPruner(PruningConfig(prune_1x1=True, prune_unaccelerated=True)).prepare(model)
    pruner.hard_prune()
    before = {n: model.get_submodule(n).weight.detach().clone() for n in pruner.layer_names}
    train_steps(model, optimizer, 4, pruner)
    meta = pruner.finalize()
    for layer in meta.layers:
        w = model.get_submodule(layer.name).weight
        off = torch.from_numpy(layer.mask) == 0
        assert (w[off] == 0).all()
        assert not torch.equal(w, before[layer.name])  # kept weights did train
        for value in optimizer.state[w].values():
            if value.shape == w.shape:
                assert (value[off] == 0).all()


def test_gradient_mask_alone_keeps_zeros_with_fresh_optimizer():
    """After hard_prune, gradients are masked: a fresh SGD with momentum and coupled weight
    decay never moves a pruned weight even without after_optimizer_step."""
    torch.manual_seed(0)
    model = Net()
    pruner = PatternPruner(PruningConfig(prune_unaccelerated=True)).prepare(model)
    pruner.hard_prune()
    train_steps(model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-2), 3)
    meta = pruner.finalize()
    meta.check(model)


def test_admm_pulls_weights_onto_the_constraints():
    torch.manual_seed(0)
    model = Net()
    pruner = PatternPruner(PruningConfig(rho=0.5, rho_growth=1.5, rho_max=10.0)).prepare(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    start = pruner.admm_residual()
    for _ in range(8):
        for _ in range(10):
            x, y = batch()
            loss = 1e-3 * F.cross_entropy(model(x), y) + pruner.admm_loss()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        pruner.on_epoch_end()
    assert pruner.rho == 10.0  # 0.5 * 1.5**8 capped at rho_max
    assert pruner.admm_residual() < 0.1 * start


def test_admm_update_and_dual_rescaling():
    w = nn.Parameter(torch.ones(2, 2))
    admm = Admm([(w, torch.zeros_like)], rho=1.0, rho_growth=4.0, rho_max=2.0)
    assert admm.loss().item() == pytest.approx(0.5 * 4)
    admm.update()  # aux = 0, dual = w - aux = 1 at rho 1; rho -> 2, scaled dual halves
    assert admm.rho == 2.0
    assert torch.equal(admm.pairs[0].dual, torch.full((2, 2), 0.5))
    assert admm.residual() == pytest.approx(1.0)


def test_phases_are_enforced():
    pruner = PatternPruner()
    with pytest.raises(RuntimeError, match="prepared"):
        pruner.admm_loss()
    pruner.prepare(Net())
    with pytest.raises(RuntimeError, match="pruned"):
        pruner.finalize()
    pruner.hard_prune()
    with pytest.raises(RuntimeError, match="prepared"):
        pruner.on_epoch_end()
    with pytest.raises(ValueError, match="no conv"):
        PatternPruner().prepare(nn.Linear(2, 2))


def test_config_validation():
    bads = (dict(num_patterns=3), dict(num_patterns=13), dict(keep=0.0), dict(group_size=0), dict(rho_growth=0.5),
            dict(keep_1x1=0.0), dict(keep_1x1=1.2), dict(group_size_1x1=0))
    for bad in bads:
        with pytest.raises(ValueError):
            PruningConfig(**bad)


def test_recipe_gives_one_shot_the_same_budget():
    torch.manual_seed(0)
    model = Net()
    loader = [batch(0), batch(1)]
    meta = prune_and_retrain(model, loader, PruningConfig(), "oneshot", admm_epochs=2, retrain_epochs=1)
    assert meta.info == {"mode": "oneshot", "admm_epochs": 0, "retrain_epochs": 3}
    meta.check(model)
    with pytest.raises(ValueError, match="mode"):
        prune_and_retrain(Net(), loader, PruningConfig(), "magic", admm_epochs=1, retrain_epochs=1)


def _admm_residuals(lr: float) -> list[float]:
    """ADMM residuals of small_cnn(8) under the recipe's Adam loop: before, then per epoch."""
    from torch.utils.data import DataLoader, TensorDataset

    from pconv_mlir.models import build_model
    from pconv_mlir.pruning import fit

    torch.manual_seed(0)
    model = build_model("small_cnn", in_channels=1, width=8)
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(160, 1, 8, 8, generator=g), torch.randint(0, 10, (160,), generator=g))
    loader = DataLoader(data, batch_size=16, shuffle=True, generator=g)
    pruner = PatternPruner(PruningConfig(rho=1.0, rho_growth=1.5, rho_max=10.0, exclude=("0.0",))).prepare(model)
    residuals = [pruner.admm_residual()]
    fit(model, loader, 6, lr, phase="admm", pruner=pruner, residuals=residuals)
    return residuals


def test_admm_residual_shrinks_with_the_recipe():
    """What the admm docstring says: when Adam can carry the weights to be cut to zero within
    the phase, the residual shrinks at every update (the last one is flat: the cosine lr ends
    at 0); when its lr is too small the duals pile up and the residual grows."""
    shrinking = _admm_residuals(1e-2)
    assert all(b < a + 1e-3 for a, b in zip(shrinking, shrinking[1:])), shrinking
    assert shrinking[-1] < 0.3 * shrinking[0], shrinking
    stuck = _admm_residuals(1e-4)
    assert stuck[-1] > stuck[0], stuck
