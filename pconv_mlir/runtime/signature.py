"""Function signatures of compiled modules, and checking inputs against them.

The compiler records each function's signature in the module's reflection metadata
(``iree.abi.declaration``); :func:`parse_signature` reads it into :class:`TensorSpec` lists and
:func:`check_arrays` names the first input whose count, shape or dtype does not match.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pconv_mlir.errors import PconvInputError
from pconv_mlir.mlir.dtypes import numpy_dtype

__all__ = ["TensorSpec", "parse_signature", "check_arrays"]

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
    return TensorSpec(tuple(dims), numpy_dtype(elem), f"tensor<{body}>")


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
                res.append(TensorSpec((), numpy_dtype(ty), ty))
        return res

    return specs(args_s), specs(res_s)


def check_arrays(arrays: Sequence[np.ndarray], specs: Sequence[TensorSpec], function: str) -> None:
    """Raises PconvInputError naming the first of ``arrays`` whose count, dtype or shape
    does not match ``specs`` (the inputs of ``function``)."""
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
