"""Reading and building pconv ops from the passes (attributes <-> numpy)."""

from __future__ import annotations

import dataclasses

import numpy as np

from pconv_mlir.mlir.constants import ResourceTable, constant_array, dense_attr
from pconv_mlir.mlir.dtypes import mlir_element_type
from pconv_mlir.mlir.ir import ir

I64 = lambda: ir.IntegerType.get_signless(64)  # noqa: E731 - needs a live context


@dataclasses.dataclass
class ConvGeometry:
    """The attributes pconv.conv2d and pconv.packed_conv2d share."""

    strides: list[int]
    dilations: list[int]
    padding: list[int]
    groups: int

    @classmethod
    def of(cls, op: ir.Operation) -> ConvGeometry:
        a = op.attributes
        return cls(list(ir.DenseI64ArrayAttr(a["strides"])), list(ir.DenseI64ArrayAttr(a["dilations"])),
                   list(ir.DenseI64ArrayAttr(a["padding"])), ir.IntegerAttr(a["groups"]).value)

    def attributes(self) -> dict[str, ir.Attribute]:
        return {"strides": ir.DenseI64ArrayAttr.get(self.strides),
                "dilations": ir.DenseI64ArrayAttr.get(self.dilations),
                "padding": ir.DenseI64ArrayAttr.get(self.padding),
                "groups": ir.IntegerAttr.get(I64(), self.groups)}


def library(op: ir.Operation) -> list[tuple[int, ...]]:
    flat = list(ir.DenseI64ArrayAttr(op.attributes["patterns"]))
    return [tuple(flat[i:i + 4]) for i in range(0, len(flat), 4)]


def kernel_patterns(op: ir.Operation) -> np.ndarray:
    return np.array(ir.DenseIntElementsAttr(op.attributes["kernel_patterns"]))


def int_table(op: ir.Operation, name: str) -> np.ndarray:
    return np.array(ir.DenseIntElementsAttr(op.attributes[name]))


def constant(at: ir.Operation, array: np.ndarray) -> ir.Value:
    """A new ``arith.constant`` holding ``array``, inserted before ``at``."""
    array = np.ascontiguousarray(array)
    with ir.InsertionPoint(at), at.location:
        t = ir.RankedTensorType.get(list(array.shape), ir.Type.parse(mlir_element_type(array.dtype)))
        return ir.Operation.create("arith.constant", results=[t], attributes={"value": dense_attr(array)}).result


def weights_of(op: ir.Operation, resources: ResourceTable, operand: int = 1) -> np.ndarray | None:
    return constant_array(op.operands[operand], resources)


def set_int8_table(op: ir.Operation, name: str, table: np.ndarray) -> None:
    op.attributes[name] = dense_attr(np.ascontiguousarray(table.astype(np.int8)))


def largest_shared_group(kernel_patterns: np.ndarray, groups: int) -> int:
    """The largest power of two G <= 64 such that every G consecutive filters have identical
    kernel pattern ids (same kept channels, same pattern per channel)."""
    if groups != 1:
        return 1
    k = kernel_patterns.shape[0]
    best = 1
    for g in (2, 4, 8, 16, 32, 64):
        if g > k:
            break
        blocks = [kernel_patterns[i:i + g] for i in range(0, k, g)]
        if all((b == b[0]).all() for b in blocks):
            best = g
        else:
            break
    return best
