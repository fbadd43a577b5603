"""compile(precision=...): fp16 weights (and math) for the pattern GEMMs, checked against PyTorch.

The tolerance is numerics.FP16_TOLERANCE (rel err vs PyTorch fp32); the digits test (slow)
checks top-1 agreement with the fp32 module through compiled modules.
"""

import subprocess
import sys

import numpy as np
import pytest
from support import needs_vulkan

torch = pytest.importorskip("torch")

import pconv_mlir  # noqa: E402
from pconv_mlir.errors import PconvInputError  # noqa: E402
from pconv_mlir.numerics import FP16_TOLERANCE, FP16_TOP1_AGREEMENT, TOLERANCE, rel_err  # noqa: E402
from pconv_mlir.testing.sparse_gen import random_pattern_weight  # noqa: E402


def _net():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(64, 64, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv2d(64, 64, 3, padding=1, stride=2), torch.nn.ReLU(),
                              torch.nn.Conv2d(64, 32, 3, padding=1))
    for i, conv in enumerate([net[0], net[2], net[4]]):
        conv.weight.data = torch.from_numpy(random_pattern_weight(conv.out_channels, conv.in_channels, 16, seed=i))
    return net.eval(), torch.randn(1, 64, 16, 16)


@needs_vulkan
@pytest.mark.parametrize("precision", ["fp32", "fp16-storage", "fp16"])
def test_precision_matches_torch_on_lavapipe(precision):
    net, x = _net()
    compiled = pconv_mlir.compile(net, [x], target="vulkan-lavapipe", precision=precision)
    assert [r.precision for r in compiled.report] == [precision] * 3
    assert all(r.lowering.startswith("pattern") for r in compiled.report)
    out = compiled.run(x.numpy())
    assert out.dtype == np.float32  # the module boundary stays f32
    err = rel_err(out, net(x).detach().numpy())
    assert err <= (TOLERANCE if precision == "fp32" else FP16_TOLERANCE), err
    if precision != "fp32":
        assert err > 1e-6, "fp16 weights should change the numbers at all"


def test_fp16_storage_halves_the_packed_weights():
    net, x = _net()
    mods = {p: pconv_mlir.compile(net, [x], target="vulkan-adreno", precision=p) for p in ("fp32", "fp16-storage")}
    for a, b in zip(mods["fp32"].report, mods["fp16-storage"].report, strict=True):
        assert b.storage["packed_bytes"] * 2 == a.storage["packed_bytes"]


@pytest.mark.parametrize("target,precision,words", [
    ("vulkan-android-baseline", "fp16", "neither shaderFloat16 nor 16-bit storage"),
    ("vulkan-android-baseline", "fp16-storage", "neither shaderFloat16 nor 16-bit storage"),
    ("llvm-cpu", "fp16", "Vulkan targets and arm64-android"),
    ("arm64-android-baseline", "fp16", "Armv8.2-A"),
    ("vulkan-lavapipe", "fp8", "unknown precision"),
])
def test_bad_precision_is_refused_before_any_work(target, precision, words):
    with pytest.raises(PconvInputError, match=words):
        pconv_mlir.compile("not even MLIR", target=target, precision=precision)


def test_dense_build_is_fp32_only():
    with pytest.raises(PconvInputError, match="dense build"):
        pconv_mlir.compile("not even MLIR", target="vulkan-adreno", dense=True, precision="fp16")


def test_cli_precision_error_is_one_line(tmp_path):
    mlir = tmp_path / "m.mlir"
    mlir.write_text("func.func @main() {\n  return\n}\n")
    res = subprocess.run([sys.executable, "-m", "pconv_mlir.cli.main", "compile", str(mlir), "--target",
                          "vulkan-android-baseline", "--precision", "fp16", "-o", str(tmp_path / "m.vmfb")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode != 0
    assert "shaderFloat16" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.slow
@needs_vulkan
def test_fp16_top1_agrees_with_fp32_on_digits():
    """A small_cnn trained (3 epochs) and pattern-pruned (G=8, 2 epochs) on digits; the whole
    test set (540 images) through fp32 and fp16 modules on lavapipe (~5 min on 2 busy cores)."""
    from pconv_mlir.data import load_digits
    from pconv_mlir.models import small_cnn
    from pconv_mlir.pruning import PruningConfig, prune_and_retrain
    from pconv_mlir.pruning.recipe import fit

    torch.manual_seed(0)
    data = load_digits()
    train, _ = data.loaders(batch_size=64)
    model = small_cnn(width=32)
    fit(model, train, 3, 3e-3)
    prune_and_retrain(model, train, PruningConfig(group_size=8), "oneshot", admm_epochs=0, retrain_epochs=2)
    model.eval()
    x = data.x_test
    with torch.no_grad():
        ref = model(x).numpy()
    outs = {}
    for precision in ("fp32", "fp16-storage", "fp16"):
        compiled = pconv_mlir.compile(model, [x], target="vulkan-lavapipe", precision=precision)
        assert sum(r.precision == precision for r in compiled.report) >= 4  # the pattern convs
        outs[precision] = compiled.run(x.numpy())
        assert rel_err(outs[precision], ref) <= (TOLERANCE if precision == "fp32" else FP16_TOLERANCE)
    for precision in ("fp16-storage", "fp16"):
        agree = float(np.mean(outs[precision].argmax(1) == outs["fp32"].argmax(1)))
        assert agree >= FP16_TOP1_AGREEMENT, (precision, agree)


@pytest.mark.skipif(__import__("shutil").which("qemu-aarch64-static") is None,
                    reason="qemu-user-static not installed (apt-get install qemu-user-static)")
@pytest.mark.parametrize("precision", ["fp16-storage", "fp16"])
def test_arm64_android_fp16_matches_torch_under_qemu(precision, tmp_path):
    """The aarch64 (+fullfp16) code, run by the bundled tools under qemu-aarch64-static."""
    from pconv_mlir import android
    from pconv_mlir.errors import PconvRuntimeError

    net, x = _net()
    compiled = pconv_mlir.compile(net, [x], target="arm64-android", precision=precision)
    assert [r.precision for r in compiled.report] == [precision] * 3
    want = net(x).detach().numpy()
    try:
        d = android.bundle(compiled.vmfb, [x.numpy()], tmp_path / "b", references=[want])
    except PconvRuntimeError as e:
        pytest.skip(f"cannot fetch the aarch64 runtime tools / glibc: {e}")
    res = android.run_emulated(d, tolerance=FP16_TOLERANCE)
    assert res.passed, res.rel_errors
    assert res.rel_errors[0] > 1e-6
