"""MLIR element types <-> numpy dtypes: the one table. Plain numpy, no MLIR bindings, so the
runtime can read module signatures with it too."""

from __future__ import annotations

import numpy as np

__all__ = ["NUMPY_DTYPES", "numpy_dtype", "mlir_element_type"]

#: MLIR element type -> numpy dtype (signless and signed integers both read as numpy's signed).
NUMPY_DTYPES: dict[str, np.dtype] = {
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

# numpy dtype -> the element type pconv writes: signless integers, as arith and linalg take them.
_MLIR_ELEMENT_TYPES = {dtype: name for name, dtype in NUMPY_DTYPES.items() if not name.startswith("si")}


def numpy_dtype(element_type: str) -> np.dtype | None:
    """The numpy dtype of an MLIR element type (``"f32"``), or None (e.g. ``bf16``)."""
    return NUMPY_DTYPES.get(element_type)


def mlir_element_type(dtype) -> str:
    """The MLIR element type of a numpy dtype (``float32`` -> ``"f32"``); ValueError if none."""
    name = _MLIR_ELEMENT_TYPES.get(np.dtype(dtype))
    if name is None:
        raise ValueError(f"no MLIR element type for numpy dtype {np.dtype(dtype)}")
    return name
