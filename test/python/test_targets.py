"""Compile-target registry and Vulkan-on-lavapipe parity (pconv_mlir.targets).

The small convnet covers conv stride 1 and 2, dilation, depthwise, 1x1,
residual add, spatial mean and linear.  Vulkan checks run on whatever Vulkan
driver the machine has (lavapipe in CI) and are skipped without one.
"""

import dataclasses

import pytest
from support import needs_vulkan

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

from pconv_mlir.errors import PconvCompileError, PconvError  # noqa: E402
from pconv_mlir.numerics import TOLERANCE, rel_err  # noqa: E402
from pconv_mlir.runtime import load_module  # noqa: E402
from pconv_mlir.targets import TARGETS, Target, compile_mlir, get_target  # noqa: E402


class SmallNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 16, 3, padding=1)
        self.c2 = nn.Conv2d(16, 32, 3, stride=2, padding=1)
        self.dw = nn.Conv2d(32, 32, 3, padding=1, groups=32)
        self.pw = nn.Conv2d(32, 32, 1)
        self.c3 = nn.Conv2d(32, 32, 3, padding=2, dilation=2)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = F.relu(self.c1(x))
        x = F.relu(self.c2(x))
        x = x + F.relu(self.pw(F.relu(self.dw(x))))
        x = F.relu(self.c3(x)) + x
        return self.fc(x.mean(dim=(2, 3)))


class VGGish(nn.Module):
    """VGG-16-CIFAR-like stack, cut to 64/128/256 channels at 32x32."""

    def __init__(self, cfg=(64, 64, "M", 128, 128, "M", 256, 256, "M")):
        super().__init__()
        layers, c = [], 3
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1), nn.BatchNorm2d(v), nn.ReLU()]
                c = v
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(c, 10)

    def forward(self, x):
        return self.fc(self.features(x).mean(dim=(2, 3)))


def _import(model, x):
    from torch_mlir import fx

    model.eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    with torch.no_grad():
        ref = model(x).numpy()
    return str(fx.export_and_import(model, x, output_type="linalg-on-tensors")), ref


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    x = torch.randn(1, 3, 16, 16)
    mlir, ref = _import(SmallNet(), x)
    return mlir, x.numpy(), ref


def test_registry_is_frozen_and_complete():
    for name in ["llvm-cpu", "arm64-android", "vulkan-adreno", "vulkan-valhall", "vulkan-lavapipe"]:
        t = get_target(name)
        assert isinstance(t, Target) and t.name == name
        assert t.description
    with pytest.raises(dataclasses.FrozenInstanceError):
        TARGETS["llvm-cpu"].flags = ()
    arm = get_target("arm64-android")
    assert "--iree-llvmcpu-target-triple=aarch64-linux-android30" in arm.flags
    assert arm.arch == "aarch64" and arm.runtime_device == "local-task"
    assert "--iree-vulkan-target=adreno" in get_target("vulkan-adreno").flags
    assert "--iree-vulkan-target=valhall" in get_target("vulkan-valhall").flags
    lvp = get_target("vulkan-lavapipe")
    assert "subgroup_size_choices = [8]" in lvp.device_targets_attr
    assert lvp.runs_on_host and lvp.runtime_device == "vulkan"


def test_nhwc_builds_pick_their_own_flags():
    """pconv's NHWC host builds run IREE's direct convs; IREE's own (NCHW) dense build keeps im2col."""
    im2col = "--iree-global-opt-use-im2col-for-convs"
    host = get_target("llvm-cpu")
    assert im2col in host.iree_flags(dense=True) and im2col not in host.iree_flags()
    assert "--iree-opt-data-tiling" in host.iree_flags() and "--iree-opt-data-tiling" in host.iree_flags(dense=True)
    for name in ("llvm-cpu-generic", "arm64-android", "vulkan-lavapipe"):  # unmeasured: one flag set
        t = get_target(name)
        assert t.iree_flags() == t.iree_flags(dense=True) == t.dense_flags == t.iree_flags(depthwise=True)


def test_depthwise_networks_fuse_pads_on_the_host():
    fuse = "--iree-dispatch-creation-enable-fuse-padding-into-linalg-consumer-ops"
    host = get_target("llvm-cpu")
    assert fuse in host.iree_flags(depthwise=True)
    assert fuse not in host.iree_flags() and fuse not in host.iree_flags(dense=True, depthwise=True)


def test_unknown_target():
    with pytest.raises(PconvCompileError, match="unknown target"):
        get_target("tpu-v9")


def test_compile_error_carries_diagnostics():
    bad = ("func.func @main(%a: tensor<4xf32>) -> tensor<4xf32> { %0 = arith.addf %a, %b : tensor<4xf32>\n"
           " return %0 : tensor<4xf32> }")
    with pytest.raises(PconvCompileError) as ei:
        compile_mlir(bad, "llvm-cpu")
    e = ei.value
    assert isinstance(e, PconvError)
    assert "undefined" in e.diagnostics or "use of undeclared" in e.diagnostics
    assert "Invoked with" not in str(e)  # tool command line is not dumped
    assert e.target == "llvm-cpu"


def test_compile_error_lavapipe_parse():
    with pytest.raises(PconvCompileError, match="cannot parse"):
        compile_mlir("this is not mlir", "vulkan-lavapipe")


def test_llvm_cpu_parity(small):
    mlir, x, ref = small
    mod = load_module(compile_mlir(mlir, "llvm-cpu"), device="local-sync")
    y = mod.run(x)
    assert rel_err(y, ref) <= TOLERANCE


def test_arm64_android_compiles(small):
    mlir, _, _ = small
    vmfb = compile_mlir(mlir.encode(), "arm64-android")
    assert vmfb[:4] == b"PK\x03\x04" and b"embedded_elf_arm_64" in vmfb


@needs_vulkan
def test_vulkan_lavapipe_parity(small):
    mlir, x, ref = small
    mod = load_module(compile_mlir(mlir, "vulkan-lavapipe"), device="vulkan")
    y = mod.run(x)
    assert rel_err(y, ref) <= TOLERANCE


@pytest.mark.slow
@needs_vulkan
def test_vgg_adreno_wrong_lavapipe_right():
    """Reproduces docs/vulkan-targets.md: adreno/valhall SPIR-V is wrong on
    lavapipe (subgroup size 8); the vulkan-lavapipe target is right."""
    torch.manual_seed(0)
    x = torch.randn(1, 3, 32, 32)
    mlir, ref = _import(VGGish(), x)
    errs = {}
    for t in ["vulkan-lavapipe", "vulkan-adreno", "vulkan-valhall"]:
        y = load_module(compile_mlir(mlir, t), device="vulkan").run(x.numpy())
        errs[t] = rel_err(y, ref)
    assert errs["vulkan-lavapipe"] <= TOLERANCE, errs
    assert errs["vulkan-adreno"] > 1e-2 and errs["vulkan-valhall"] > 1e-2, errs


def test_tile_hints_become_compilation_infos_where_measured():
    from pconv_mlir.targets import apply_tile_hints, get_target

    text = 'linalg.batch_matmul {pconv.tiles = "distribution = [1, 8, 64, 0]"} ins(%a, %b : t, t)'
    host = apply_tile_hints(text, get_target("llvm-cpu"))
    assert "compilation_info = #iree_codegen.compilation_info<lowering_config = " \
           "#iree_cpu.lowering_config<distribution = [1, 8, 64, 0]>" in host and "pconv.tiles" not in host
    for name in ("vulkan-lavapipe", "arm64-android", "llvm-cpu-generic"):  # not measured there: dropped
        assert apply_tile_hints(text, get_target(name)) == "linalg.batch_matmul ins(%a, %b : t, t)"
