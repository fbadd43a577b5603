"""Runtime wrapper (pconv_mlir.runtime) and the `run`/`bench` CLI handlers."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from support import needs_vulkan

torch = pytest.importorskip("torch")

from pconv_mlir.cli import runtime as cli_runtime  # noqa: E402
from pconv_mlir.errors import PconvInputError, PconvRuntimeError  # noqa: E402
from pconv_mlir.numerics import TOLERANCE, rel_err  # noqa: E402
from pconv_mlir.runtime import aligned_copy, bench, load_module, parse_signature  # noqa: E402
from pconv_mlir.targets import compile_mlir  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c = torch.nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.fc = torch.nn.Linear(8, 5)

    def forward(self, x):
        return self.fc(torch.relu(self.c(x)).mean(dim=(2, 3)))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from torch_mlir import fx

    torch.manual_seed(0)
    m = Tiny().eval()
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        ref = m(x).numpy()
    mlir = str(fx.export_and_import(m, x, output_type="linalg-on-tensors"))
    d = tmp_path_factory.mktemp("rt")
    cpu = d / "cpu.vmfb"
    cpu.write_bytes(compile_mlir(mlir, "llvm-cpu"))
    np.save(d / "x.npy", x.numpy())
    return dict(mlir=mlir, x=x, ref=ref, cpu=cpu, dir=d)


def test_parse_signature():
    ins, outs = parse_signature("sync func @main(%input0: tensor<1x3x?x16xf32>, %input1: tensor<4xi8>) "
                                "-> (%output0: tensor<1x10xf32>)")
    assert ins[0].shape == (1, 3, None, 16) and ins[0].dtype == np.float32
    assert ins[1].shape == (4,) and ins[1].dtype == np.int8
    assert outs[0].shape == (1, 10)


def test_aligned_copy():
    a = np.arange(10, dtype=np.float32).reshape(2, 5)
    b = aligned_copy(a)
    assert b.ctypes.data % 4096 == 0 and np.array_equal(a, b) and b.flags.c_contiguous


@pytest.mark.parametrize("device", ["local-sync", "local-task"])
def test_run_numpy_and_torch(tiny, device):
    mod = load_module(tiny["cpu"], device=device)
    y = mod.run(tiny["x"].numpy())
    assert rel_err(y, tiny["ref"]) <= 1e-5
    y2 = mod.run(tiny["x"])  # torch tensor input
    assert np.array_equal(y, y2)
    assert mod.function_names == ["main"]


def test_input_checks(tiny):
    mod = load_module(tiny["cpu"].read_bytes(), device="local-sync")
    x = tiny["x"].numpy()
    with pytest.raises(PconvInputError, match="shape"):
        mod.run(np.zeros((1, 3, 9, 8), np.float32))
    with pytest.raises(PconvInputError, match="dtype"):
        mod.run(x.astype(np.float64))
    with pytest.raises(PconvInputError, match="expects 1 input"):
        mod.run(x, x)
    with pytest.raises(PconvRuntimeError, match="no function"):
        mod.run(x, function="nope")


def test_corrupt_and_missing_modules(tiny, tmp_path):
    data = tiny["cpu"].read_bytes()
    with pytest.raises(PconvRuntimeError, match="corrupt or truncated"):
        load_module(data[: len(data) // 2], device="local-sync")
    with pytest.raises(PconvRuntimeError, match="not an IREE"):
        load_module(b"\x00" * 64, device="local-sync")
    with pytest.raises(PconvRuntimeError, match="not found"):
        load_module(tmp_path / "nope.vmfb")
    with pytest.raises(PconvRuntimeError, match="unknown device"):
        load_module(data, device="cuda-ish")


def test_threads_fixed_per_process(tiny):
    mod = load_module(tiny["cpu"], device="local-task")
    n = mod.threads
    if n is None:
        pytest.skip("local-task driver was created outside pconv_mlir in this process")
    assert n >= 1
    assert load_module(tiny["cpu"], device="local-task", threads=n).threads == n
    with pytest.raises(PconvRuntimeError, match="new process"):
        load_module(tiny["cpu"], device="local-task", threads=n + 1)


def test_bench(tiny):
    mod = load_module(tiny["cpu"], device="local-sync")
    r = bench(mod, [tiny["x"].numpy()], warmup=1, repeats=5)
    assert set(r) >= {"median_ms", "p10", "p90", "min", "threads", "device"}
    assert r["min"] <= r["p10"] <= r["median_ms"] <= r["p90"]
    assert r["device"] == "local-sync"


@needs_vulkan
def test_vulkan_alignment(tiny):
    """Unaligned numpy inputs (and outputs) go through 4096-aligned buffers."""
    mod = load_module(compile_mlir(tiny["mlir"], "vulkan-lavapipe"), device="vulkan")
    x = np.zeros(1 + tiny["x"].numel(), np.float32)[1:].reshape(1, 3, 8, 8)  # misaligned view
    x[...] = tiny["x"].numpy()
    y = mod.run(x)
    assert rel_err(y, tiny["ref"]) <= TOLERANCE
    r = bench(mod, [x], warmup=0, repeats=2)
    assert r["device"] == "vulkan" and r["threads"] is None


def _cli(*argv, env=None):
    e = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "pconv_mlir.cli.main", *map(str, argv)], capture_output=True,
                          text=True, env=e, timeout=120)


def test_cli_run_and_bench(tiny, tmp_path, capsys):
    import argparse

    ap = argparse.ArgumentParser(prog="pconv")
    cli_runtime.add_parser(ap.add_subparsers(dest="command"))
    out = tmp_path / "y.npy"
    args = ap.parse_args(["run", str(tiny["cpu"]), "--device", "local-sync", "--input", str(tiny["dir"] / "x.npy"),
                          "--output", str(out)])
    assert args.handler(args) == 0
    assert rel_err(np.load(out), tiny["ref"]) <= 1e-5
    args = ap.parse_args(["bench", str(tiny["cpu"]), "--device", "local-sync", "--repeats", "3", "--warmup", "1"])
    assert args.handler(args) == 0
    assert "median" in capsys.readouterr().out
    # errors: one line on stderr, exit 1, no traceback
    args = ap.parse_args(["run", str(tiny["cpu"]), "--device", "local-sync", "--input", str(tmp_path / "missing.npy")])
    assert args.handler(args) == 1
    err = capsys.readouterr().err
    assert "input file not found" in err and "Traceback" not in err


def test_cli_threads_subprocess(tiny):
    r = _cli("bench", tiny["cpu"], "--device", "local-task", "--threads", "1", "--repeats", "3")
    assert r.returncode == 0, r.stderr
    assert "threads 1" in r.stdout


def test_cli_no_vulkan_driver(tiny):
    """A Vulkan module goes to the vulkan device by itself; with no driver, one line says so."""
    vk = tiny["dir"] / "vk.vmfb"
    vk.write_bytes(compile_mlir(tiny["mlir"], "vulkan-lavapipe"))
    no_icd = {"VK_ICD_FILENAMES": "/nonexistent/icd.json", "VK_DRIVER_FILES": "/nonexistent/icd.json"}
    r = _cli("run", vk, "--input", tiny["dir"] / "x.npy", env=no_icd)
    assert r.returncode == 1
    assert "Vulkan" in r.stderr and "Traceback" not in r.stderr
