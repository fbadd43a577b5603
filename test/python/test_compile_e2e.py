"""pconv_mlir.compile end to end on llvm-cpu: same numbers as PyTorch (rel err <= TOLERANCE,
rel err = max|pconv - torch| / max|torch| over the whole output)."""

import numpy as np
import pytest
import torch
import torch.nn as nn

import pconv_mlir
from pconv_mlir.numerics import TOLERANCE, rel_err
from pconv_mlir.synthetic import pattern_prune_conv as pattern_prune


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.a = nn.Conv2d(16, 32, 3, padding=1)
        self.b = nn.Conv2d(32, 32, 3, stride=2, padding=1, bias=False)
        self.c = nn.Conv2d(32, 24, 3, padding=2, dilation=2)  # 24 not divisible by G=16
        self.dw = nn.Conv2d(24, 24, 3, padding=1, groups=24)
        self.pw = nn.Conv2d(24, 8, 1)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        x = torch.max_pool2d(torch.relu(self.a(x)), 2)
        x = torch.relu(self.b(x))
        x = torch.relu(self.c(x)) + 0.5 * x[:, :24]
        return self.pw(self.dw(x))


@pytest.mark.parametrize("group_size", [1, 16])
def test_pattern_net_matches_torch(group_size):
    torch.manual_seed(0)
    rng = np.random.default_rng(group_size)
    net = Net().eval()
    for conv in (net.a, net.b, net.c, net.dw):
        pattern_prune(conv, rng, group_size if conv.groups == 1 else 1)
    x = torch.randn(2, 3, 20, 18)  # batch 2, non-square
    compiled = pconv_mlir.compile(net, [x], target="llvm-cpu")
    lowering = [r.lowering for r in compiled.report]
    assert len(lowering) == 6
    assert lowering[0].startswith("dense") and lowering[5].startswith("dense (1x1: weights are dense")
    assert lowering[4].endswith("any pad of its input fused into it (IREE)"), lowering[4]  # the depthwise conv
    if group_size > 1:  # the cost model may keep a small layer dense, and then says why
        assert sum(line.startswith("pattern") for line in lowering[1:4]) >= 2, lowering
        assert all(line.startswith(("pattern", "dense (")) for line in lowering), lowering
    with torch.no_grad():
        want = net(x).numpy()
    assert rel_err(compiled.run(x.numpy()), want) <= TOLERANCE


class PointwiseNet(nn.Module):
    """Dense 1x1 convs down both of the cost model's roads: pconv's tiles (small K on a wide map,
    a stride-2 one, 7 filters: a ragged register tile) and IREE's data tiling (512 filters on 4x5)."""

    def __init__(self):
        super().__init__()
        self.expand = nn.Conv2d(16, 96, 1)
        self.down = nn.Conv2d(96, 7, 1, stride=2, bias=False)
        self.wide = nn.Conv2d(7, 512, 1)

    def forward(self, x):
        x = torch.clamp(self.expand(x), 0, 6)
        return self.wide(torch.relu(self.down(x)))


def test_pointwise_tiles_and_data_tiling_match_torch():
    torch.manual_seed(2)
    net = PointwiseNet().eval()
    x = torch.randn(2, 16, 8, 9)  # batch 2, odd width: 72 and 20 pixels per image
    compiled = pconv_mlir.compile(net, [x], target="llvm-cpu")
    lowering = [r.lowering for r in compiled.report]
    assert all("pconv's tile hint" in line for line in lowering[:2]), lowering
    assert "IREE's tiles (data-tiled on the host)" in lowering[2], lowering
    assert compiled.mlir.count("pconv.tiles") == 2  # the handoff makes them IREE compilation infos
    with torch.no_grad():
        want = net(x).numpy()
    assert rel_err(compiled.run(x.numpy()), want) <= TOLERANCE


def test_compile_cli_and_report(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    from torch_mlir import fx

    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(32, 32, 3, padding=1), nn.ReLU()).eval()
    pattern_prune(net[0], np.random.default_rng(1), group_size=16)
    x = torch.randn(1, 32, 16, 16)
    mlir = tmp_path / "net.mlir"
    mlir.write_text(str(fx.export_and_import(net, x, output_type="linalg-on-tensors", func_name="main")))
    pconv = Path(sys.executable).parent / "pconv"
    out = subprocess.run([str(pconv), "compile", str(mlir), "--target", "llvm-cpu", "-o", str(tmp_path / "m.vmfb"),
                          "--report", str(tmp_path / "r.json"), "--dump-ir", str(tmp_path / "ir")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    conv = report["convolutions"][0]
    assert conv["lowering"].startswith("pattern")
    storage = conv["storage"]  # two groups of 16 filters, each over its kept (channel, tap) rows
    assert storage["nonzero_bytes"] <= storage["packed_bytes"] < storage["dense_bytes"] == 32 * 32 * 9 * 4
    assert (tmp_path / "ir" / "02-pconv-raise-pattern-conv.mlir").is_file()
    from pconv_mlir.runtime import load_module

    got = load_module(str(tmp_path / "m.vmfb"), device="local-sync").run(x.numpy())
    with torch.no_grad():
        assert rel_err(got, net(x).numpy()) <= TOLERANCE
