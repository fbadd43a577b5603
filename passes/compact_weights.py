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

from pconv_mlir.mlir.constants import ResourceTable
from pconv_mlir.mlir.ir import ir
from pconv_mlir.mlir.pass_infra import PconvPass, discardable_attributes, erase_dead, ops_named
from pconv_mlir.mlir.pconv_ops import I64, ConvGeometry, constant, kernel_patterns, library, weights_of
from pconv_mlir.patterns import PRUNED


@dataclasses.dataclass
class PackedWeights:
    weights: np.ndarray  # (groups, G, R) f32
    row_channels: np.ndarray  # (groups, R) i32
    row_taps: np.ndarray  # (groups, R) i32
    rows_used: list[int]  # real (unpadded) rows per group

    @property
    def macs_per_pixel(self) -> int:
        return int(np.prod(self.weights.shape))


def group_rows(ids: np.ndarray, patterns: list[tuple[int, ...]], filters: range) -> list[tuple[int, int]]:
    """Sorted (tap, channel) rows that any filter in ``filters`` reads."""
    rows = {(t, c) for k in filters for c in np.nonzero(ids[k] != PRUNED)[0] for t in patterns[ids[k, c]]}
    return sorted((int(t), int(c)) for t, c in rows)


def pack(weight: np.ndarray, ids: np.ndarray, patterns: list[tuple[int, ...]], group_size: int) -> PackedWeights:
    k_total = ids.shape[0]
    blocks = [range(s, min(s + group_size, k_total)) for s in range(0, k_total, group_size)]
    rows = [group_rows(ids, patterns, b) for b in blocks]
    r_max = max(1, max(len(r) for r in rows))
    w = np.zeros((len(blocks), group_size, r_max), np.float32)
    channels = np.zeros((len(blocks), r_max), np.int32)
    taps = np.full((len(blocks), r_max), 4, np.int32)  # padding rows: centre tap, zero weight
    flat = weight.reshape(weight.shape[0], weight.shape[1], 9)
    for g, (block, block_rows) in enumerate(zip(blocks, rows)):
        if not block_rows:
            continue
        t = np.array([r[0] for r in block_rows])
        c = np.array([r[1] for r in block_rows])
        taps[g, :len(t)], channels[g, :len(c)] = t, c
        channels[g, len(c):] = c[0]
        w[g, :len(block), :len(t)] = flat[block.start:block.stop][:, c, t]
    return PackedWeights(w, channels, taps, [len(r) for r in rows])


def build_packed(op: ir.Operation, packed: PackedWeights, geometry: ConvGeometry, bias: ir.Value) -> ir.Operation:
    from pconv_mlir.mlir.constants import dense_attr

    pw = constant(op, packed.weights)
    attrs = geometry.attributes()
    attrs.update({"group_size": ir.IntegerAttr.get(I64(), packed.weights.shape[1]),
                  "row_channels": dense_attr(packed.row_channels), "row_taps": dense_attr(packed.row_taps),
                  **discardable_attributes(op)})
    with ir.InsertionPoint(op), op.location:
        return ir.Operation.create("pconv.packed_conv2d", results=[op.results[0].type],
                                   operands=[op.operands[0], pw, bias], attributes=attrs)


DEFAULT_GROUP_SIZE = 8  # filters per group when a conv has no shared structure


@dataclasses.dataclass
class CompactWeights(PconvPass):
    name: ClassVar[str] = "pconv-compact-weights"
    summary: ClassVar[str] = "Pack pattern-conv weights per filter group with (channel, tap) row tables (FKW)"
    group_size: int = 0  # 0: the op's group_size, or 8 when the op has no shared structure
    min_mac_reduction: float = 1.5

    def run(self, module: ir.Operation) -> None:
        resources = ResourceTable(module)
        for op in ops_named(module, "pconv.conv2d"):
            geometry = ConvGeometry.of(op)
            weight = weights_of(op, resources)
            if geometry.groups != 1 or weight is None:
                continue
            ids = kernel_patterns(op)
            own = ir.IntegerAttr(op.attributes["group_size"]).value
            g = self.group_size or (own if own > 1 else DEFAULT_GROUP_SIZE)
            packed = pack(weight, ids, library(op), min(g, ids.shape[0]))
            if ids.size * 9 < self.min_mac_reduction * packed.macs_per_pixel:
                continue
            new = build_packed(op, packed, geometry, op.operands[2])
            op.results[0].replace_all_uses_with(new.results[0])
            erase_dead(op)
