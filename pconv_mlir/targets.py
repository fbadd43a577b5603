"""Compile targets: a registry of named IREE target descriptions.

Each :class:`Target` says which ``iree-compile`` flags produce a module for one
kind of device, and which runtime device runs it.  Use::

    from pconv_mlir.targets import compile_mlir, get_target, TARGETS
    vmfb = compile_mlir(mlir_text, "vulkan-lavapipe")

Targets
-------
``llvm-cpu``         this host's CPU (``--iree-llvmcpu-target-cpu=host``; not portable).
``llvm-cpu-generic`` x86-64 without host-specific features (portable across x86 hosts).
``arm64-android``    aarch64 Android (API 30) CPUs with Armv8.2-A + NEON + fp16 + dot
                     product (Cortex-A55/A75/A76 and later: every big.LITTLE phone SoC
                     since 2018).  The code object is an OS-independent embedded ELF, so
                     the same module runs under the aarch64 ``iree-run-module`` on
                     Linux/qemu (see pconv_mlir.android).
``arm64-android-baseline``  same, Armv8.0-A + NEON only (any 64-bit Android phone).
``vulkan-adreno``    Qualcomm Adreno GPUs (IREE's ``adreno`` target: subgroup 64,
                     fp16/int8 compute).  For phones; NOT correct on lavapipe.
``vulkan-valhall``   Arm Mali Valhall GPUs (IREE's ``valhall``: subgroup 16).  For
                     phones; NOT correct on lavapipe.
``vulkan-android-baseline``  IREE's ``vp_android_baseline_2022`` profile (no subgroup
                     ops, subgroup 64, 128 threads/workgroup).  NOT reliable on lavapipe.
``vulkan-lavapipe``  Mesa's lavapipe (llvmpipe) CPU Vulkan driver, as found on this
                     machine: subgroup size fixed at 8, 1024 threads per workgroup,
                     32 KiB shared memory, shuffle/arithmetic subgroup ops, fp16/fp64/
                     int8/int16/int64.  Use it for Vulkan parity checks on a machine
                     without a GPU.

Why ``vulkan-lavapipe`` exists (see docs/vulkan-targets.md for the measurements):
IREE's SPIR-V code generation picks workgroup shapes and shared-memory data
flow from the target's subgroup size, and for workgroups no larger than one
subgroup it relies on lock-step execution (no barriers).  lavapipe executes
subgroups of 8 lanes, so modules compiled for a 16/64-lane target race and give
wrong results there.  ``--iree-vulkan-target`` only accepts IREE's built-in
names (none has subgroup size 8), so this target is expressed as an IR-level
``hal.device.targets`` attribute with a full ``#iree_gpu.target`` description,
which :func:`compile_mlir` attaches to the input module.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .errors import PconvCompileError

__all__ = [
    "Target",
    "TARGETS",
    "get_target",
    "target_names",
    "compile_mlir",
    "DENSE_FLAGS",
    "LAVAPIPE_GPU_TARGET",
    "vulkan_device_targets_attr",
    "spirv_modules",
    "fix_spirv_headers",
]


@dataclass(frozen=True)
class Target:
    """One compile target.

    Attributes:
      name: registry key (``pconv compile --target NAME``).
      description: one line for ``--help`` / docs.
      backend: IREE HAL backend: ``"llvm-cpu"`` or ``"vulkan-spirv"``.
      runtime_device: IREE runtime device that runs the modules
        (``"local-task"`` or ``"vulkan"``).
      flags: iree-compile flags.
      device_targets_attr: if set, an MLIR ``hal.device.targets`` attribute
        value that :func:`compile_mlir` attaches to the input module's
        ``builtin.module`` (used when no flag can express the target).
      runs_on_host: True if modules for this target can run on an x86-64
        Linux host with lavapipe (the CI machine); False for phone-only targets
        whose modules load but are not guaranteed correct here, or aarch64 code.
      arch: "x86_64", "aarch64" or "gpu".
      dense_flags: the best iree-compile flags known for IREE's own dense compile (NCHW, as
        imported) on this backend, and for pconv's builds unless ``nhwc_dense_flags`` says otherwise.
      nhwc_dense_flags: the best flags for a pconv build whose network runs NHWC (``layout``),
        where IREE's direct convs beat its im2col; None: ``dense_flags``. :meth:`iree_flags` picks.
      depthwise_flags: added to a pconv build of a network with depthwise convs (``iree_flags``).
      im2col_dense_convs: pconv lowers the convs it leaves dense itself (im2col copy +
        batched GEMM, ``pconv-im2col-dense-convs``) instead of handing them to IREE, whose
        conv code for this backend is wrong on some shapes.
      layout: the layout the network's convolutions run in: "nhwc" on the CPU targets
        (``pconv-convert-to-nhwc``: IREE's NHWC conv code is 2-40x faster there), "nchw" on Vulkan.
      gemm_tile_hints: pattern convs' block GEMMs get pconv's measured tile sizes
        (:func:`apply_tile_hints`); only where they were measured (the x86 host).
      precisions: the pattern GEMM precisions the device can run (``compile(precision=...)``):
        fp16-storage needs 16-bit storage buffers (Vulkan ``b16``) or fp16 conversions, fp16
        also fp16 arithmetic (``shaderFloat16``, Armv8.2-A FP16).
      no_fp16_reason: what the device lacks, for the error when a precision is refused.
      spirv_version: the SPIR-V version the Vulkan device takes ("1.6" for Vulkan 1.3 devices), as
        in the target's ``features = "spirv:vX.Y"``; the modules' SPIR-V headers say it
        (:func:`fix_spirv_headers`). Empty on CPU targets.
    """

    name: str
    description: str
    backend: str
    runtime_device: str
    flags: tuple[str, ...]
    device_targets_attr: str | None = None
    runs_on_host: bool = True
    arch: str = "gpu"
    dense_flags: tuple[str, ...] = ()
    nhwc_dense_flags: tuple[str, ...] | None = None
    depthwise_flags: tuple[str, ...] = ()
    im2col_dense_convs: bool = False
    layout: str = "nchw"
    gemm_tile_hints: bool = False
    precisions: tuple[str, ...] = ("fp32",)
    no_fp16_reason: str = ""
    spirv_version: str = ""

    def iree_flags(self, dense: bool = False, depthwise: bool = False) -> tuple[str, ...]:
        """The extra iree-compile flags of a build: IREE's dense compile (``dense``) or pconv's,
        of a network with depthwise convs (``depthwise``) or not."""
        if dense:
            return self.dense_flags
        base = self.dense_flags if self.nhwc_dense_flags is None else self.nhwc_dense_flags
        return base + self.depthwise_flags if depthwise else base

    def compile_flags(self, extra_flags: Iterable[str] = ()) -> list[str]:
        return list(self.flags) + list(extra_flags)


# lavapipe as reported by `vulkaninfo` (Mesa 22.3.6, llvmpipe LLVM 15, 256-bit):
# subgroupSize = minSubgroupSize = maxSubgroupSize = 8; subgroup ops basic, vote,
# arithmetic, ballot, shuffle, shuffle_relative, quad; maxComputeWorkGroupSize
# 1024^3, maxComputeWorkGroupInvocations 1024, maxComputeSharedMemorySize 32768,
# maxComputeWorkGroupCount 65535^3; shaderFloat16/Float64/Int8/Int16/Int64,
# storageBuffer8/16BitAccess; shaderIntegerDotProduct (not accelerated);
# no cooperative matrix; Vulkan 1.3 (SPIR-V 1.6).
LAVAPIPE_GPU_TARGET = (
    '#iree_gpu.target<arch = "lavapipe", features = "spirv:v1.6,cap:Shader", '
    "wgp = <compute = fp64|fp32|fp16|int64|int32|int16|int8, "
    "storage = b64|b32|b16|b8, subgroup = shuffle|arithmetic, dot = dp4xi8toi32, "
    "mma = [], subgroup_size_choices = [8], max_workgroup_sizes = [1024, 1024, 1024], "
    "max_thread_count_per_workgroup = 1024, max_workgroup_memory_bytes = 32768, "
    "max_workgroup_counts = [65535, 65535, 65535]>>"
)


def vulkan_device_targets_attr(gpu_target: str) -> str:
    """``hal.device.targets`` value for one Vulkan device described by an
    ``#iree_gpu.target<...>`` attribute."""
    exe = (
        '#hal.executable.target<"vulkan-spirv", "vulkan-spirv-fb", '
        f"{{iree_codegen.target_info = {gpu_target}}}>"
    )
    return f'[#hal.device.target<"vulkan", [{exe}]> : !hal.device]'


_CPU = ("--iree-hal-target-device=local", "--iree-hal-local-target-device-backends=llvm-cpu")
# Best dense flags measured on llvm-cpu (dense VGG-16 12.3 -> 8.2 ms, NOTES.md); also the
# Vulkan targets' choice: without it IREE 3.13's SPIR-V convs give pattern-sparse ResNet-50 rel err
# 0.19 on lavapipe (32x32), with it all three models are right, but one differential case is
# wrong (dense 10->27 3x3 on 9x5 with bias: rel err 32; test_differential.py, a strict xfail).
DENSE_FLAGS = ("--iree-global-opt-use-im2col-for-convs",)
# The x86 host also takes IREE's data tiling with its mmt4d ukernels: dense GEMMs ~10% faster
# (ResNet-50 dense 72 -> 64 ms); pattern GEMMs opt out through their tile hints.
# The stack limit: with data tiling, a dense 1x1 GEMM that fuses its BN/ReLU producer over a
# block-chunked conv's output needs 52 KiB of stack per tile (ResNet-50 224x224, 3x3 patterns +
# 1x1 blocks); IREE's 32 KiB default refuses the module. Worker threads have MiBs of stack.
_HOST_TILING = ("--iree-opt-data-tiling", "--iree-llvmcpu-enable-ukernels=all",
                "--iree-llvmcpu-stack-allocation-limit=131072")
HOST_DENSE_FLAGS = DENSE_FLAGS + _HOST_TILING
# pconv's NHWC networks on the host: IREE's direct NHWC convs beat its im2col copies (24 ms of a
# dense ResNet-50 224: results/dispatch_profile_resnet50_dense_im2col_llvm-cpu.md; pconv 136 -> 108 ms
# on one thread: results/peers_bench_224.md before and after). Unmeasured on the other CPU targets
# (arm64 runs under qemu here), so they keep im2col.
HOST_NHWC_FLAGS = _HOST_TILING
# Networks with depthwise convs: IREE fuses each pad into the conv that reads it instead of a copy
# dispatch (MobileNet-V2 224 pruned G=32: 8.80 -> 7.65 ms on 1 thread). Not for the others: the same
# fusion slows dense ResNet-50's 3x3 direct convs (93 -> 116 ms); results/flags_bench_pad_fusion.md.
# Its producer-side twin (...-into-linalg-producer-ops) gives wrong numbers in IREE 3.13
# (MobileNet-V2 rel err 0.11; NOTES.md).
HOST_DEPTHWISE_FLAGS = ("--iree-dispatch-creation-enable-fuse-padding-into-linalg-consumer-ops",)
_VK = ("--iree-hal-target-device=vulkan",)

_ALL = [
    Target(
        "llvm-cpu",
        "host CPU (x86-64, -mcpu=host); fastest here, not portable",
        "llvm-cpu",
        "local-task",
        _CPU + ("--iree-llvmcpu-target-cpu=host",),
        arch="x86_64",
        no_fp16_reason="fp16 is offered on the Vulkan targets and arm64-android (an x86 CPU has no fast fp16)",
        dense_flags=HOST_DENSE_FLAGS,
        nhwc_dense_flags=HOST_NHWC_FLAGS,
        depthwise_flags=HOST_DEPTHWISE_FLAGS,
        layout="nhwc",
        gemm_tile_hints=True,
    ),
    Target(
        "llvm-cpu-generic",
        "x86-64 generic CPU (portable across x86-64 hosts)",
        "llvm-cpu",
        "local-task",
        _CPU + ("--iree-llvmcpu-target-triple=x86_64-linux-gnu", "--iree-llvmcpu-target-cpu=generic"),
        arch="x86_64",
        no_fp16_reason="fp16 is offered on the Vulkan targets and arm64-android (an x86 CPU has no fast fp16)",
        dense_flags=DENSE_FLAGS,
        layout="nhwc",
    ),
    Target(
        "arm64-android",
        "aarch64 Android 11+ CPU, Armv8.2-A + NEON + fp16 + dotprod (Cortex-A55/A76 class)",
        "llvm-cpu",
        "local-task",
        _CPU
        + (
            "--iree-llvmcpu-target-triple=aarch64-linux-android30",
            "--iree-llvmcpu-target-cpu=generic",
            "--iree-llvmcpu-target-cpu-features=+v8.2a,+neon,+fp-armv8,+fullfp16,+dotprod",
        ),
        runs_on_host=False,
        arch="aarch64",
        precisions=("fp32", "fp16-storage", "fp16"),
        dense_flags=DENSE_FLAGS,
        layout="nhwc",
    ),
    Target(
        "arm64-android-baseline",
        "aarch64 Android 11+ CPU, Armv8.0-A + NEON (any 64-bit phone)",
        "llvm-cpu",
        "local-task",
        _CPU
        + (
            "--iree-llvmcpu-target-triple=aarch64-linux-android30",
            "--iree-llvmcpu-target-cpu=generic",
            "--iree-llvmcpu-target-cpu-features=+neon,+fp-armv8",
        ),
        runs_on_host=False,
        arch="aarch64",
        # Armv8.0 converts f16 <-> f32 (fcvt) but has no fp16 arithmetic (+fullfp16 is Armv8.2-A).
        precisions=("fp32", "fp16-storage"),
        no_fp16_reason="Armv8.0-A has no fp16 arithmetic (FEAT_FP16 is Armv8.2-A: use arm64-android)",
        dense_flags=DENSE_FLAGS,
        layout="nhwc",
    ),
    Target(
        "vulkan-adreno",
        "Qualcomm Adreno GPU via Vulkan (subgroup 64); phones only, wrong on lavapipe",
        "vulkan-spirv",
        "vulkan",
        _VK + ("--iree-vulkan-target=adreno",),
        runs_on_host=False,
        dense_flags=DENSE_FLAGS,
        im2col_dense_convs=True,
        precisions=("fp32", "fp16-storage", "fp16"),  # IREE's adreno: compute fp32|fp16, storage b64|b32|b16
        spirv_version="1.6",
    ),
    Target(
        "vulkan-valhall",
        "Arm Mali Valhall GPU via Vulkan (subgroup 16); phones only, wrong on lavapipe",
        "vulkan-spirv",
        "vulkan",
        _VK + ("--iree-vulkan-target=valhall",),
        runs_on_host=False,
        dense_flags=DENSE_FLAGS,
        im2col_dense_convs=True,
        precisions=("fp32", "fp16-storage", "fp16"),  # IREE's valhall: compute fp32|fp16, storage b64|b32|b16|b8
        spirv_version="1.6",
    ),
    Target(
        "vulkan-android-baseline",
        "Vulkan profile vp_android_baseline_2022 (no subgroup ops); unreliable on lavapipe",
        "vulkan-spirv",
        "vulkan",
        _VK + ("--iree-vulkan-target=vp_android_baseline_2022",),
        runs_on_host=False,
        dense_flags=DENSE_FLAGS,
        im2col_dense_convs=True,
        no_fp16_reason="the vp_android_baseline_2022 profile has neither shaderFloat16 nor 16-bit storage "
                       "(compute fp32|int32, storage b32)",
        spirv_version="1.3",
    ),
    Target(
        "vulkan-lavapipe",
        "Mesa lavapipe CPU Vulkan driver (subgroup 8): Vulkan parity checks without a GPU",
        "vulkan-spirv",
        "vulkan",
        (),
        device_targets_attr=vulkan_device_targets_attr(LAVAPIPE_GPU_TARGET),
        runs_on_host=True,
        dense_flags=DENSE_FLAGS,
        im2col_dense_convs=True,
        precisions=("fp32", "fp16-storage", "fp16"),  # vulkaninfo: shaderFloat16, storageBuffer16BitAccess
        spirv_version="1.6",
    ),
]

#: name -> Target
TARGETS: Mapping[str, Target] = {t.name: t for t in _ALL}


def target_names() -> list[str]:
    return list(TARGETS)


def get_target(name: str | Target) -> Target:
    if isinstance(name, Target):
        return name
    try:
        return TARGETS[name]
    except KeyError:
        raise PconvCompileError(
            f"unknown target {name!r}; known targets: {', '.join(TARGETS)}"
        ) from None


_DIAG_RE = re.compile(r"Diagnostics:\n(.*?)\n\nInvoked with:", re.S)


def _tool_diagnostics(err: Exception) -> str:
    msg = str(err)
    m = _DIAG_RE.search(msg)
    return (m.group(1) if m else msg).strip()


def _attach_device_targets(source: str | bytes, attr: str) -> bytes:
    """Parses ``source`` (MLIR text or bytecode) with IREE's MLIR bindings,
    sets ``hal.device.targets`` on the top-level module and returns bytecode."""
    import io

    from iree.compiler import ir

    with ir.Context() as ctx:
        try:
            module = ir.Module.parse(source, ctx)
        except Exception as e:
            raise PconvCompileError("cannot parse the input MLIR module", _tool_diagnostics(e)) from None
        module.operation.attributes["hal.device.targets"] = ir.Attribute.parse(attr, ctx)
        buf = io.BytesIO()
        module.operation.write_bytecode(buf)
        return buf.getvalue()


_TILE_HINT = re.compile(r'\{pconv\.tiles = "([^"]*)"\}\s*')
_CPU_COMPILATION_INFO = ("{{compilation_info = #iree_codegen.compilation_info<lowering_config = "
                         "#iree_cpu.lowering_config<{}>, translation_info = #iree_codegen.translation_info<"
                         "pipeline = #iree_cpu.pipeline<DoubleTilingExpert>>>}} ")


def apply_tile_hints(text: str, target: Target) -> str:
    """Turn pconv's ``{pconv.tiles = "..."}`` GEMM hints into IREE compilation infos on targets
    whose hints were measured (``Target.gemm_tile_hints``); drop them elsewhere. An op with a
    compilation info also keeps its layout under data tiling."""
    if target.gemm_tile_hints:
        return _TILE_HINT.sub(lambda m: _CPU_COMPILATION_INFO.format(m.group(1)), text)
    return _TILE_HINT.sub("", text)


_SPIRV_MAGIC = 0x07230203
_MLIR_SPIRV_GENERATOR = 22  # "Google MLIR SPIR-V Serializer" (the generator word's high 16 bits)


def spirv_modules(vmfb: bytes | bytearray) -> list[tuple[int, int]]:
    """(byte offset, byte length) of each SPIR-V module IREE embedded in a Vulkan ``.vmfb``: a
    flatbuffer ``[uint32]`` vector (word count just before it) starting with the SPIR-V magic,
    MLIR's generator id and schema 0 (so weight bytes that happen to hold the magic don't count)."""
    import struct

    found, pos = [], 0
    magic = struct.pack("<I", _SPIRV_MAGIC)
    while (pos := vmfb.find(magic, pos)) != -1:
        if pos % 4 == 0 and pos >= 4 and pos + 20 <= len(vmfb):
            (words,) = struct.unpack_from("<I", vmfb, pos - 4)
            _, version, generator, _, schema = struct.unpack_from("<5I", vmfb, pos)
            if (5 < words and pos + 4 * words <= len(vmfb) and generator >> 16 == _MLIR_SPIRV_GENERATOR
                    and schema == 0 and 0x10000 <= version <= 0x10600 and version & 0xFF == 0):
                found.append((pos, 4 * words))
        pos += 4
    return found


def fix_spirv_headers(vmfb: bytes, spirv_version: str) -> bytes:
    """Each embedded SPIR-V module's header version raised to the target's.

    IREE 3.13 (MLIR's serializer) writes "Version 1.0" in the header of modules that use SPIR-V
    1.4+ rules (storage buffers in the entry point interface; NoSignedWrap without its 1.0
    extension), chosen from the target's ``spirv:v1.6``: ``spirv-val`` rejects them as 1.0 and
    accepts them as 1.6. The header is one word, so the flatbuffer is otherwise unchanged."""
    import struct

    if not spirv_version:
        return vmfb
    major, minor = (int(v) for v in spirv_version.split("."))
    want = (major << 16) | (minor << 8)
    out = bytearray(vmfb)
    changed = False
    for pos, _ in spirv_modules(out):
        if struct.unpack_from("<I", out, pos + 4)[0] < want:
            struct.pack_into("<I", out, pos + 4, want)
            changed = True
    if changed:
        _fix_zip_crcs(out)
    return bytes(out)


def _fix_zip_crcs(buf: bytearray) -> None:
    """Recompute the CRC-32s of a zip-framed .vmfb's stored members (the executables live in
    them) in their local and central headers, after an in-place edit."""
    import io
    import struct
    import zipfile
    import zlib

    try:
        archive = zipfile.ZipFile(io.BytesIO(bytes(buf)))
    except zipfile.BadZipFile:  # a bare flatbuffer: no CRCs
        return
    crcs = {}
    for info in archive.infolist():
        if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 8:
            continue  # IREE stores its members with the CRC in the local header
        names, extra = struct.unpack_from("<HH", buf, info.header_offset + 26)
        start = info.header_offset + 30 + names + extra
        crc = zlib.crc32(buf[start:start + info.file_size])
        if crc != info.CRC:
            struct.pack_into("<I", buf, info.header_offset + 14, crc)
            crcs[info.filename] = crc
    pos = archive.start_dir
    while crcs and buf[pos:pos + 4] == b"PK\x01\x02":
        names, extra, comment = struct.unpack_from("<HHH", buf, pos + 28)
        name = bytes(buf[pos + 46:pos + 46 + names]).decode("utf-8", "replace")
        if name in crcs:
            struct.pack_into("<I", buf, pos + 16, crcs[name])
        pos += 46 + names + extra + comment


def compile_mlir(
    mlir: str | bytes,
    target: str | Target,
    extra_flags: Iterable[str] = (),
) -> bytes:
    """Compiles an MLIR module (text or bytecode) to a .vmfb for ``target``.

    The input should hold only dialects IREE accepts (linalg/tensor/arith/...,
    e.g. torch-mlir's linalg-on-tensors output).  ``extra_flags`` are appended
    to the target's iree-compile flags.

    Raises PconvCompileError (with the compiler's diagnostics in
    ``.diagnostics``) when iree-compile fails or the target is unknown.
    """
    import iree.compiler as ic

    t = get_target(target)
    source: str | bytes = mlir
    if isinstance(source, (bytearray, memoryview)):
        source = bytes(source)
    if isinstance(source, str):
        source = apply_tile_hints(source, t)
    if t.device_targets_attr is not None:
        source = _attach_device_targets(source, t.device_targets_attr)
    flags = t.compile_flags(extra_flags)
    try:
        out = ic.compile_str(source, target_backends=[], extra_args=flags)
    except ic.CompilerToolError as e:
        raise PconvCompileError(
            f"iree-compile failed for target {t.name}", _tool_diagnostics(e), target=t.name
        ) from None
    except Exception as e:  # e.g. the compiler tool is missing
        raise PconvCompileError(f"cannot run iree-compile for target {t.name}: {e}", target=t.name) from None
    if not out:
        raise PconvCompileError(f"iree-compile produced no output for target {t.name}", target=t.name)
    return fix_spirv_headers(bytes(out), t.spirv_version)
