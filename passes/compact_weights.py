"""pconv-compact-weights: pconv.conv2d -> pconv.packed_conv2d (PatDNN's FKW storage).

Filters are cut into groups of ``G`` consecutive filters (the op's ``group_size``, or the
``group-size`` option when the op has no shared structure). A group's rows are the union
of its filters' kept (input channel, pattern tap) pairs, sorted by tap then channel so
rows with the same tap sit together; the packed weights hold only those rows::

  %y = "pconv.conv2d"(%x, %w, %b) {group_size = 2 : i64, kernel_patterns = dense<[[0, -1],
         [0, -1]]> : tensor<2x2xi8>, patterns = array<i64: 1, 3, 4, 5>, ...}

becomes::

  %pw = arith.constant dense<...> : tensor<1x2x4xf32>
  %y = "pconv.packed_conv2d"(%x, %pw, %b) {group_size = 2 : i64,
         row_channels = dense<[[0, 0, 0, 0]]> : tensor<1x4xi32>,
         row_taps = dense<[[1, 3, 4, 5]]> : tensor<1x4xi32>, ...}

Dense storage is K*C*9 weights; packed is groups*G*R. The pass does not fire where that
cuts MACs by less than ``min-mac-reduction`` (the layer then lowers densely), nor on
grouped or depthwise convs, nor on weights that are not constants.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np

from pconv_mlir.lowering import cost_model
from pconv_mlir.lowering.plan import PAD_CHANNEL, Packed, pack_rows, rows_of_patterns
from pconv_mlir.mlir.constants import ResourceTable
from pconv_mlir.mlir.ir import ir
from pconv_mlir.mlir.pass_infra import PconvPass, discardable_attributes, erase_dead, ops_named, option
from pconv_mlir.mlir.pconv_ops import I64, ConvGeometry, constant, kernel_patterns, library, weights_of


def pack(weight: np.ndarray, ids: np.ndarray, patterns: list[tuple[int, ...]], block_size: int) -> Packed:
    """Blocks of ``block_size`` consecutive filters, rows read off their kernel patterns
    (tap-major); padding rows read the block's first channel (the op's tables must name real
    channels) through a zero weight."""
    k = ids.shape[0]
    blocks = [np.arange(s, min(s + block_size, k)) for s in range(0, k, block_size)]
    rows = [rows_of_patterns(ids, patterns, b) for b in blocks]
    packed = pack_rows(weight.reshape(weight.shape[0], weight.shape[1], 9), blocks, rows, block_size=block_size)
    first = np.where(packed.channels[:, :1] >= 0, packed.channels[:, :1], 0)
    packed.channels = np.where(packed.channels == PAD_CHANNEL, first, packed.channels).astype(np.int32)
    return packed


def build_packed(op: ir.Operation, packed: Packed, geometry: ConvGeometry, bias: ir.Value) -> ir.Operation:
    from pconv_mlir.mlir.constants import dense_attr

    pw = constant(op, packed.weights)
    attrs = geometry.attributes()
    attrs.update({"group_size": ir.IntegerAttr.get(I64(), packed.weights.shape[1]),
                  "row_channels": dense_attr(packed.channels), "row_taps": dense_attr(packed.taps),
                  **discardable_attributes(op)})
    with ir.InsertionPoint(op), op.location:
        return ir.Operation.create("pconv.packed_conv2d", results=[op.results[0].type],
                                   operands=[op.operands[0], pw, bias], attributes=attrs)


@dataclasses.dataclass
class CompactWeights(PconvPass):
    name: ClassVar[str] = "pconv-compact-weights"
    summary: ClassVar[str] = "Pack pattern-conv weights per filter group with (channel, tap) row tables (FKW)"
    group_size: int = option(0, "filters per group (G); 0: the op's group_size, else the cost model's default",
                             minimum=0)
    min_mac_reduction: float = option(cost_model.MIN_MAC_REDUCTION,
                                      "pack a conv only if it cuts the MACs at least this many times", minimum=0)

    def run(self, module: ir.Operation) -> None:
        resources = ResourceTable(module)
        for op in ops_named(module, "pconv.conv2d"):
            geometry = ConvGeometry.of(op)
            weight = weights_of(op, resources)
            if geometry.groups != 1 or weight is None:
                continue
            ids = kernel_patterns(op)
            own = ir.IntegerAttr(op.attributes["group_size"]).value
            g = self.group_size or (own if own > 1 else cost_model.DEFAULT_BLOCK_SIZE)
            packed = pack(weight, ids, library(op), min(g, ids.shape[0]))
            if ids.size * 9 < self.min_mac_reduction * packed.macs_per_pixel:
                continue
            new = build_packed(op, packed, geometry, op.operands[2])
            op.results[0].replace_all_uses_with(new.results[0])
            erase_dead(op)
