"""pconv-compact-weights: pconv.conv2d and pconv.block_conv2d -> pconv.packed_conv2d (PatDNN's
FKW storage).

Filters are cut into blocks of ``G`` consecutive filters (the op's ``block_size``, or the
``block-size`` option when the op has no shared structure). A block's rows are the union of
its filters' kept (input channel, tap) pairs, sorted by tap then channel so rows with the
same tap sit together; the packed weights hold only those rows::

  %y = "pconv.conv2d"(%x, %w, %b) {block_size = 2 : i64, kernel_patterns = dense<[[0, -1],
         [0, -1]]> : tensor<2x2xi8>, patterns = array<i64: 1, 3, 4, 5>, ...}

becomes::

  %pw = arith.constant dense<...> : tensor<1x2x4xf32>
  %y = "pconv.packed_conv2d"(%x, %pw, %b) {block_size = 2 : i64, kernel_size = array<i64: 3, 3>,
         row_channels = dense<[[0, 0, 0, 0]]> : tensor<1x4xi32>,
         row_taps = dense<[[1, 3, 4, 5]]> : tensor<1x4xi32>, ...}

A 1x1 block conv packs the same way with ``kernel_size = [1, 1]``: a block's rows are its
kept input channels, all at tap 0 (read off the weights).

Dense storage is K*C*KH*KW weights; packed is blocks*G*R. The pass does not fire where that
cuts MACs by less than ``min-mac-reduction`` (0: the cost model's bar, 2x for patterns and
1.25x for 1x1 blocks; the layer then lowers densely), nor on grouped or depthwise convs, nor
on weights that are not constants.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np

from pconv_mlir.dialects.pconv import BlockConv2dOp, Conv2dOp, PackedConv2dOp
from pconv_mlir.lowering import cost_model
from pconv_mlir.lowering.plan import PAD_CHANNEL, Packed, pack_rows, rows_of_patterns, rows_of_weights
from pconv_mlir.mlir.constants import ResourceTable, constant_array
from pconv_mlir.mlir.ir import ir
from pconv_mlir.mlir.pass_infra import PconvPass, constant, discardable_attributes, erase_dead, ops_named, option


def _blocks(k: int, block_size: int) -> list[np.ndarray]:
    return [np.arange(s, min(s + block_size, k)) for s in range(0, k, block_size)]


def _real_channels(packed: Packed) -> Packed:
    """Padding rows read the block's first channel (the op's tables must name real channels)
    through a zero weight."""
    first = np.where(packed.channels[:, :1] >= 0, packed.channels[:, :1], 0)
    packed.channels = np.where(packed.channels == PAD_CHANNEL, first, packed.channels).astype(np.int32)
    return packed


def pack(weight: np.ndarray, ids: np.ndarray, patterns: list[tuple[int, ...]], block_size: int) -> Packed:
    """Blocks of ``block_size`` consecutive filters of a pattern conv, rows read off their
    kernel patterns (tap-major)."""
    blocks = _blocks(ids.shape[0], block_size)
    rows = [rows_of_patterns(ids, patterns, b) for b in blocks]
    flat = weight.reshape(weight.shape[0], weight.shape[1], 9)
    return _real_channels(pack_rows(flat, blocks, rows, block_size=block_size))


def pack_block_conv(weight: np.ndarray, block_size: int) -> Packed:
    """Blocks of ``block_size`` consecutive filters of a 1x1 conv (K, C, 1, 1), rows = the
    input channels any filter of the block keeps (tap 0)."""
    flat = weight.reshape(weight.shape[0], weight.shape[1], 1)
    blocks = _blocks(weight.shape[0], block_size)
    rows = [rows_of_weights(flat, b) for b in blocks]
    return _real_channels(pack_rows(flat, blocks, rows, block_size=block_size))


def build_packed(op, packed: Packed, kernel: tuple[int, int]) -> PackedConv2dOp:
    """A packed_conv2d replacing conv op view ``op`` (same input, bias, geometry, tags)."""
    raw = op.operation
    return PackedConv2dOp.build(raw, raw.results[0].type, raw.operands[0], constant(raw, packed.weights),
                                raw.operands[2], op.geometry, kernel, packed.channels, packed.taps,
                                discardable_attributes(raw))


@dataclasses.dataclass
class CompactWeights(PconvPass):
    name: ClassVar[str] = "pconv-compact-weights"
    summary: ClassVar[str] = ("Pack pattern and 1x1 block conv weights per filter block with (channel, tap) "
                              "row tables (FKW)")
    block_size: int = option(0, "filters per block (G); 0: the op's block_size, else the cost model's default",
                             minimum=0)
    min_mac_reduction: float = option(0.0, "pack a conv only if it cuts the MACs at least this many times; "
                                      "0: the cost model's bar (2x for patterns, 1.25x for 1x1 blocks)", minimum=0)

    def _bar(self, kernel: tuple[int, int]) -> float:
        return self.min_mac_reduction or cost_model.min_mac_reduction(kernel)

    def run(self, module: ir.Operation) -> None:
        resources = ResourceTable(module)
        for raw in ops_named(module, Conv2dOp.OPERATION_NAME, BlockConv2dOp.OPERATION_NAME):
            is_block = raw.name == BlockConv2dOp.OPERATION_NAME
            op = (BlockConv2dOp if is_block else Conv2dOp).of(raw)
            weight = constant_array(raw.operands[1], resources)
            if op.geometry.groups != 1 or weight is None:
                continue
            k = weight.shape[0]
            g = min(self.block_size or (op.block if op.block > 1 else cost_model.DEFAULT_BLOCK_SIZE), k)
            if is_block:
                kernel = (1, 1)
                packed = pack_block_conv(weight, g)
            else:
                kernel = (3, 3)
                packed = pack(weight, op.kernel_pattern_ids, op.library, g)
            if weight.size < self._bar(kernel) * packed.macs_per_pixel:
                continue
            new = build_packed(op, packed, kernel)
            raw.results[0].replace_all_uses_with(new.operation.results[0])
            erase_dead(raw)
