"""Loading a compiled ``.vmfb`` and running its functions on numpy or torch inputs.

What this adds on top of ``iree.runtime``:

* a damaged ``.vmfb`` is refused before IREE sees it, with a one-line
  :class:`PconvRuntimeError` (:func:`read_vmfb`): too short, an unknown header, broken zip
  framing or a CRC mismatch; a SHA-256 that does not match (given, or in a ``NAME.sha256``
  file next to the module); a bare FlatBuffer module with no SHA-256 to check it against
  (IREE checks only its structure; a flipped bit in it runs wrong or crashes);
* inputs are checked against the function signature the compiler records in the module
  (:mod:`pconv_mlir.runtime.signature`); a wrong count, shape or dtype raises
  :class:`PconvInputError` naming the argument; so does an Inf or NaN in a float input
  unless ``allow_nonfinite=True`` (pruned taps are structurally absent, so non-finite inputs
  do not propagate as they do in dense math);
* on Vulkan every input is copied into an aligned host buffer
  (:mod:`pconv_mlir.runtime.buffers`);
* a missing driver or device and a failing invocation become :class:`PconvRuntimeError`.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pconv_mlir.errors import PconvInputError, PconvRuntimeError, first_line
from pconv_mlir.runtime.buffers import aligned_copy, device_array_to_numpy, to_numpy
from pconv_mlir.runtime.device import DEVICES, get_device, local_task_threads
from pconv_mlir.runtime.module_info import module_info, resolve_device
from pconv_mlir.runtime.signature import TensorSpec, check_arrays, parse_signature

__all__ = ["LoadedModule", "load_module", "function_signature", "read_vmfb", "check_finite"]


def _public_functions(vm_module) -> list[str]:
    return [n for n in vm_module.function_names if not n.startswith("__")]


def _lookup(vm_module, function: str):
    f = vm_module.lookup_function(function)
    if f is None:
        raise PconvRuntimeError(
            f"module has no function {function!r} (functions: {', '.join(_public_functions(vm_module)) or 'none'})"
        )
    return f


def function_signature(vm_module, function: str = "main") -> tuple[list[TensorSpec], list[TensorSpec]]:
    """(inputs, outputs) TensorSpecs of ``function`` of an ``iree.runtime.VmModule``, from its
    reflection metadata (no device needed)."""
    decl = (_lookup(vm_module, function).reflection or {}).get("iree.abi.declaration")
    if not decl:
        raise PconvRuntimeError(f"function {function!r} has no signature metadata")
    try:
        return parse_signature(decl)
    except ValueError as e:
        raise PconvRuntimeError(str(e)) from None


class LoadedModule:
    """A .vmfb loaded into an IREE context on one device.

    Attributes: ``device`` (name), ``threads`` (local-task worker count or None), ``target``
    (the pconv target recorded in the module, or None), ``function_names``, ``signature(fn)``.
    """

    def __init__(self, ctx, vm_module, device: str, threads: int | None, hal_device, target: str | None = None):
        self._ctx = ctx
        self.target = target
        self._vm_module = vm_module
        self.device = device
        self.threads = threads
        self._hal_device = hal_device
        self.name = vm_module.name

    @property
    def function_names(self) -> list[str]:
        return _public_functions(self._vm_module)

    def signature(self, function: str = "main") -> tuple[list[TensorSpec], list[TensorSpec]]:
        """(inputs, outputs) TensorSpecs from the module's reflection metadata."""
        return function_signature(self._vm_module, function)

    def check_inputs(self, inputs: Sequence[Any], function: str = "main",
                     allow_nonfinite: bool = False) -> list[np.ndarray]:
        """Converts inputs to numpy and checks them against the signature.

        Raises PconvInputError on a wrong count, shape or dtype, and on Inf/NaN in a float
        input unless ``allow_nonfinite`` (see :func:`check_finite`)."""
        specs, _ = self.signature(function)
        arrays = [to_numpy(x, f"input {i}") for i, x in enumerate(inputs)]
        check_arrays(arrays, specs, function)
        if not allow_nonfinite:
            check_finite(arrays)
        return arrays

    def prepare_inputs(self, inputs: Sequence[Any], function: str = "main",
                       allow_nonfinite: bool = False) -> list[np.ndarray]:
        """Checked inputs laid out as the device needs them (aligned copies on Vulkan), ready
        for :meth:`run_prepared`; prepare once to call a function many times (benchmarks)."""
        arrays = self.check_inputs(inputs, function, allow_nonfinite)
        if self.device == "vulkan":
            return [aligned_copy(a) for a in arrays]
        return [np.ascontiguousarray(a) for a in arrays]

    def run_prepared(self, prepared: Sequence[np.ndarray], function: str = "main") -> list[np.ndarray]:
        """Calls ``function`` on inputs from :meth:`prepare_inputs`; returns numpy outputs
        (copied back to the host)."""
        try:
            fn = self._ctx.modules[self.name][function]
        except KeyError:
            _lookup(self._vm_module, function)  # raises the error that lists the functions
            raise
        try:
            res = fn(*prepared)
        except Exception as e:
            raise PconvRuntimeError(f"running {function} on {self.device} failed: {first_line(e)}") from None
        if res is None:
            return []
        items = list(res) if isinstance(res, (tuple, list)) else [res]
        return [device_array_to_numpy(r) if hasattr(r, "to_host") else np.asarray(r) for r in items]

    def run(self, *inputs: Any, function: str = "main", allow_nonfinite: bool = False):
        """Runs ``function`` on the given inputs: one numpy array for a function with one
        output, else a list of them (as ``CompiledModel.run``; :meth:`run_all` always gives a
        list). Inputs holding Inf or NaN are refused unless ``allow_nonfinite`` (see
        :func:`check_finite`)."""
        outputs = self.run_all(*inputs, function=function, allow_nonfinite=allow_nonfinite)
        return outputs[0] if len(outputs) == 1 else outputs

    def run_all(self, *inputs: Any, function: str = "main", allow_nonfinite: bool = False) -> list[np.ndarray]:
        """Runs ``function`` on the given inputs; returns the list of its numpy outputs."""
        if len(inputs) == 1 and isinstance(inputs[0], (list, tuple)):
            inputs = tuple(inputs[0])
        return self.run_prepared(self.prepare_inputs(inputs, function, allow_nonfinite), function)

    def __repr__(self) -> str:
        return f"LoadedModule(target={self.target!r}, device={self.device!r}, threads={self.threads})"

    __call__ = run


def _zip_member_error(data: bytes) -> str | None:
    """Why a zip-framed .vmfb is damaged, or None. The framing holds a CRC-32 of every
    member (the module flatbuffer and each embedded executable). IREE verifies the
    flatbuffer's structure but loads and runs a damaged embedded ELF as it is (a segfault,
    not an error), so the CRCs are checked before IREE sees the bytes."""
    import io
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            bad = archive.testzip()
    except Exception as e:  # BadZipFile, and struct/zlib/EOF errors on mangled headers
        return f"broken zip framing ({first_line(e)})"
    return f"CRC mismatch in member {bad!r}" if bad else None


def check_finite(arrays: Sequence[np.ndarray]) -> None:
    """Raises PconvInputError naming the first float input holding Inf or NaN.

    Pattern convs never read the taps their patterns prune (they are structurally absent, not
    multiplied by zero), so a non-finite input value does not propagate as it does in dense math:
    where PyTorch gives NaN, a pattern conv can give a finite number. Inputs must be finite;
    callers that want the module's own answer anyway pass ``allow_nonfinite=True``."""
    for i, a in enumerate(arrays):
        if a.dtype.kind in "fc" and not np.isfinite(a).all():
            bad = int(a.size - np.count_nonzero(np.isfinite(a)))
            raise PconvInputError(
                f"input {i} holds {bad} non-finite value(s) (Inf/NaN); pruned taps are structurally absent, "
                "so non-finite inputs do not propagate as in dense math (allow_nonfinite=True / "
                "--allow-nonfinite runs anyway)")


_SHA256_RE = re.compile(r"[0-9a-fA-F]{64}")
SHA256_SUFFIX = ".sha256"


def _sidecar_sha256(path: Path) -> tuple[str, Path] | None:
    """The digest in ``PATH.sha256`` (``sha256sum`` output: the hex digest first), or None."""
    sidecar = path.with_name(path.name + SHA256_SUFFIX)
    if not sidecar.is_file():
        return None
    try:
        first = sidecar.read_text(errors="replace").split(maxsplit=1)
    except OSError as e:
        raise PconvRuntimeError(f"{sidecar}: unreadable: {e.strerror or e}") from None
    if not first or not _SHA256_RE.fullmatch(first[0]):
        raise PconvRuntimeError(f"{sidecar}: not a SHA-256 checksum file (expected `sha256sum` output)")
    return first[0].lower(), sidecar


def read_vmfb(vmfb: bytes | bytearray | memoryview | str | os.PathLike,
              sha256: str | None = None) -> tuple[bytes, str]:
    """(bytes, source name) of a module given as bytes or a path, after the integrity checks;
    raises PconvRuntimeError for a missing file or a damaged module.

    Checked: the SHA-256, when one is known (``sha256``, or a ``PATH.sha256`` file next to a
    module given by path); the header; a zip-framed module's CRC-32 of every member (the module
    FlatBuffer and each embedded executable: what ``iree-compile`` and pconv write). A bare
    FlatBuffer module carries no checksum (IREE verifies its structure only, so a flipped bit
    in its weights or code runs wrong or crashes): it is refused unless a SHA-256 is known."""
    expected = None
    if isinstance(vmfb, (str, os.PathLike)):
        p = Path(vmfb)
        if not p.is_file():
            raise PconvRuntimeError(f"module file not found: {p}")
        try:
            data = p.read_bytes()
        except OSError as e:
            raise PconvRuntimeError(f"cannot read {p}: {e.strerror or e}") from None
        src = str(p)
        found = _sidecar_sha256(p)
        if found:
            expected = found
    else:
        data = bytes(vmfb)
        src = "<bytes>"
    if sha256 is not None:
        if not _SHA256_RE.fullmatch(sha256):
            raise PconvRuntimeError(f"sha256 must be 64 hex digits, got {sha256!r}")
        expected = (sha256.lower(), None)
    if expected is not None:
        digest, where = expected
        if hashlib.sha256(data).hexdigest() != digest:
            raise PconvRuntimeError(f"{src}: SHA-256 does not match {where or 'the expected one'}: the module "
                                    "was changed or damaged")
    if len(data) < 16:
        raise PconvRuntimeError(f"{src}: not an IREE module (only {len(data)} bytes)")
    # A .vmfb is either a zip-framed archive ("PK\x03\x04" header, member
    # "module.fb") or a bare size-prefixed FlatBuffer with identifier "IREE".
    if not (data[:4] == b"PK\x03\x04" or b"IREE" in data[:64]):
        raise PconvRuntimeError(f"{src}: not an IREE .vmfb module (unknown header)")
    if data[:4] == b"PK\x03\x04":
        bad = _zip_member_error(data)
        if bad:
            raise PconvRuntimeError(f"{src}: corrupt or truncated module: {bad}")
    elif expected is None:
        how = (f"`sha256sum {Path(src).name} > {Path(src).name}{SHA256_SUFFIX}` vouches for it"
               if src != "<bytes>" else "pass sha256= to vouch for it")
        raise PconvRuntimeError(f"{src}: a bare FlatBuffer module has no checksum, so damage to it cannot be "
                                f"detected; use a zip-framed module (iree-compile's default) or {how}")
    return data, src


def load_module(
    vmfb: bytes | bytearray | memoryview | str | os.PathLike,
    device: str | None = None,
    threads: int | None = None,
    parameters: str | os.PathLike | None = None,
    parameter_scope: str = "model",
    sha256: str | None = None,
) -> LoadedModule:
    """Loads a compiled module.

    Args:
      vmfb: the module's bytes, or a path to a .vmfb file.
      device: ``local-task``, ``local-sync`` or ``vulkan``; None (the default) follows the module's
        target (``vulkan`` for Vulkan modules, else ``local-task``). A device that cannot run
        the module is refused in one line (:func:`pconv_mlir.runtime.module_info.resolve_device`).
      threads: worker threads for ``local-task`` (see :mod:`pconv_mlir.runtime.device`).
      parameters: optional .irpa parameter archive; its parameters are served
        under ``parameter_scope`` (the scope of ``#flow.parameter.named``).
      sha256: the module's expected SHA-256 (hex); see :func:`read_vmfb` for what is checked.
    """
    import iree.runtime as rt

    data, src = read_vmfb(vmfb, sha256)
    if device is not None and device not in DEVICES:
        raise PconvRuntimeError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    info = module_info(data)
    device = resolve_device(info, device, src if src != "<bytes>" else "the module")
    hal_device = get_device(device, threads)
    config = rt.Config(device=hal_device)
    try:
        vm_module = rt.VmModule.copy_buffer(config.vm_instance, data)
    except Exception as e:
        raise PconvRuntimeError(
            f"{src}: corrupt or truncated module: {first_line(e)}"
        ) from None

    modules = []
    if parameters is not None:
        pp = Path(parameters)
        if not pp.is_file():
            raise PconvRuntimeError(f"parameter file not found: {pp}")
        try:
            idx = rt.ParameterIndex()
            idx.load(str(pp))
            provider = idx.create_provider(scope=parameter_scope)
            modules.append(rt.create_io_parameters_module(config.vm_instance, provider))
        except Exception as e:
            raise PconvRuntimeError(f"{pp}: cannot load parameters: {first_line(e)}") from None
    modules.append(vm_module)
    try:
        # Config.default_vm_modules (the HAL module) come first, then the
        # parameter module (if any), then the main module, so imports resolve.
        ctx = rt.SystemContext(vm_modules=modules, config=config)
    except Exception as e:
        msg = first_line(e)
        hint = ""
        if "vulkan" in msg.lower() or "executable" in msg.lower() or "format" in msg.lower():
            hint = " (was it compiled for this device? see pconv_mlir.targets)"
        raise PconvRuntimeError(f"{src}: cannot load module on {device}: {msg}{hint}") from None
    used_threads = (local_task_threads() or None) if device == "local-task" else None
    return LoadedModule(ctx, vm_module, device, used_threads, hal_device, info.target)
