"""Running pconv-compiled modules with ``iree.runtime``.

Typical use::

    from pconv_mlir.runtime import load_module, bench
    mod = load_module("model.vmfb")   # the device follows the module's target (device= overrides)
    y = mod.run(x)                    # numpy or torch inputs; numpy output (a list for several)
    stats = bench(mod, [x], warmup=3, repeats=20)

The parts: :mod:`~pconv_mlir.runtime.device` (which devices exist, one cached HAL device
each, the local-task thread count), :mod:`~pconv_mlir.runtime.signature` (function
signatures, input checks), :mod:`~pconv_mlir.runtime.buffers` (numpy <-> device, Vulkan
alignment), :mod:`~pconv_mlir.runtime.module` (:class:`LoadedModule`, :func:`load_module`,
``.vmfb`` checks), :mod:`~pconv_mlir.runtime.timing` (:func:`bench`, :func:`bench_vmfb`).
"""

from __future__ import annotations

import importlib

# name -> submodule; loaded on first use so that the CLI's parser (which reads DEVICES only)
# does not import numpy.
_EXPORTS = {
    "DEVICES": "device",
    "MAX_THREADS": "device",
    "available_devices": "device",
    "vulkan_available": "device",
    "aligned_copy": "buffers",
    "TensorSpec": "signature",
    "parse_signature": "signature",
    "LoadedModule": "module",
    "load_module": "module",
    "check_finite": "module",
    "read_vmfb": "module",
    "bench": "timing",
    "bench_vmfb": "timing",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
