"""pconv-eliminate-redundant-loads: load each shared (channel, tap) row once for more filters.

Every block of a ``pconv.packed_conv2d`` gathers its rows of the input before its GEMM; a
row that two blocks both read is loaded twice (PatDNN's filter-level load redundancy).
This pass merges consecutive blocks pairwise (G -> 2G) while that lowers the estimated
cost ``gather-cost * (rows gathered) + (MACs)``, per output pixel: merged blocks gather
the union of their rows once and run one wider GEMM. 1x1 blocks (``kernel_size = [1, 1]``)
are left alone: their G was chosen by pruning and their rows are whole channel planes. Overlapping taps of one channel
(kernel-level redundancy) are served by the row order (tap, channel) the compact pass
chose and by the lowering, which reads each tap as a shifted slice of the same input.

Two blocks reading the same rows::

  "pconv.packed_conv2d"(%x, %pw, %b) {block_size = 1 : i64,
      row_channels = dense<[[0, 0], [0, 0]]>, row_taps = dense<[[4, 5], [4, 5]]>, ...}

become one block of two filters reading them once::

  "pconv.packed_conv2d"(%x, %pw2, %b) {block_size = 2 : i64,
      row_channels = dense<[[0, 0]]>, row_taps = dense<[[4, 5]]>, ...}

Blocks with disjoint rows are left alone: merging them would only add zero MACs.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np

from pconv_mlir.dialects.pconv import PackedConv2dOp
from pconv_mlir.lowering import cost_model
from pconv_mlir.lowering.plan import PAD_CHANNEL, pack_rows, unpack
from pconv_mlir.mlir.constants import ResourceTable, constant_array
from pconv_mlir.mlir.ir import ir
from pconv_mlir.mlir.pass_infra import PconvPass, constant, erase_dead, ops_named, option


def _live_rows(channels: np.ndarray, taps: np.ndarray, weights: np.ndarray) -> list[set[tuple[int, int]]]:
    """Per block, the (tap, channel) rows that carry a non-zero weight (padding rows dropped)."""
    out = []
    for b in range(weights.shape[0]):
        live = np.nonzero(np.abs(weights[b]).sum(axis=0))[0]
        out.append({(int(taps[b, r]), int(channels[b, r])) for r in live})
    return out


def merge_pairs(weights: np.ndarray, channels: np.ndarray, taps: np.ndarray):
    """Blocks 2i and 2i+1 merged: rows = their sorted (tap-major) union, weights re-packed."""
    n, g, _ = weights.shape
    live = _live_rows(channels, taps, weights)
    blocks = [np.arange(2 * m * g, min((2 * m + 2) * g, n * g)) for m in range((n + 1) // 2)]
    rows = [[(c, t) for t, c in sorted(live[2 * m] | (live[2 * m + 1] if 2 * m + 1 < n else set()))]
            for m in range(len(blocks))]
    in_channels = int(channels.max()) + 1
    dense = unpack(weights, channels, taps, n * g, in_channels).reshape(n * g, in_channels, 9)
    packed = pack_rows(dense, blocks, rows, block_size=2 * g)
    first = np.where(packed.channels[:, :1] >= 0, packed.channels[:, :1], 0)
    merged_channels = np.where(packed.channels == PAD_CHANNEL, first, packed.channels).astype(np.int32)
    return packed.weights, merged_channels, packed.taps


@dataclasses.dataclass
class EliminateRedundantLoads(PconvPass):
    name: ClassVar[str] = "pconv-eliminate-redundant-loads"
    summary: ClassVar[str] = "Merge filter blocks that gather the same input rows so each row is loaded once"
    gather_cost: float = option(cost_model.GATHER_COST, "cost of one gathered input element, in MACs", minimum=0)
    max_block_size: int = option(cost_model.MAX_BLOCK_SIZE, "largest filter block a merge may build", minimum=1)

    def run(self, module: ir.Operation) -> None:
        resources = ResourceTable(module)
        for raw in ops_named(module, PackedConv2dOp.OPERATION_NAME):
            op = PackedConv2dOp.of(raw)
            weights = constant_array(raw.operands[1], resources)
            if weights is None or op.kernel != (3, 3):
                continue
            channels, taps = op.channel_table, op.tap_table
            out_channels = op.out_channels
            changed = False
            while weights.shape[0] > 1 and 2 * weights.shape[1] <= min(self.max_block_size, 2 * out_channels):
                w2, c2, t2 = merge_pairs(weights, channels, taps)
                before = cost_model.merge_cost(*weights.shape, gather_cost=self.gather_cost)
                after = cost_model.merge_cost(*w2.shape, gather_cost=self.gather_cost)
                if after >= before:
                    break
                weights, channels, taps = w2, c2, t2
                changed = True
            if not changed:
                continue
            old_weights = raw.operands[1].owner.operation
            op.set_packing(constant(raw, weights), channels, taps)
            if not list(old_weights.results[0].uses):
                erase_dead(old_weights)
