"""pconv-eliminate-dead-channels end to end: an inverted residual whose projection reads half of
its input channels (one block of G filters) computes only that half, and matches PyTorch."""

import pytest
import torch
import torch.nn as nn

import pconv_mlir
from pconv_mlir.numerics import TOLERANCE, rel_err


class InvertedResidual(nn.Module):
    """MobileNet-V2's block: 1x1 expansion + BN + ReLU6, depthwise 3x3 + BN + ReLU6, 1x1
    projection; ``residual``: the block's input is added back (the dead channels stay dead)."""

    def __init__(self, c: int, mid: int, out: int, stride: int, residual: bool, seed: int):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.expand = nn.Sequential(nn.Conv2d(c, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU6())
        self.depthwise = nn.Sequential(nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False),
                                       nn.BatchNorm2d(mid), nn.ReLU6())
        self.project = nn.Conv2d(mid, out, 1, bias=not residual)
        self.residual = residual
        with torch.no_grad():
            for bn in (self.expand[1], self.depthwise[1]):
                bn.running_mean.uniform_(-0.5, 0.5, generator=g)
                bn.running_var.uniform_(0.5, 2.0, generator=g)
            dead = torch.randperm(mid, generator=g)[: mid // 2]
            self.project.weight[:, dead] = 0  # one block of G >= out filters keeps the other half

    def forward(self, x):
        y = self.project(self.depthwise(self.expand(x)))
        return x + y if self.residual else y


@pytest.mark.parametrize("target", ["llvm-cpu", "vulkan-lavapipe"])
def test_dead_channels_are_cut_and_numbers_hold(target):
    net = nn.Sequential(InvertedResidual(16, 64, 16, 1, True, 0), InvertedResidual(16, 96, 24, 2, False, 1)).eval()
    x = torch.randn(1, 16, 12, 10, generator=torch.Generator().manual_seed(2))
    compiled = pconv_mlir.compile(net, [x], target=target)
    cut = {r.index: r.dead_channels for r in compiled.report if r.dead_channels}
    # expansion 0 (its filters), projection 2 (its input); expansion 3 (its own input is the residual
    # sum, whose channels every consumer reads) and projection 5.
    assert cut == {0: ["32 of its 64 filters fed no weight of the next conv: cut"],
                   2: ["32 of 64 input channels had no weight: cut, with the ops that made them"],
                   3: ["48 of its 96 filters fed no weight of the next conv: cut"],
                   5: ["48 of 96 input channels had no weight: cut, with the ops that made them"]}, cut
    # The report starts from what the raise saw after the cut: expansion 3 and the projections are
    # dense 1x1 convs (no block structure left), which it says.
    assert all(compiled.report[i].lowering.startswith("dense") for i in cut), [r.lowering for r in compiled.report]
    with torch.no_grad():
        want = net(x).numpy()
    assert rel_err(compiled.run(x.numpy()), want) <= TOLERANCE


def test_biased_convs_without_batch_norm():
    """Convs with biases and no BN (torch-mlir broadcasts the bias into the conv's init): the
    producer's bias loses the cut channels with its filters."""
    torch.manual_seed(3)
    net = nn.Sequential(nn.Conv2d(8, 48, 1), nn.ReLU(), nn.Conv2d(48, 48, 3, padding=1, groups=48), nn.ReLU6(),
                        nn.Conv2d(48, 8, 1)).eval()
    with torch.no_grad():
        net[4].weight[:, 1::2] = 0  # odd channels: read by no filter
    x = torch.randn(1, 8, 9, 7)
    compiled = pconv_mlir.compile(net, [x], target="llvm-cpu")
    assert [r.dead_channels for r in compiled.report if r.dead_channels] == [
        ["24 of its 48 filters fed no weight of the next conv: cut"],
        ["24 of 48 input channels had no weight: cut, with the ops that made them"]]
    with torch.no_grad():
        want = net(x).numpy()
    assert rel_err(compiled.run(x.numpy()), want) <= TOLERANCE
