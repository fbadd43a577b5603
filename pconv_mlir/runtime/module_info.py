"""What a compiled module is for, and so which device runs it.

``pconv_mlir.compile`` records its target's name in the module: an ``iree.reflection`` entry
``pconv.target`` on each public function (:data:`TARGET_KEY`), which IREE keeps in the
module's function metadata. The executables a module holds say the rest, for modules compiled
anywhere: IREE names their formats ``embedded-elf-<arch>`` (CPU code for one architecture)
and ``vulkan-spirv-fb`` (Vulkan). From these, :func:`resolve_device` picks the device when none
is asked for and refuses one that cannot run the module, in one line, before IREE's own error
("HAL device not found") would come.

No numpy here: the CLI reads :func:`default_device` only after parsing.
"""

from __future__ import annotations

import platform
import re
from dataclasses import dataclass

from pconv_mlir.errors import PconvRuntimeError

__all__ = ["TARGET_KEY", "ModuleInfo", "module_info", "resolve_device", "host_arch"]

#: The reflection key pconv records the target name under (``iree.reflection`` of public functions).
TARGET_KEY = "pconv.target"
# IREE's executable format names; in module.fb, which the zip framing stores uncompressed.
_CPU_FORMAT = re.compile(rb"embedded-elf-([a-z0-9_]+)")
_VULKAN_FORMAT = b"vulkan-spirv-fb"
# platform.machine() -> IREE's architecture spelling in embedded-elf-<arch>
_HOST_ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm_64", "arm64": "arm_64"}
_ARCH_WORDS = {"x86_64": "x86-64", "arm_64": "aarch64"}


def host_arch() -> str:
    """This machine's architecture as IREE spells it (``x86_64``, ``arm_64``)."""
    m = platform.machine().lower()
    return _HOST_ARCH.get(m, m)


@dataclass(frozen=True)
class ModuleInfo:
    """``target``: the pconv target name recorded in the module (None for modules compiled
    elsewhere); ``cpu_archs``: architectures of its CPU executables; ``vulkan``: it holds
    Vulkan (SPIR-V) executables."""

    target: str | None
    cpu_archs: frozenset[str]
    vulkan: bool

    @property
    def what(self) -> str:
        """A few words for error messages: "target vulkan-lavapipe" or "x86-64 CPU code"."""
        if self.target:
            return f"target {self.target}"
        if self.vulkan:
            return "Vulkan (SPIR-V) code"
        return f"{self.archs} CPU code" if self.cpu_archs else "no device code"

    @property
    def archs(self) -> str:
        """Its CPU code's architectures in the usual words ("x86-64", "aarch64")."""
        return ", ".join(sorted(_ARCH_WORDS.get(a, a) for a in self.cpu_archs))

    def default_device(self) -> str:
        """The device that runs the module: ``vulkan`` for Vulkan code, else ``local-task``."""
        return "vulkan" if self.vulkan else "local-task"


def _recorded_target(data: bytes) -> str | None:
    """The ``pconv.target`` reflection entry of the module's public functions, if any."""
    if TARGET_KEY.encode() not in data:  # cheap: most foreign modules stop here
        return None
    import iree.runtime as rt

    try:
        vm_module = rt.VmModule.copy_buffer(rt.VmInstance(), data)
    except Exception:  # load_module reports a damaged module in its own words
        return None
    for name in vm_module.function_names:
        f = vm_module.lookup_function(name)
        target = (f.reflection or {}).get(TARGET_KEY) if f is not None else None
        if target:
            return str(target)
    return None


def module_info(data: bytes) -> ModuleInfo:
    """What the module ``data`` (checked bytes, :func:`pconv_mlir.runtime.read_vmfb`) holds."""
    archs = frozenset(m.decode() for m in _CPU_FORMAT.findall(data))
    return ModuleInfo(_recorded_target(data), archs, _VULKAN_FORMAT in data)


def resolve_device(info: ModuleInfo, device: str | None, src: str) -> str:
    """``device`` (None: the module's own, :meth:`ModuleInfo.default_device`), after checking
    that it can run the module; PconvRuntimeError (one line) otherwise."""
    if info.cpu_archs and host_arch() not in info.cpu_archs:
        here = _ARCH_WORDS.get(host_arch(), host_arch())
        raise PconvRuntimeError(
            f"{src}: compiled for {info.what} ({info.archs} code), which this {here} machine cannot run: "
            "run it on the phone (`pconv android bundle`), or compile for llvm-cpu to run here")
    if device is None:
        return info.default_device()
    if info.vulkan and device != "vulkan":
        raise PconvRuntimeError(f"{src}: compiled for {info.what}, which runs on the vulkan device, not {device} "
                              "(leave the device out to follow the module)")
    if info.cpu_archs and not info.vulkan and device == "vulkan":
        raise PconvRuntimeError(f"{src}: compiled for {info.what}, which runs on local-task or local-sync, not vulkan "
                              "(leave the device out to follow the module)")
    return device
