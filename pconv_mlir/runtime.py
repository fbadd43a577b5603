"""Runtime wrapper around ``iree.runtime`` for pconv-compiled modules.

Typical use::

    from pconv_mlir.runtime import load_module, bench
    mod = load_module("model.vmfb", device="vulkan")
    (y,) = mod.run(x)                 # numpy or torch inputs, numpy outputs
    stats = bench(mod, [x], warmup=3, repeats=20)

What this layer adds on top of ``iree.runtime``:

* inputs are checked against the function signature that the compiler records in
  the module's reflection metadata (``iree.abi.declaration``); a wrong count,
  shape or dtype raises :class:`PconvInputError` naming the argument;
* on Vulkan every input is copied into a 4096-byte aligned host buffer (whose
  size is padded to 4096 bytes): IREE's Vulkan driver imports numpy memory as a
  host pointer and refuses pointers not aligned to
  ``minImportedHostPointerAlignment`` (4096 on lavapipe);
* a missing Vulkan driver / device, a corrupt or truncated ``.vmfb`` and a
  failing invocation become :class:`PconvRuntimeError` with a one-line cause;
* ``local-task`` thread count: IREE creates the task executor (its worker
  threads) once per process, when the ``local-task`` driver is first created, from
  the ``--task_topology_group_count`` flag.  The first :func:`load_module` with
  ``device="local-task"`` fixes it; asking for a different count later in the
  same process raises :class:`PconvRuntimeError` (use a new process, e.g. the
  ``pconv bench`` CLI).
"""

from __future__ import annotations

import os
import re
import statistics
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .errors import PconvInputError, PconvRuntimeError

__all__ = [
    "DEVICES",
    "TensorSpec",
    "LoadedModule",
    "load_module",
    "bench",
    "aligned_copy",
    "parse_signature",
    "available_devices",
]

#: Device names accepted by :func:`load_module`.
DEVICES = ("local-task", "local-sync", "vulkan")

#: Vulkan ``minImportedHostPointerAlignment`` seen on lavapipe (and common on
#: mobile drivers); host buffers handed to the Vulkan driver are aligned to it.
HOST_POINTER_ALIGNMENT = 4096

_LOCK = threading.RLock()
_LOCAL_TASK_THREADS: int | None = None  # thread count the local-task driver got
_DEVICES: dict[str, Any] = {}

# MLIR element type -> numpy dtype
_MLIR_DTYPES = {
    "f32": np.dtype(np.float32),
    "f16": np.dtype(np.float16),
    "f64": np.dtype(np.float64),
    "i8": np.dtype(np.int8),
    "i16": np.dtype(np.int16),
    "i32": np.dtype(np.int32),
    "i64": np.dtype(np.int64),
    "ui8": np.dtype(np.uint8),
    "ui16": np.dtype(np.uint16),
    "ui32": np.dtype(np.uint32),
    "ui64": np.dtype(np.uint64),
    "si8": np.dtype(np.int8),
    "si16": np.dtype(np.int16),
    "si32": np.dtype(np.int32),
    "si64": np.dtype(np.int64),
    "i1": np.dtype(np.bool_),
}


@dataclass(frozen=True)
class TensorSpec:
    """One function argument or result as declared in the module.

    ``shape`` entries are ints, or ``None`` for a dynamic dimension.
    ``dtype`` is None when the element type is unknown to numpy (e.g. bf16).
    """

    shape: tuple[int | None, ...]
    dtype: np.dtype | None
    mlir_type: str

    def __str__(self) -> str:
        return self.mlir_type


_TENSOR_RE = re.compile(r"tensor<([^<>]*)>")


def _parse_tensor(body: str) -> TensorSpec:
    parts = body.split("x")
    elem = parts[-1].strip()
    dims: list[int | None] = []
    for p in parts[:-1]:
        p = p.strip()
        dims.append(None if p == "?" else int(p))
    return TensorSpec(tuple(dims), _MLIR_DTYPES.get(elem), f"tensor<{body}>")


def parse_signature(declaration: str) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """Parses an ``iree.abi.declaration`` string into (inputs, outputs).

    Example declaration:
    ``sync func @main(%input0: tensor<1x3x16x16xf32>) -> (%output0: tensor<1x10xf32>)``
    Non-tensor arguments (scalars) get a TensorSpec with shape ``()``.
    """
    m = re.search(r"@[\w$.-]+\((.*)\)\s*->\s*(.*)$", declaration.strip(), re.S)
    if m:
        args_s, res_s = m.group(1), m.group(2)
    else:
        m = re.search(r"@[\w$.-]+\((.*)\)\s*$", declaration.strip(), re.S)
        if not m:
            raise ValueError(f"cannot parse function declaration: {declaration!r}")
        args_s, res_s = m.group(1), ""

    def split_top(s: str) -> list[str]:
        out, depth, cur = [], 0, []
        for ch in s:
            if ch in "<([{":
                depth += 1
            elif ch in ">)]}":
                depth -= 1
            if ch == "," and depth == 0:
                out.append("".join(cur))
                cur = []
            else:
                cur.append(ch)
        if "".join(cur).strip():
            out.append("".join(cur))
        return out

    def specs(s: str) -> list[TensorSpec]:
        s = s.strip()
        if s.startswith("(") and s.endswith(")"):
            s = s[1:-1]
        res = []
        for item in split_top(s):
            ty = item.split(":", 1)[1].strip() if ":" in item else item.strip()
            tm = _TENSOR_RE.fullmatch(ty)
            if tm:
                res.append(_parse_tensor(tm.group(1)))
            else:
                res.append(TensorSpec((), _MLIR_DTYPES.get(ty), ty))
        return res

    return specs(args_s), specs(res_s)


def aligned_copy(arr: np.ndarray, alignment: int = HOST_POINTER_ALIGNMENT) -> np.ndarray:
    """Returns a C-contiguous copy of ``arr`` whose data pointer is aligned to
    ``alignment`` bytes and whose underlying allocation is padded to a multiple
    of ``alignment`` (Vulkan host-pointer import needs both)."""
    arr = np.asarray(arr)
    nbytes = max(arr.nbytes, 1)
    padded = -(-nbytes // alignment) * alignment
    raw = np.empty(padded + alignment, dtype=np.uint8)
    offset = (-raw.ctypes.data) % alignment
    buf = raw[offset : offset + arr.nbytes]
    out = buf.view(arr.dtype).reshape(arr.shape) if arr.nbytes else np.empty(arr.shape, arr.dtype)
    out[...] = arr
    return out


def _to_numpy(x: Any, name: str) -> np.ndarray:
    if isinstance(x, np.ndarray):
        return x
    mod = type(x).__module__
    if mod.startswith("torch"):
        try:
            return x.detach().cpu().contiguous().numpy()
        except Exception as e:  # pragma: no cover - exotic torch dtypes
            raise PconvInputError(f"{name}: cannot convert torch tensor to numpy: {e}") from None
    if np.isscalar(x):
        return np.asarray(x)
    raise PconvInputError(f"{name}: expected a numpy array or torch tensor, got {type(x).__name__}")


def available_devices() -> list[str]:
    """Names from :data:`DEVICES` whose IREE driver is compiled into the runtime."""
    import iree.runtime as rt

    drivers = set(rt.query_available_drivers())
    return [d for d in DEVICES if d in drivers]


def vulkan_available() -> bool:
    """Whether a Vulkan device can be created (a driver such as Mesa lavapipe is installed)."""
    import iree.runtime as rt

    if "vulkan" not in available_devices():
        return False
    try:
        rt.get_driver("vulkan").create_default_device()
    except Exception:  # no ICD, or a driver that fails to initialise: both mean "no Vulkan here"
        return False
    return True


def _first_line(e: BaseException) -> str:
    s = str(e).strip()
    return s.splitlines()[0] if s else type(e).__name__


def _thread_count() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:  # not Linux
        return 0


def _get_device(device: str, threads: int | None):
    """Returns a (process-cached) HAL device for ``device``."""
    global _LOCAL_TASK_THREADS
    import iree.runtime as rt

    if device not in DEVICES:
        raise PconvRuntimeError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    if threads is not None and device != "local-task":
        raise PconvRuntimeError(f"--threads applies to the local-task device only, not {device!r}")
    if threads is not None and threads < 1:
        raise PconvRuntimeError(f"thread count must be >= 1, got {threads}")
    with _LOCK:
        if device == "local-task":
            if _LOCAL_TASK_THREADS is None:
                if threads is not None:
                    rt.flags.parse_flags(f"--task_topology_group_count={threads}")
                # Create the (process-cached) driver now and count the worker
                # threads it starts (IREE's default: one per physical core).
                before = _thread_count()
                try:
                    rt.get_driver("local-task")
                except Exception as e:
                    raise PconvRuntimeError(f"cannot create the local-task driver: {_first_line(e)}") from None
                started = _thread_count() - before
                _LOCAL_TASK_THREADS = threads if threads is not None else (started if started > 0 else 0)
            elif threads is not None and _LOCAL_TASK_THREADS and threads != _LOCAL_TASK_THREADS:
                raise PconvRuntimeError(
                    f"the local-task driver of this process already runs {_LOCAL_TASK_THREADS} "
                    f"worker thread(s); IREE fixes the count when the driver is created, so "
                    f"{threads} needs a new process (e.g. `pconv bench --threads {threads}`)"
                )
        if device in _DEVICES:
            return _DEVICES[device]
        try:
            drivers = set(rt.query_available_drivers())
        except Exception as e:  # pragma: no cover
            raise PconvRuntimeError(f"cannot query IREE drivers: {_first_line(e)}") from None
        if device not in drivers:
            raise PconvRuntimeError(
                f"IREE runtime has no {device!r} driver (available: {', '.join(sorted(drivers))})"
            )
        try:
            dev = rt.get_driver(device).create_default_device()
        except Exception as e:
            if device == "vulkan":
                raise PconvRuntimeError(
                    "no usable Vulkan device: "
                    f"{_first_line(e)}. Install a Vulkan driver (e.g. Debian's "
                    "mesa-vulkan-drivers for the lavapipe CPU driver) or set "
                    "VK_ICD_FILENAMES to a driver's ICD json."
                ) from None
            raise PconvRuntimeError(f"cannot create {device} device: {_first_line(e)}") from None
        _DEVICES[device] = dev
        return dev


def _device_array_to_numpy(arr) -> np.ndarray:
    """Copies an iree.runtime DeviceArray to a fresh numpy array.

    ``DeviceArray.to_host()`` on Vulkan imports a plain numpy allocation as the
    DMA target, which the Vulkan driver refuses (pointer and size must be
    multiples of minImportedHostPointerAlignment, 4096).  On that error the
    result is copied through a driver-allocated host-visible staging buffer."""
    try:
        return np.array(arr.to_host())
    except ValueError as e:
        if "minImportedHostPointerAlignment" not in str(e):
            raise
    from iree.runtime import BufferUsage, HalFence, MemoryType

    bv = arr._buffer_view
    device = arr._device
    raw_dtype = arr._get_raw_dtype()
    source = bv.get_buffer()
    staging = device.allocator.allocate_buffer(
        memory_type=int(MemoryType.HOST_LOCAL | MemoryType.DEVICE_VISIBLE),
        allowed_usage=int(BufferUsage.TRANSFER_TARGET | BufferUsage.MAPPING_SCOPED),
        allocation_size=source.byte_length(),
    )
    sem = device.create_semaphore(0)
    device.queue_copy(
        source,
        staging,
        wait_semaphores=HalFence.create_at(sem, 0),
        signal_semaphores=HalFence.create_at(sem, 1),
    )
    HalFence.create_at(sem, 1).wait()
    mapped = staging.map()
    out = np.array(mapped.asarray(tuple(bv.shape), raw_dtype))
    del mapped, staging
    if arr._override_dtype is not None and arr._override_dtype != raw_dtype:
        out = out.astype(arr._override_dtype)
    return out

class LoadedModule:
    """A .vmfb loaded into an IREE context on one device.

    Attributes: ``device`` (name), ``threads`` (local-task worker count or None),
    ``function_names``, ``signature(fn)``.
    """

    def __init__(self, ctx, vm_module, device: str, threads: int | None, hal_device):
        self._ctx = ctx
        self._vm_module = vm_module
        self.device = device
        self.threads = threads
        self._hal_device = hal_device
        self.name = vm_module.name

    @property
    def function_names(self) -> list[str]:
        return [n for n in self._vm_module.function_names if not n.startswith("__")]

    def signature(self, function: str = "main") -> tuple[list[TensorSpec], list[TensorSpec]]:
        """(inputs, outputs) TensorSpecs from the module's reflection metadata."""
        f = self._lookup(function)
        decl = (f.reflection or {}).get("iree.abi.declaration")
        if not decl:
            raise PconvRuntimeError(f"function {function!r} has no signature metadata")
        try:
            return parse_signature(decl)
        except ValueError as e:
            raise PconvRuntimeError(str(e)) from None

    def _lookup(self, function: str):
        f = self._vm_module.lookup_function(function)
        if f is None:
            raise PconvRuntimeError(
                f"module has no function {function!r} (functions: {', '.join(self.function_names) or 'none'})"
            )
        return f

    def check_inputs(self, inputs: Sequence[Any], function: str = "main") -> list[np.ndarray]:
        """Converts inputs to numpy and checks them against the signature.

        Raises PconvInputError on a wrong count, shape or dtype."""
        specs, _ = self.signature(function)
        arrays = [_to_numpy(x, f"input {i}") for i, x in enumerate(inputs)]
        if len(arrays) != len(specs):
            raise PconvInputError(
                f"{function} expects {len(specs)} input(s) "
                f"({', '.join(map(str, specs))}), got {len(arrays)}"
            )
        for i, (a, s) in enumerate(zip(arrays, specs)):
            if s.dtype is not None and a.dtype != s.dtype:
                raise PconvInputError(
                    f"input {i}: dtype {a.dtype} does not match {s.mlir_type} (expected {s.dtype})"
                )
            ok = len(a.shape) == len(s.shape) and all(
                d is None or d == n for d, n in zip(s.shape, a.shape)
            )
            if not ok:
                raise PconvInputError(
                    f"input {i}: shape {tuple(a.shape)} does not match {s.mlir_type}"
                )
        return arrays

    def _prepare(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        if self.device == "vulkan":
            return [aligned_copy(a) for a in arrays]
        return [np.ascontiguousarray(a) for a in arrays]

    def _invoke(self, function: str, prepared: list[np.ndarray]):
        fn = self._ctx.modules[self.name][function]
        try:
            return fn(*prepared)
        except Exception as e:
            raise PconvRuntimeError(
                f"running {function} on {self.device} failed: {_first_line(e)}"
            ) from None

    @staticmethod
    def _outputs(res) -> list[np.ndarray]:
        if res is None:
            return []
        if isinstance(res, (tuple, list)):
            items = list(res)
        else:
            items = [res]
        out = []
        for r in items:
            if hasattr(r, "to_host"):
                out.append(_device_array_to_numpy(r))
            else:
                out.append(np.asarray(r))
        return out

    def run(self, *inputs: Any, function: str = "main") -> list[np.ndarray]:
        """Runs ``function`` on the given inputs; returns a list of numpy outputs."""
        if len(inputs) == 1 and isinstance(inputs[0], (list, tuple)):
            inputs = tuple(inputs[0])
        self._lookup(function)
        arrays = self.check_inputs(inputs, function)
        return self._outputs(self._invoke(function, self._prepare(arrays)))

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
        return f"broken zip framing ({_first_line(e)})"
    return f"CRC mismatch in member {bad!r}" if bad else None


def load_module(
    vmfb: bytes | bytearray | memoryview | str | os.PathLike,
    device: str = "local-task",
    threads: int | None = None,
    parameters: str | os.PathLike | None = None,
    parameter_scope: str = "model",
) -> LoadedModule:
    """Loads a compiled module.

    Args:
      vmfb: the module's bytes, or a path to a .vmfb file.
      device: ``local-task``, ``local-sync`` or ``vulkan``.
      threads: worker threads for ``local-task`` (see module docstring).
      parameters: optional .irpa parameter archive; its parameters are served
        under ``parameter_scope`` (the scope of ``#flow.parameter.named``).
    """
    import iree.runtime as rt

    if isinstance(vmfb, (str, os.PathLike)):
        p = Path(vmfb)
        if not p.is_file():
            raise PconvRuntimeError(f"module file not found: {p}")
        data = p.read_bytes()
        src = str(p)
    else:
        data = bytes(vmfb)
        src = "<bytes>"
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

    hal_device = _get_device(device, threads)
    config = rt.Config(device=hal_device)
    try:
        vm_module = rt.VmModule.copy_buffer(config.vm_instance, data)
    except Exception as e:
        raise PconvRuntimeError(
            f"{src}: corrupt or truncated module: {_first_line(e)}"
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
            raise PconvRuntimeError(f"{pp}: cannot load parameters: {_first_line(e)}") from None
    modules.append(vm_module)
    try:
        # Config.default_vm_modules (the HAL module) come first, then the
        # parameter module (if any), then the main module, so imports resolve.
        ctx = rt.SystemContext(vm_modules=modules, config=config)
    except Exception as e:
        msg = _first_line(e)
        hint = ""
        if "vulkan" in msg.lower() or "executable" in msg.lower() or "format" in msg.lower():
            hint = " (was it compiled for this device? see pconv_mlir.targets)"
        raise PconvRuntimeError(f"{src}: cannot load module on {device}: {msg}{hint}") from None
    # 0 = unknown (driver created outside pconv_mlir, or no /proc)
    used_threads = (_LOCAL_TASK_THREADS or None) if device == "local-task" else None
    return LoadedModule(ctx, vm_module, device, used_threads, hal_device)


def bench(
    module: LoadedModule,
    inputs: Sequence[Any],
    warmup: int = 3,
    repeats: int = 20,
    function: str = "main",
) -> dict:
    """Times ``repeats`` synchronous invocations after ``warmup`` ones.

    Inputs are checked and (on Vulkan) aligned once, outside the timed region;
    each timed call includes the result's transfer back to the host.
    Returns dict(median_ms, p10, p90, min, max, mean, repeats, threads, device).
    """
    if repeats < 1:
        raise PconvInputError("repeats must be >= 1")
    module._lookup(function)
    arrays = module._prepare(module.check_inputs(list(inputs), function))
    for _ in range(max(0, warmup)):
        module._outputs(module._invoke(function, arrays))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        module._outputs(module._invoke(function, arrays))
        times.append((time.perf_counter() - t0) * 1e3)
    ts = sorted(times)

    def pct(q: float) -> float:
        if len(ts) == 1:
            return ts[0]
        k = (len(ts) - 1) * q
        lo, hi = int(np.floor(k)), int(np.ceil(k))
        return ts[lo] + (ts[hi] - ts[lo]) * (k - lo)

    return dict(
        median_ms=statistics.median(ts),
        p10=pct(0.10),
        p90=pct(0.90),
        min=ts[0],
        max=ts[-1],
        mean=statistics.fmean(ts),
        repeats=repeats,
        threads=module.threads,
        device=module.device,
    )
