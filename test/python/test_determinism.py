"""Determinism: the same input compiles to byte-identical MLIR and .vmfb.

Within one process, across processes with different hash seeds (set/dict order in our
passes), and from input files at different paths (no temporary or input paths embedded).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

import pconv_mlir
from pconv_mlir.compiler import import_model
from pconv_mlir.synthetic import pattern_prune_conv

REPO = Path(__file__).resolve().parents[2]


class Net(nn.Module):
    """Pattern convs with and without shared groups (reorder, compact, load elimination,
    a permutation left to lower), a depthwise conv and a dense one."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(8, 32, 3, padding=1)
        self.b = nn.Conv2d(32, 32, 3, padding=1, bias=False)
        self.dw = nn.Conv2d(32, 32, 3, padding=1, groups=32)
        self.c = nn.Conv2d(32, 16, 3, stride=2, padding=1)
        self.d = nn.Conv2d(16, 8, 1)

    def forward(self, x):
        x = torch.relu(self.a(x))
        x = torch.max_pool2d(torch.relu(self.b(x)), 2)
        return self.d(torch.relu(self.c(self.dw(x))))


@pytest.fixture(scope="module")
def mlir_text() -> str:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    net = Net().eval()
    pattern_prune_conv(net.a, rng, group_size=1, keep=0.5)
    pattern_prune_conv(net.b, rng, group_size=8, keep=0.3)
    pattern_prune_conv(net.dw, rng, group_size=1)
    pattern_prune_conv(net.c, rng, group_size=1, keep=0.3)
    return import_model(net, [torch.randn(1, 8, 16, 16)])


@pytest.fixture(scope="module")
def compiled(mlir_text):
    return pconv_mlir.compile(mlir_text, target="llvm-cpu")


def _digest(data: str | bytes) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def test_import_is_deterministic(mlir_text):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    net = Net().eval()
    pattern_prune_conv(net.a, rng, group_size=1, keep=0.5)
    pattern_prune_conv(net.b, rng, group_size=8, keep=0.3)
    pattern_prune_conv(net.dw, rng, group_size=1)
    pattern_prune_conv(net.c, rng, group_size=1, keep=0.3)
    assert import_model(net, [torch.randn(1, 8, 16, 16)]) == mlir_text


def test_same_input_same_bytes(mlir_text, compiled, tmp_path):
    """Twice in this process, and from files at two different paths: identical bytes."""
    first = compiled
    assert any(r.lowering.startswith("pattern") for r in first.report), [r.lowering for r in first.report]
    second = pconv_mlir.compile(mlir_text, target="llvm-cpu")
    assert first.mlir == second.mlir
    assert first.vmfb == second.vmfb
    assert [r.lowering for r in first.report] == [r.lowering for r in second.report]
    other = tmp_path / "elsewhere" / "renamed model.mlir"
    other.parent.mkdir()
    other.write_text(mlir_text)
    third = pconv_mlir.compile(str(other), target="llvm-cpu", dump_ir=str(tmp_path / "ir"))
    assert third.mlir == first.mlir and third.vmfb == first.vmfb
    assert str(tmp_path).encode() not in third.vmfb and str(tmp_path) not in third.mlir


def test_same_bytes_across_processes_and_hash_seeds(mlir_text, compiled, tmp_path):
    """Python's str hash seed changes set and dict-of-set iteration order: a pass that
    depended on it would emit different IR in another process."""
    src = tmp_path / "m.mlir"
    src.write_text(mlir_text)
    here = compiled
    script = textwrap.dedent(f"""
        import hashlib, pconv_mlir
        c = pconv_mlir.compile({str(src)!r}, target="llvm-cpu")
        print(hashlib.sha256(c.mlir.encode()).hexdigest(), hashlib.sha256(c.vmfb).hexdigest())
    """)
    for seed in ("1", "4242"):
        env = dict(os.environ, PYTHONHASHSEED=seed,
                   PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, env=env,
                           cwd=str(tmp_path))
        assert r.returncode == 0, r.stderr[-2000:]
        mlir_hash, vmfb_hash = r.stdout.split()
        assert mlir_hash == _digest(here.mlir), f"MLIR differs with PYTHONHASHSEED={seed}"
        assert vmfb_hash == _digest(here.vmfb), f".vmfb differs with PYTHONHASHSEED={seed}"


def test_pconv_opt_output_is_deterministic(mlir_text, tmp_path):
    """Every pconv pass alone and the whole pipeline: the same text twice."""
    from pconv_mlir.compiler import PCONV_PIPELINE
    from pconv_mlir.tools.pconv_opt import main

    src = tmp_path / "m.mlir"
    src.write_text(mlir_text)
    forced = PCONV_PIPELINE.replace("pconv-lower-to-linalg", "pconv-lower-to-linalg{force=true}")
    for pipeline in (PCONV_PIPELINE, forced):
        outs = []
        for i in range(2):
            out = tmp_path / f"out{i}.mlir"
            assert main([str(src), "-p", pipeline, "-o", str(out)]) == 0
            outs.append(out.read_bytes())
        assert outs[0] == outs[1], pipeline


def test_vulkan_module_is_deterministic(mlir_text):
    a = pconv_mlir.compile(mlir_text, target="vulkan-lavapipe")
    b = pconv_mlir.compile(mlir_text, target="vulkan-lavapipe")
    assert a.mlir == b.mlir and a.vmfb == b.vmfb
