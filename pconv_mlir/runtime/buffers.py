"""Moving arrays between numpy and IREE devices, with the Vulkan host-pointer workarounds.

IREE's Vulkan driver imports numpy memory as a host pointer and refuses pointers (and sizes)
not aligned to ``minImportedHostPointerAlignment`` (4096 on lavapipe): inputs are copied into
aligned, padded buffers (:func:`aligned_copy`) and results that cannot be read back directly
go through a driver-allocated staging buffer (:func:`device_array_to_numpy`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pconv_mlir.errors import PconvInputError

__all__ = ["HOST_POINTER_ALIGNMENT", "aligned_copy", "to_numpy", "device_array_to_numpy"]

#: Vulkan ``minImportedHostPointerAlignment`` seen on lavapipe (and common on
#: mobile drivers); host buffers handed to the Vulkan driver are aligned to it.
HOST_POINTER_ALIGNMENT = 4096


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


def to_numpy(x: Any, name: str) -> np.ndarray:
    """``x`` (numpy array, torch tensor or scalar) as a numpy array; ``name`` names it in errors."""
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


def device_array_to_numpy(arr) -> np.ndarray:
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
