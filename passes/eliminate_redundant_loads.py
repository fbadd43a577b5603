"""pconv-eliminate-redundant-loads: load each shared (channel, tap) row once for more filters.

Every group of a ``pconv.packed_conv2d`` gathers its rows of the input before its GEMM; a
row that two groups both read is loaded twice (PatDNN's filter-level load redundancy).
This pass merges consecutive groups pairwise (G -> 2G) while that lowers the estimated
cost ``gather-cost * (rows gathered) + (MACs)``, per output pixel: merged groups gather
the union of their rows once and run one wider GEMM. Overlapping taps of one channel
(kernel-level redundancy) are served by the row order (tap, channel) the compact pass
chose and by the lowering, which reads each tap as a shifted slice of the same input.

Two groups reading the same rows::

  "pconv.packed_conv2d"(%x, %pw, %b) {group_size = 1 : i64,
      row_channels = dense<[[0, 0], [0, 0]]>, row_taps = dense<[[4, 5], [4, 5]]>, ...}

become one group of two filters reading them once::

  "pconv.packed_conv2d"(%x, %pw2, %b) {group_size = 2 : i64,
      row_channels = dense<[[0, 0]]>, row_taps = dense<[[4, 5]]>, ...}

Groups with disjoint rows are left alone: merging them would only add zero MACs.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np

from pconv_mlir.mlir.constants import ResourceTable, constant_array, dense_attr
from pconv_mlir.mlir.ir import ir
from pconv_mlir.mlir.pass_infra import PconvPass, erase_dead, ops_named
from pconv_mlir.mlir.pconv_ops import I64, constant, int_table


def _rows(channels: np.ndarray, taps: np.ndarray, weights: np.ndarray) -> list[list[tuple[int, int]]]:
    """Per group, the rows that carry a non-zero weight (padding rows dropped)."""
    out = []
    for g in range(weights.shape[0]):
        live = np.nonzero(np.abs(weights[g]).sum(axis=0))[0]
        out.append([(int(taps[g, r]), int(channels[g, r])) for r in live])
    return out


def _cost(groups: int, group_size: int, rows: int, gather_cost: float) -> float:
    return groups * rows * (gather_cost + group_size)


def merge_pairs(weights, channels, taps):
    """Merge groups 2i and 2i+1: rows = sorted union, weights re-laid out. Returns arrays."""
    n, g, _ = weights.shape
    live = _rows(channels, taps, weights)
    merged_rows = [sorted(set(live[i]) | set(live[i + 1] if i + 1 < n else [])) for i in range(0, n, 2)]
    r_max = max(1, max(len(r) for r in merged_rows))
    w2 = np.zeros(((n + 1) // 2, 2 * g, r_max), np.float32)
    c2 = np.zeros(((n + 1) // 2, r_max), np.int32)
    t2 = np.full(((n + 1) // 2, r_max), 4, np.int32)
    for m, rows in enumerate(merged_rows):
        index = {row: r for r, row in enumerate(rows)}
        for r, (t, c) in enumerate(rows):
            t2[m, r], c2[m, r] = t, c
        if rows:
            c2[m, len(rows):] = rows[0][1]
        for half in (0, 1):
            src = 2 * m + half
            if src >= n:
                continue
            for r_src in range(weights.shape[2]):
                key = (int(taps[src, r_src]), int(channels[src, r_src]))
                if key in index and weights[src, :, r_src].any():
                    w2[m, half * g:(half + 1) * g, index[key]] = weights[src, :, r_src]
    return w2, c2, t2


@dataclasses.dataclass
class EliminateRedundantLoads(PconvPass):
    name: ClassVar[str] = "pconv-eliminate-redundant-loads"
    summary: ClassVar[str] = "Merge filter groups that gather the same input rows so each row is loaded once"
    gather_cost: float = 16.0  # one gathered element costs this many MACs (llvm-cpu, measured)
    max_group_size: int = 64

    def run(self, module: ir.Operation) -> None:
        resources = ResourceTable(module)
        for op in ops_named(module, "pconv.packed_conv2d"):
            weights = constant_array(op.operands[1], resources)
            if weights is None:
                continue
            channels, taps = int_table(op, "row_channels"), int_table(op, "row_taps")
            out_channels = ir.RankedTensorType(op.results[0].type).shape[1]
            changed = False
            while weights.shape[0] > 1 and 2 * weights.shape[1] <= min(self.max_group_size, 2 * out_channels):
                w2, c2, t2 = merge_pairs(weights, channels, taps)
                before = _cost(weights.shape[0], weights.shape[1], weights.shape[2], self.gather_cost)
                after = _cost(w2.shape[0], w2.shape[1], w2.shape[2], self.gather_cost)
                if after >= before:
                    break
                weights, channels, taps = w2, c2, t2
                changed = True
            if not changed:
                continue
            old_weights = op.operands[1].owner.operation
            op.operands[1] = constant(op, weights)
            op.attributes["group_size"] = ir.IntegerAttr.get(I64(), weights.shape[1])
            op.attributes["row_channels"] = dense_attr(channels)
            op.attributes["row_taps"] = dense_attr(taps)
            if not list(old_weights.results[0].uses):
                erase_dead(old_weights)
