"""pconv-raise-pattern-conv: linalg convolutions with pattern-sparse weights -> pconv.conv2d,
1x1 convolutions with block connectivity -> pconv.block_conv2d.

Matches what torch-mlir's FX importer emits for ``nn.Conv2d`` (3x3, NCHW)::

  %padded = tensor.pad %x low[0, 0, 1, 1] high[0, 0, 1, 1] { tensor.yield %zero }
  %init = linalg.broadcast ins(%bias : tensor<64xf32>) outs(%e) dimensions = [0, 2, 3]
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1>, strides = dense<1>}
         ins(%padded, %w : ...) outs(%init : ...)

and, when every 3x3 kernel of the constant ``%w`` is all zero or non-zero only inside one
4-tap pattern with the centre, rewrites it to::

  %y = "pconv.conv2d"(%x, %w, %bias) {padding = array<i64: 1, 1, 1, 1>, strides = ...,
         patterns = array<i64: ...>, kernel_patterns = dense<...> : tensor<64x64xi8>, ...}

Zero padding folds into ``padding``; a bias broadcast (or a zero fill) becomes the bias
operand. Depthwise convs (``linalg.depthwise_conv_2d_nchw_chw``, multiplier 1) are raised
with ``groups`` = channels.

A 1x1 conv is raised, from its weights alone, when its filters in consecutive blocks of G
share the set of input channels they keep (the largest such G in 2..64; the last block may be
partial when G does not divide the filters) and the cost model says the blocks pay
(``cost_model.block_refusal``)::

  %y = "pconv.block_conv2d"(%x, %w, %bias) {block_size = 8 : i64, ...}

A 1x1 conv whose zeros are merely scattered (consecutive filters keep different channels)
stays dense. Anything else (non-constant or dense weights, other kernel sizes, other
layouts, an init that is not a bias) is left untouched; ``analyze`` says why.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np

from pconv_mlir.dialects.pconv import BlockConv2dOp, Conv2dOp, Geometry
from pconv_mlir.lowering import cost_model
from pconv_mlir.lowering.plan import largest_shared_block
from pconv_mlir.mlir.constants import ResourceTable, constant_array
from pconv_mlir.mlir.ir import ir
from pconv_mlir.mlir.pass_infra import PconvPass, constant, discardable_attributes, erase_dead, int_list, ops_named
from pconv_mlir.patterns import match_kernel_patterns

CONV_OPS = ("linalg.conv_2d_nchw_fchw", "linalg.depthwise_conv_2d_nchw_chw")
# Convolutions torch-mlir also emits that pattern convs do not cover (reported, left dense).
OTHER_CONV_OPS = ("linalg.conv_2d_ngchw_gfchw", "linalg.conv_2d_nhwc_hwcf", "linalg.conv_1d_ncw_fcw",
                  "linalg.conv_3d_ncdhw_fcdhw")


@dataclasses.dataclass
class ConvMatch:
    """A linalg conv recognised as pattern-sparse, with everything needed to raise it."""

    conv: ir.Operation
    input: ir.Value
    weight: ir.Value  # the 4-D (K, C/groups, KH, KW) constant
    bias: ir.Value | None  # 1-D, None for a zero fill
    padding: list[int]  # top, left, bottom, right
    strides: list[int]
    dilations: list[int]
    groups: int
    library: list[tuple[int, ...]] | None  # None for a 1x1 block conv
    kernel_patterns: np.ndarray | None
    block_size: int

    @property
    def kind(self) -> str:
        """"pattern" (3x3, pconv.conv2d) or "blocks" (1x1, pconv.block_conv2d)."""
        return "pattern" if self.library is not None else "blocks"


#: Block sizes the raise looks for in a 1x1 conv's weights (largest first).
BLOCK_SIZES = (64, 32, 16, 8, 4, 2)


def analyze_blocks(weights: np.ndarray) -> tuple[int, int] | str:
    """(G, kept channels of the widest block) when consecutive blocks of G filters of the 1x1
    ``weights`` (K, C, 1, 1) share the set of non-zero input channels (the largest such G;
    the last block may be partial), else why the conv has no block structure."""
    nonzero = weights.reshape(weights.shape[0], -1) != 0
    k, c = nonzero.shape
    if nonzero.all():
        return "weights are dense (a 1x1 conv is raised only with block connectivity sparsity)"
    if not nonzero.any():
        return "every kernel is zero"
    for g in sorted({min(size, k) for size in BLOCK_SIZES if min(size, k) >= 2}, reverse=True):
        blocks = [nonzero[i:i + g] for i in range(0, k, g)]
        if all((b == b[0]).all() for b in blocks):
            return g, int(max(b[0].sum() for b in blocks))
    return ("zeros are scattered: consecutive filters do not keep the same input channels "
            "(no block connectivity to exploit)")


def _analyze_1x1(conv: ir.Operation, x: ir.Value, w: ir.Value, resources: ResourceTable):
    weights = constant_array(w, resources)
    if weights is None:
        return "weights are not a constant"
    found = analyze_blocks(weights)
    if isinstance(found, str):
        return f"1x1: {found}"
    g, kept = found
    k, c = weights.shape[:2]
    why = cost_model.block_refusal(c, k * c, -(-k // g), min(g, k), kept)
    if why:
        return f"1x1 blocks of G={min(g, k)} do not pay: {why}"
    out_type = ir.RankedTensorType(conv.results[0].type)
    try:
        bias = _bias_of(conv.operands[2], out_type.shape[1])
    except ValueError as err:
        return str(err)
    source, padding = _zero_padding(x)
    return ConvMatch(conv, source, w, bias, padding, int_list(conv.attributes["strides"]),
                     int_list(conv.attributes["dilations"]), 1, None, None, min(g, k))


def _defining(value: ir.Value, name: str) -> ir.Operation | None:
    owner = value.owner
    if isinstance(owner, ir.OpView) and owner.operation.name == name:
        return owner.operation
    return None


def _is_float_zero(value: ir.Value) -> bool:
    const = _defining(value, "arith.constant")
    if const is None:
        return False
    attr = const.attributes["value"]
    return isinstance(attr, ir.FloatAttr) and ir.FloatAttr(attr).value == 0.0


def _zero_padding(value: ir.Value):
    """(padded source, [top, left, bottom, right]) when ``value`` is a zero tensor.pad of H/W only."""
    pad = _defining(value, "tensor.pad")
    if pad is None or len(pad.operands) != 1:  # dynamic pad amounts
        return value, [0, 0, 0, 0]
    low = list(ir.DenseI64ArrayAttr(pad.attributes["static_low"]))
    high = list(ir.DenseI64ArrayAttr(pad.attributes["static_high"]))
    body = pad.regions[0].blocks[0]
    yielded = list(body.operations)[-1].operands[0]
    if low[:2] != [0, 0] or high[:2] != [0, 0] or min(low + high) < 0 or not _is_float_zero(yielded):
        return value, [0, 0, 0, 0]
    return pad.operands[0], [low[2], low[3], high[2], high[3]]


def _bias_of(init: ir.Value, out_channels: int):
    """The bias operand of a conv init, None for a zero fill; raises ValueError otherwise."""
    bcast = _defining(init, "linalg.broadcast")
    if bcast is not None:
        dims = list(ir.DenseI64ArrayAttr(bcast.attributes["dimensions"]))
        src = bcast.operands[0]
        if dims == [0, 2, 3] and ir.RankedTensorType(src.type).shape == [out_channels]:
            return src
        raise ValueError("its init broadcasts something other than a per-channel bias")
    fill = _defining(init, "linalg.fill")
    if fill is not None and _is_float_zero(fill.operands[0]):
        return None
    raise ValueError("its init is neither a bias broadcast nor a zero fill")


def analyze(conv: ir.Operation, resources: ResourceTable) -> ConvMatch | str:
    """Match ``conv`` for raising; return the match or the reason it stays dense."""
    if conv.name not in CONV_OPS:
        return f"{conv.name.removeprefix('linalg.')} is not covered by pattern convs (2-D NCHW, groups 1 or depthwise)"
    depthwise = conv.name == "linalg.depthwise_conv_2d_nchw_chw"
    x, w = conv.operands[0], conv.operands[1]
    if not all(ir.RankedTensorType(v.type).has_static_shape for v in (x, w, conv.results[0])):
        return "dynamic shapes (pattern convs are built for static ones)"
    wtype = ir.RankedTensorType(w.type)
    if not isinstance(wtype.element_type, ir.F32Type):
        return f"weights are {wtype.element_type}, pattern convs cover f32"
    if list(wtype.shape[-2:]) == [1, 1] and not depthwise:
        return _analyze_1x1(conv, x, w, resources)
    if list(wtype.shape[-2:]) != [3, 3]:
        return f"kernel is {wtype.shape[-2]}x{wtype.shape[-1]}, patterns cover 3x3 and 1x1 blocks"
    if depthwise:
        collapse = _defining(w, "tensor.collapse_shape")
        if collapse is None:
            return "depthwise weights do not come from a collapsed (C, 1, 3, 3) constant"
        w = collapse.operands[0]
    weights = constant_array(w, resources)
    if weights is None:
        return "weights are not a constant"
    if weights.ndim != 4:
        return "depthwise channel multiplier is not 1"
    matched = match_kernel_patterns(weights)
    if matched is None:
        return "weights are not pattern-sparse (a kernel has non-zeros outside any 4-tap pattern with the centre)"
    library, ids = matched
    if not library:
        return "every kernel is zero"
    out_type = ir.RankedTensorType(conv.results[0].type)
    try:
        bias = _bias_of(conv.operands[2], out_type.shape[1])
    except ValueError as err:
        return str(err)
    source, padding = _zero_padding(x)
    groups = ir.RankedTensorType(source.type).shape[1] if depthwise else 1
    return ConvMatch(conv, source, w, bias, padding, int_list(conv.attributes["strides"]),
                     int_list(conv.attributes["dilations"]), groups, library, ids,
                     largest_shared_block(ids, groups))


def build_pattern_conv(m: ConvMatch) -> ir.Operation:
    """Create the ``pconv.conv2d`` (or, for 1x1 blocks, ``pconv.block_conv2d``) for ``m``
    right before ``m.conv``."""
    out_type = m.conv.results[0].type
    bias = m.bias
    if bias is None:
        bias = constant(m.conv, np.zeros(ir.RankedTensorType(out_type).shape[1], np.float32))
    geometry = Geometry(m.strides, m.dilations, m.padding, m.groups)
    extra = discardable_attributes(m.conv)
    if m.kind == "blocks":
        return BlockConv2dOp.build(m.conv, out_type, m.input, m.weight, bias, geometry, m.block_size,
                                   extra).operation
    return Conv2dOp.build(m.conv, out_type, m.input, m.weight, bias, geometry, m.library, m.kernel_patterns,
                          m.block_size, extra).operation


@dataclasses.dataclass
class RaisePatternConv(PconvPass):
    name: ClassVar[str] = "pconv-raise-pattern-conv"
    summary: ClassVar[str] = ("Raise linalg 3x3 convolutions with pattern-sparse constant weights to pconv.conv2d, "
                              "1x1 convolutions with block connectivity to pconv.block_conv2d")

    def run(self, module: ir.Operation) -> None:
        resources = ResourceTable(module)
        for conv in ops_named(module, *CONV_OPS):
            match = analyze(conv, resources)
            if isinstance(match, str):
                continue
            raised = build_pattern_conv(match)
            conv.results[0].replace_all_uses_with(raised.results[0])
            erase_dead(conv)
