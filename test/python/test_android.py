"""aarch64 bundles (pconv_mlir.android): compile for arm64-android, bundle with
the aarch64 iree-run-module + glibc loader, run under qemu-aarch64-static and
compare with the x86 llvm-cpu run."""

import argparse
import os
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pconv_mlir import android  # noqa: E402
from pconv_mlir.cli import android as cli_android  # noqa: E402
from pconv_mlir.errors import PconvError, PconvInputError, PconvRuntimeError  # noqa: E402
from pconv_mlir.runtime import load_module  # noqa: E402
from pconv_mlir.targets import compile_mlir  # noqa: E402

needs_qemu = pytest.mark.skipif(shutil.which(android.QEMU) is None,
                                reason="qemu-user-static not installed (apt-get install qemu-user-static)")


class ConvNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(3, 16, 3, padding=1)
        self.c2 = torch.nn.Conv2d(16, 16, 3, stride=2, padding=1, groups=16)
        self.c3 = torch.nn.Conv2d(16, 24, 3, padding=1)
        self.fc = torch.nn.Linear(24, 10)

    def forward(self, x):
        x = torch.relu(self.c1(x))
        x = torch.relu(self.c2(x))
        x = torch.relu(self.c3(x))
        return self.fc(x.mean(dim=(2, 3)))


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    from torch_mlir import fx

    torch.manual_seed(0)
    x = torch.randn(1, 3, 16, 16)
    mlir = str(fx.export_and_import(ConvNet().eval(), x, output_type="linalg-on-tensors"))
    d = tmp_path_factory.mktemp("android")
    arm = d / "arm.vmfb"
    arm.write_bytes(compile_mlir(mlir, "arm64-android"))
    host = d / "host.vmfb"
    host.write_bytes(compile_mlir(mlir, "llvm-cpu"))
    xs = d / "x.npy"
    np.save(xs, x.numpy())
    y_host = load_module(host, device="local-sync").run(x.numpy())
    return dict(dir=d, arm=arm, host=host, x=xs, y_host=y_host)


@pytest.fixture(scope="module")
def bundle_dir(net):
    try:
        android.fetch_runtime_tools()
        android.fetch_glibc()
    except PconvRuntimeError as e:
        pytest.skip(f"cannot fetch the aarch64 runtime tools / glibc: {e}")
    return android.bundle(net["arm"], [net["x"]], net["dir"] / "bundle", references=[net["y_host"]])


def test_bundle_layout(bundle_dir):
    meta = android.load_bundle(bundle_dir)
    for f in ["iree-run-module", "iree-benchmark-module", "ld-linux-aarch64.so.1", "libc.so.6", "libstdc++.so.6",
              "module.vmfb", "input0.npy", "reference0.npy", "run.sh", "bench.sh"]:
        assert (bundle_dir / f).is_file(), f
    assert os.access(bundle_dir / "run.sh", os.X_OK)
    assert (bundle_dir / "iree-run-module").read_bytes()[:4] == b"\x7fELF"
    assert meta["outputs"] == ["output0.npy"] and meta["device"] == "local-task"
    assert "./ld-linux-aarch64.so.1 --library-path . ./iree-run-module" in (bundle_dir / "run.sh").read_text()


@needs_qemu
def test_emulated_run_matches_x86(net, bundle_dir):
    res = android.run_emulated(bundle_dir, timeout=180, tolerance=1e-6)
    assert res.passed, res.summary(1e-6)
    y = res.outputs[0]
    assert y.shape == net["y_host"].shape
    assert np.array_equal(y, net["y_host"]) or res.rel_errors[0] <= 1e-6


@needs_qemu
def test_cli_bundle_run_bench_emulated(net, bundle_dir, tmp_path, capsys):
    ap = argparse.ArgumentParser(prog="pconv")
    cli_android.add_parser(ap.add_subparsers(dest="command"))
    out = tmp_path / "b"
    args = ap.parse_args(["android", "bundle", str(net["arm"]), "--input", str(net["x"]), "-o", str(out),
                          "--reference-module", str(net["host"]), "--device", "local-sync"])
    assert args.handler(args) == 0
    args = ap.parse_args(["android", "run", str(out), "--emulate", "--tolerance", "1e-6", "--timeout", "180"])
    assert args.handler(args) == 0
    assert "PASS" in capsys.readouterr().out
    args = ap.parse_args(["android", "bench", str(out), "--emulate", "--repeats", "1", "--threads", "1",
                          "--timeout", "180", "--device", "local-task"])
    assert args.handler(args) == 0
    assert "BM_main" in capsys.readouterr().out


def test_bundle_rejects_bad_input(net, tmp_path):
    with pytest.raises(PconvInputError, match="shape"):
        android.bundle(net["arm"], [np.zeros((1, 3, 8, 8), np.float32)], tmp_path / "b")
    with pytest.raises(PconvInputError, match="expects 1 input"):
        android.bundle(net["arm"], [], tmp_path / "b")


def test_no_adb_or_bundle(monkeypatch, tmp_path, capsys, bundle_dir):
    ap = argparse.ArgumentParser(prog="pconv")
    cli_android.add_parser(ap.add_subparsers(dest="command"))
    args = ap.parse_args(["android", "run", str(tmp_path)])
    assert args.handler(args) == 1
    assert "not a pconv bundle" in capsys.readouterr().err
    monkeypatch.setenv("PATH", str(tmp_path))  # no adb on PATH
    args = ap.parse_args(["android", "run", str(bundle_dir)])
    assert args.handler(args) == 1
    err = capsys.readouterr().err
    assert "adb not found" in err and "Traceback" not in err
    with pytest.raises(PconvError, match="adb not found"):
        android.bench_adb(bundle_dir)
