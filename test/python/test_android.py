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


@needs_qemu
def test_block_convs_under_qemu_match_torch(tmp_path):
    """1x1 block convs (a bottleneck with a stride-2 block-conv shortcut) compiled by pconv for
    arm64-android and run under qemu match PyTorch; the report says they were lowered as blocks."""
    import pconv_mlir
    from pconv_mlir.numerics import TOLERANCE

    class Bottleneck(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.reduce = torch.nn.Conv2d(64, 32, 1)
            self.mid = torch.nn.Conv2d(32, 32, 3, padding=1)
            self.expand = torch.nn.Conv2d(32, 64, 1, bias=False)
            self.short = torch.nn.Conv2d(64, 64, 1, stride=2)

        def forward(self, x):
            y = torch.relu(self.reduce(x))
            y = self.expand(torch.relu(torch.nn.functional.max_pool2d(self.mid(y), 2)))
            return torch.relu(y + self.short(x))

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = Bottleneck().eval()
    # Each block keeps 16 input channels: the cost model's fewest (cost_model.MIN_ROWS_1X1).
    for conv, g in ((model.reduce, 8), (model.expand, 16), (model.short, 32)):
        k, c = conv.weight.shape[:2]
        mask = np.zeros((k, c), np.float32)
        for s in range(0, k, g):
            mask[s:s + g, rng.choice(c, 16, replace=False)] = 1
        conv.weight.data *= torch.from_numpy(mask).reshape(k, c, 1, 1)
    x = torch.randn(1, 64, 8, 8)
    with torch.no_grad():
        want = model(x).numpy()
    compiled = pconv_mlir.compile(model, [x], target="arm64-android")
    assert [r.lowering.split(" ")[0] for r in compiled.report if "1x1" in r.lowering or "blocks" in r.lowering] \
        == ["blocks"] * 3, [r.lowering for r in compiled.report]
    try:
        android.fetch_runtime_tools()
        android.fetch_glibc()
    except PconvRuntimeError as e:
        pytest.skip(f"cannot fetch the aarch64 runtime tools / glibc: {e}")
    (tmp_path / "m.vmfb").write_bytes(compiled.vmfb)
    out = android.bundle(tmp_path / "m.vmfb", [x.numpy()], tmp_path / "bundle", references=[want])
    res = android.run_emulated(out, timeout=300, tolerance=TOLERANCE)
    assert res.passed, res.summary(TOLERANCE)


def _fake_elf(path, machine: int, interp: bytes) -> None:
    """A minimal 64-bit ELF header + one PT_INTERP program header (enough for the tools check)."""
    import struct

    header = bytearray(64)
    header[:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<HHI", header, 16, 2, machine, 1)
    struct.pack_into("<Q", header, 32, 64)  # e_phoff
    struct.pack_into("<HH", header, 54, 56, 1)  # e_phentsize, e_phnum
    phdr = struct.pack("<IIQQQQQQ", 3, 4, 120, 0, 0, len(interp) + 1, len(interp) + 1, 1)
    path.write_bytes(bytes(header) + phdr + interp + b"\0")
    path.chmod(0o755)


@pytest.fixture(scope="module")
def vulkan_module(tmp_path_factory):
    from support import ADD_MLIR

    d = tmp_path_factory.mktemp("vk")
    (d / "m.vmfb").write_bytes(compile_mlir(ADD_MLIR, "vulkan-adreno"))
    np.save(d / "x.npy", np.ones((2, 4), np.float32))
    return d


def test_vulkan_bundle_with_android_tools(vulkan_module, tmp_path):
    tools = tmp_path / "ndk-tools"
    tools.mkdir()
    for t in android.bundler.TOOLS:
        _fake_elf(tools / t, 183, b"/system/bin/linker64")
    d = android.bundle(vulkan_module / "m.vmfb", [vulkan_module / "x.npy"], tmp_path / "b", android_tools=tools)
    meta = android.load_bundle(d)
    assert meta["tools"] == "android" and meta["device"] == "vulkan"
    bench = (d / "bench.sh").read_text()
    assert "exec $PCONV_EXEC_PREFIX ./iree-benchmark-module" in bench and "ld-linux" not in bench
    assert not (d / android.bundler.LOADER).exists()
    with pytest.raises(PconvRuntimeError, match="Android .bionic. tools"):
        android.bench_emulated(d)
    with pytest.raises(PconvError, match="adb"):  # gets as far as looking for a phone
        android.bench_adb(d)


def test_vulkan_bundle_says_what_is_missing(vulkan_module, tmp_path, monkeypatch):
    """A Vulkan bundle with the glibc tools: bench on a phone and --emulate both refuse, naming
    what is missing, before adb or qemu runs."""
    try:
        d = android.bundle(vulkan_module / "m.vmfb", [vulkan_module / "x.npy"], tmp_path / "b")
    except PconvRuntimeError as e:
        pytest.skip(f"cannot fetch the aarch64 runtime tools / glibc: {e}")
    monkeypatch.setenv("PATH", str(tmp_path))  # no adb: the Vulkan check comes first
    with pytest.raises(PconvRuntimeError, match="cannot load Android's libvulkan.so.*--android-tools"):
        android.bench_adb(d)
    with pytest.raises(PconvRuntimeError, match="no aarch64 Vulkan driver"):
        android.bench_emulated(d)


@pytest.mark.parametrize("machine,interp,words", [(62, b"/system/bin/linker64", "not AArch64"),
                                                   (183, b"/lib/ld-linux-aarch64.so.1", "linker64")])
def test_android_tools_checked(tmp_path, machine, interp, words):
    for t in android.bundler.TOOLS:
        _fake_elf(tmp_path / t, machine, interp)
    with pytest.raises(PconvInputError, match=words):
        android.bundler.check_android_tools(tmp_path)
    with pytest.raises(PconvInputError, match="no iree-run-module"):
        android.bundler.check_android_tools(tmp_path / "missing")
