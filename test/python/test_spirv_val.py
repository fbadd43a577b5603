"""Every phone target's SPIR-V passes spirv-val (pconv_mlir.testing.spirv_check).

Skipped, saying why, where Debian's spirv-tools is not installed (scripts/setup.sh installs it).
"""

import pytest
from support import ADD_MLIR

torch = pytest.importorskip("torch")

import pconv_mlir  # noqa: E402
from pconv_mlir.targets import TARGETS, fix_spirv_headers, spirv_modules  # noqa: E402
from pconv_mlir.testing.sparse_gen import random_pattern_weight  # noqa: E402
from pconv_mlir.testing.spirv_check import spirv_val_path, validate_vmfb  # noqa: E402

needs_spirv_val = pytest.mark.skipif(spirv_val_path() is None,
                                     reason="spirv-val not found (apt-get install spirv-tools)")
PHONE_TARGETS = [t.name for t in TARGETS.values() if t.backend == "vulkan-spirv" and not t.runs_on_host]


def _net():
    """Pattern convs (stride 1 and 2), a depthwise conv, a 1x1 conv: every kernel family."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv2d(64, 64, 3, padding=1, stride=2), torch.nn.ReLU(),
                              torch.nn.Conv2d(64, 64, 3, padding=1, groups=64), torch.nn.Conv2d(64, 32, 1))
    for i, conv in enumerate([net[0], net[2]]):
        conv.weight.data = torch.from_numpy(random_pattern_weight(conv.out_channels, conv.in_channels, 16, seed=i))
    return net.eval(), torch.randn(1, 32, 8, 8)


def _cases():
    """fp32 on every phone target and fp16 on adreno by default; the other fp16 ones are slow
    (each compile takes ~10 s on the shared 2 cores)."""
    for t in PHONE_TARGETS:
        for p in TARGETS[t].precisions:
            fast = p == "fp32" or (t, p) == ("vulkan-adreno", "fp16")
            yield pytest.param(t, p, marks=() if fast else pytest.mark.slow)


@needs_spirv_val
@pytest.mark.parametrize("target,precision", list(_cases()))
def test_phone_target_spirv_passes_spirv_val(target, precision):
    net, x = _net()
    compiled = pconv_mlir.compile(net, [x], target=target, precision=precision)
    assert any(r.lowering.startswith("pattern") for r in compiled.report)
    result = validate_vmfb(compiled.vmfb, target)
    assert result.modules >= 1
    assert result.ok, result.errors


@needs_spirv_val
def test_iree_headers_need_the_fix():
    """IREE 3.13 labels its 1.6 modules SPIR-V 1.0 (storage buffers in the entry point
    interface): spirv-val rejects them as written, accepts them with the target's version. When
    an IREE update writes the right header this test says the fix can go."""
    import iree.compiler as ic

    raw = bytes(ic.compile_str(ADD_MLIR, target_backends=[], extra_args=["--iree-hal-target-device=vulkan",
                                                                       "--iree-vulkan-target=adreno"]))
    assert not validate_vmfb(raw, "vulkan-adreno").ok
    fixed = fix_spirv_headers(raw, "1.6")
    assert len(fixed) == len(raw) and validate_vmfb(fixed, "vulkan-adreno").ok
    from pconv_mlir.runtime.module import _zip_member_error

    assert _zip_member_error(fixed) is None  # the zip framing's CRC-32s follow the edit


def test_header_fix_leaves_other_bytes_alone():
    """Must not fire: the magic word in data without a matching length prefix and generator."""
    data = bytes(8) + bytes.fromhex("03022307") + bytes(range(16)) * 4
    assert spirv_modules(data) == []
    assert fix_spirv_headers(data, "1.6") == data
    assert fix_spirv_headers(b"\x00" * 64, "") == b"\x00" * 64


@pytest.mark.slow
@needs_spirv_val
@pytest.mark.parametrize("target", PHONE_TARGETS)
@pytest.mark.parametrize("name", ["vgg16_cifar", "resnet50", "mobilenet_v2"])
def test_models_spirv_passes_spirv_val(name, target):
    from pconv_mlir.models import build_model
    from pconv_mlir.synthetic import pattern_prune_model

    torch.manual_seed(0)
    model = pattern_prune_model(build_model(name).eval(), seed=1, group_size=8)
    precision = "fp16" if "fp16" in TARGETS[target].precisions else "fp32"
    compiled = pconv_mlir.compile(model, [torch.randn(1, 3, 32, 32)], target=target, precision=precision)
    result = validate_vmfb(compiled.vmfb, target)
    assert result.ok, (name, target, result.errors[:3])
