"""Small helpers for writing MLIR text."""

from __future__ import annotations

import numpy as np

from pconv_mlir.mlir.dtypes import mlir_element_type


def tensor_type(shape, elt: str) -> str:
    dims = "x".join(str(int(d)) for d in shape)
    return f"tensor<{dims}x{elt}>" if dims else f"tensor<{elt}>"


def array_type(a: np.ndarray) -> str:
    return tensor_type(a.shape, mlir_element_type(a.dtype))


def dense_attr(a: np.ndarray) -> str:
    """``dense<"0x...">`` literal (raw little-endian bytes) with its type."""
    a = np.ascontiguousarray(a)
    if a.dtype.byteorder == ">":
        a = a.astype(a.dtype.newbyteorder("<"))
    return f'dense<"0x{a.tobytes().hex().upper()}"> : {array_type(a)}'
