"""Reading constant tensors out of MLIR: ``dense<...>`` and ``dense_resource<...>``.

torch-mlir's FX importer emits weights as ``dense_resource`` blobs. These bindings give a
``DenseResourceElementsAttr`` no accessor for its bytes; the bytes live in the module's
``{-# dialect_resources: {builtin: {name: "0x..."}} #-}`` section (hex, the first 4 bytes
being the blob's alignment). ``ResourceTable`` reads that section once per module.
"""

from __future__ import annotations

import re

import numpy as np

from pconv_mlir.mlir.dtypes import numpy_dtype
from pconv_mlir.mlir.ir import ir

_RESOURCE_ENTRY = re.compile(r'^\s*("?)([^\s":]+)\1\s*:\s*"0x([0-9A-Fa-f]*)"', re.MULTILINE)
_RESOURCE_NAME = re.compile(r"dense_resource<([^>]+)>")


def _numpy_dtype(element_type: ir.Type):
    dtype = numpy_dtype(str(element_type))
    if dtype is None:
        raise ValueError(f"unsupported constant element type {element_type}")
    return dtype


class ResourceTable:
    """The ``builtin`` dialect resource blobs of one module, parsed lazily on first use."""

    def __init__(self, module_op: ir.Operation):
        self._module_op = module_op
        self._blobs: dict[str, bytes] | None = None

    def _load(self) -> dict[str, bytes]:
        if self._blobs is None:
            # Elide ordinary dense elements: only the resource section is needed here.
            text = self._module_op.get_asm(large_elements_limit=16, large_resource_limit=None)
            start = text.rfind("{-#")
            section = text[start:] if start >= 0 else ""
            self._blobs = {m.group(2): bytes.fromhex(m.group(3))[4:] for m in _RESOURCE_ENTRY.finditer(section)}
        return self._blobs

    def get(self, name: str) -> bytes | None:
        return self._load().get(name)


def check_resource_sizes(module_op: ir.Operation, resources: ResourceTable) -> None:
    """Raise ValueError naming the first ``dense_resource`` attribute whose blob is missing or
    not exactly as long as its tensor type: MLIR accepts such a module, and the compiled code
    would read past the blob's end (NaNs, garbage) with no error."""
    problems: list[str] = []

    def visit(op):  # an exception cannot leave a walk callback: the first problem is kept
        attrs = op.attributes
        for i in range(len(attrs)):
            attr = attrs[i].attr
            if isinstance(attr, ir.DenseElementsAttr) or not isinstance(attr.type, ir.RankedTensorType):
                continue
            match = _RESOURCE_NAME.match(str(attr))
            ttype = ir.RankedTensorType(attr.type)
            dtype = numpy_dtype(str(ttype.element_type))
            if match is None or dtype is None or not ttype.has_static_shape:
                continue
            want = int(np.prod(ttype.shape)) * np.dtype(dtype).itemsize
            blob = resources.get(match.group(1))
            if blob is None or len(blob) != want:
                have = "no data" if blob is None else f"{len(blob)} bytes"
                where = re.search(r":(\d+:\d+)\)", str(op.location))
                prefix = f"{where.group(1)}: " if where else ""
                problems.append(f"{prefix}resource '{match.group(1)}' holds {have}, its type {ttype} needs {want} "
                                "bytes")
                return ir.WalkResult.INTERRUPT
        return ir.WalkResult.ADVANCE

    module_op.walk(visit)
    if problems:
        raise ValueError(problems[0])


def constant_array(value: ir.Value, resources: ResourceTable) -> np.ndarray | None:
    """The numpy value of ``value`` when it is defined by an ``arith.constant`` tensor."""
    owner = value.owner
    if not isinstance(owner, ir.OpView) or owner.operation.name != "arith.constant":
        return None
    attr = owner.operation.attributes["value"]
    ttype = ir.RankedTensorType(value.type) if isinstance(value.type, ir.RankedTensorType) else None
    if ttype is None:
        return None
    if isinstance(attr, ir.DenseElementsAttr):
        dense = ir.DenseElementsAttr(attr)
        if dense.is_splat:
            return np.full(ttype.shape, _splat(dense), dtype=_numpy_dtype(ttype.element_type))
        return np.array(dense).reshape(ttype.shape)
    match = _RESOURCE_NAME.search(str(attr))
    if match is None:
        return None
    blob = resources.get(match.group(1))
    dtype = _numpy_dtype(ttype.element_type)
    if blob is None or len(blob) != int(np.prod(ttype.shape)) * np.dtype(dtype).itemsize:
        return None
    return np.frombuffer(blob, dtype=dtype).reshape(ttype.shape).copy()


def _splat(dense: ir.DenseElementsAttr):
    value = dense.get_splat_value()
    if isinstance(value, ir.FloatAttr):
        return ir.FloatAttr(value).value
    return ir.IntegerAttr(value).value


def dense_attr(array: np.ndarray, element_type: ir.Type | None = None) -> ir.DenseElementsAttr:
    """A ``DenseElementsAttr`` holding ``array`` (contiguous copy)."""
    array = np.ascontiguousarray(array)
    return ir.DenseElementsAttr.get(array, type=element_type) if element_type else ir.DenseElementsAttr.get(array)
