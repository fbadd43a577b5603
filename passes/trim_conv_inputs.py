"""pconv-trim-conv-inputs: slice off input rows/columns a strided convolution or pooling never reads.

With stride s, an input of extent ``in`` and a window spanning ``span = dilation*(k-1)+1``,
the last ``(in - span) % s`` rows are never read. The IR is valid, but IREE 3.13 fails
to compile such a conv when its output has a unit spatial dim ("inferred input/output
operand #1 has shape's dimension #2 to be 6, but found 5"; e.g. 13->7 channels, 5x5,
stride 2 on a 10x6 input, which PyTorch accepts). Slicing the input to exactly
``(out-1)*s + span`` gives the same numbers and IREE compiles it::

  %y = linalg.conv_2d_nchw_fchw {strides = dense<2> : vector<2xi64>, ...}
         ins(%x, %w : tensor<1x13x10x6xf32>, tensor<7x13x5x5xf32>) ...

becomes::

  %t = tensor.extract_slice %x[0, 0, 0, 0] [1, 13, 9, 5] [1, 1, 1, 1]
  %y = linalg.conv_2d_nchw_fchw {...} ins(%t, %w : tensor<1x13x9x5xf32>, ...) ...

Runs on every linalg 2-D convolution (dense ones included) and pooling (IREE fails the same
way on a 2x2/2 max pool of a 3x6 map: "inferred input/output operand #1 has shape's dimension
#0 to be 3, but found 2"), so it is part of the cleanup pipeline that precedes iree-compile.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from pconv_mlir.mlir.ir import ir
from pconv_mlir.mlir.pass_infra import PconvPass, int_list, ops_named

# op name -> (spatial dims of the input, spatial dims of the filter or pooling window); outputs
# share the input's.
CONV_LAYOUTS = {
    "linalg.conv_2d_nchw_fchw": ((2, 3), (2, 3)),
    "linalg.depthwise_conv_2d_nchw_chw": ((2, 3), (1, 2)),
    "linalg.conv_2d_ngchw_gfchw": ((3, 4), (3, 4)),
    "linalg.conv_2d_nhwc_hwcf": ((1, 2), (0, 1)),
    "linalg.depthwise_conv_2d_nhwc_hwc": ((1, 2), (0, 1)),
    **{f"linalg.pooling_nchw_{kind}": ((2, 3), (0, 1)) for kind in ("max", "sum")},
    **{f"linalg.pooling_nhwc_{kind}": ((1, 2), (0, 1)) for kind in ("max", "min", "sum")},
}


def _pair(op: ir.Operation, name: str) -> list[int]:
    return int_list(op.attributes[name]) if name in op.attributes else [1, 1]


def needed_extent(op: ir.Operation) -> list[int] | None:
    """The input shape ``op`` actually reads, or None when it reads all of it (or is dynamic)."""
    in_dims, filter_dims = CONV_LAYOUTS[op.name]
    x, w = (ir.RankedTensorType(v.type) for v in op.operands[:2])
    y = ir.RankedTensorType(op.results[0].type)
    if not (x.has_static_shape and w.has_static_shape and y.has_static_shape):
        return None
    shape = list(x.shape)
    for axis, fd, s, d in zip(in_dims, filter_dims, _pair(op, "strides"), _pair(op, "dilations")):
        shape[axis] = (y.shape[axis] - 1) * s + d * (w.shape[fd] - 1) + 1
    return shape if shape != list(x.shape) else None


def _slice(value: ir.Value, shape: list[int], loc: ir.Location) -> ir.Value:
    i64s = lambda xs: ir.DenseI64ArrayAttr.get(xs)  # noqa: E731
    element = ir.RankedTensorType(value.type).element_type
    op = ir.Operation.create(
        "tensor.extract_slice", results=[ir.RankedTensorType.get(shape, element)], operands=[value],
        attributes={"static_offsets": i64s([0] * len(shape)), "static_sizes": i64s(shape),
                    "static_strides": i64s([1] * len(shape)),
                    "operandSegmentSizes": ir.DenseI32ArrayAttr.get([1, 0, 0, 0])}, loc=loc)
    return op.results[0]


@dataclasses.dataclass
class TrimConvInputs(PconvPass):
    name: ClassVar[str] = "pconv-trim-conv-inputs"
    summary: ClassVar[str] = "Slice off the input rows/columns a strided convolution or pooling never reads"

    def run(self, module: ir.Operation) -> None:
        for op in ops_named(module, *CONV_LAYOUTS):
            shape = needed_extent(op)
            if shape is None:
                continue
            with ir.InsertionPoint(op), op.location:
                op.operands[0] = _slice(op.operands[0], shape, op.location)
