"""pconv-reorder-kernels: filter kernel reordering (PatDNN's FKR).

Filters of a ``pconv.conv2d`` without shared structure (``block_size = 1``) are sorted so
that filters with the same kept kernels and patterns sit next to each other, longest
first; consecutive filters then share the rows the compact pass packs. The weights, bias
and ``kernel_patterns`` are permuted at compile time and a ``pconv.permute_channels``
restores the original channel order::

  %y = "pconv.conv2d"(%x, %w, %b) {kernel_patterns = dense<[[0], [1], [0], [1]]>, block_size = 1, ...}

becomes::

  %y = "pconv.conv2d"(%x, %w', %b') {kernel_patterns = dense<[[0], [0], [1], [1]]>, block_size = 2, ...}
  %r = "pconv.permute_channels"(%y) {permutation = array<i64: 0, 2, 1, 3>}

The permutation then sinks through per-channel ops (elementwise ``linalg.generic``, zero
``tensor.pad`` of H/W, ``linalg.pooling_nchw_max``) and folds into a consuming
``pconv.conv2d``'s or ``pconv.block_conv2d``'s input channels, or a dense
``linalg.conv_2d_nchw_fchw``'s with constant weights (their weights are permuted instead;
a 1x1 block conv keeps its blocks, which are over output filters); where it cannot go
further it stays, and the lowering turns it into a gather. Filters already in order, and
ops with shared structure, are left alone, and so are filters whose reordering would not let
the compact pass's blocks cut MACs enough (``cost_model.reorder_pays_off``; the conv would stay dense).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np

from pconv_mlir.dialects.pconv import BlockConv2dOp, Conv2dOp, PermuteChannelsOp
from pconv_mlir.lowering import cost_model
from pconv_mlir.lowering.plan import largest_shared_block
from pconv_mlir.mlir.constants import ResourceTable, constant_array
from pconv_mlir.mlir.ir import ir
from pconv_mlir.mlir.pass_infra import PconvPass, constant, ops_named
from pconv_mlir.passes.compact_weights import pack
from pconv_mlir.patterns import PRUNED

# Ops through which a channel permutation commutes (channel-wise, NCHW in and out).
_IDENTITY_MAP = "affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>"


def filter_order(ids: np.ndarray) -> np.ndarray:
    """Stable order: most kept kernels first, then identical kernel rows adjacent."""
    keys = [(-int((row != PRUNED).sum()), tuple(int(v) for v in row)) for row in ids]
    return np.array(sorted(range(len(keys)), key=lambda k: keys[k]), dtype=np.int64)


def _permute(value: ir.Value, permutation: np.ndarray, after: ir.Operation) -> ir.Operation:
    return PermuteChannelsOp.build(value, permutation, after).operation


def _foldable(user: ir.Operation, index: int, resources: ResourceTable) -> bool:
    """Whether ``user`` reads the permuted tensor as its input and can absorb the permutation
    into its weights' columns: a pconv.conv2d or pconv.block_conv2d (groups 1), or a dense
    ``linalg.conv_2d_nchw_fchw`` (groups 1 by construction), with constant weights."""
    if index != 0:
        return False
    if user.name == Conv2dOp.OPERATION_NAME:
        ok = Conv2dOp.of(user).geometry.groups == 1
    elif user.name == BlockConv2dOp.OPERATION_NAME:
        ok = BlockConv2dOp.of(user).geometry.groups == 1
    else:
        ok = user.name == "linalg.conv_2d_nchw_fchw"
    return ok and constant_array(user.operands[1], resources) is not None


def _fold_into(user: ir.Operation, source: ir.Value, perm: np.ndarray, resources: ResourceTable) -> None:
    """Make ``user`` read ``source`` (its input before the permutation) with its weights'
    columns permuted to match."""
    weight = constant_array(user.operands[1], resources)
    order = np.argsort(perm)
    user.operands[1] = constant(user, np.ascontiguousarray(weight[:, order]))
    if user.name == Conv2dOp.OPERATION_NAME:
        conv = Conv2dOp.of(user)
        conv.set_kernel_pattern_ids(conv.kernel_pattern_ids[:, order])
    user.operands[0] = source


def _commutes(user: ir.Operation, operand_index: int) -> bool:
    if user.name == "linalg.generic":
        # One input, an empty init, identity maps: elementwise on that tensor alone. (With a
        # second input, e.g. a residual add, that input would need the permutation too.)
        maps = [str(m) for m in ir.ArrayAttr(user.attributes["indexing_maps"])]
        init = user.operands[len(user.operands) - 1].owner
        return (len(user.operands) == 2 and len(user.results) == 1 and all(m == _IDENTITY_MAP for m in maps)
                and isinstance(init, ir.OpView) and init.operation.name == "tensor.empty")
    if user.name == "tensor.pad":
        low = list(ir.DenseI64ArrayAttr(user.attributes["static_low"]))
        high = list(ir.DenseI64ArrayAttr(user.attributes["static_high"]))
        return len(user.operands) == 1 and low[1] == 0 and high[1] == 0
    if user.name == "linalg.pooling_nchw_max":
        return operand_index == 0
    return False


def sink(permute: ir.Operation, resources: ResourceTable) -> None:
    """Move ``permute`` below channel-wise users; fold it into a consuming conv."""
    while True:
        uses = list(permute.results[0].uses)
        owners = [(u.owner.operation if isinstance(u.owner, ir.OpView) else u.owner, u.operand_number) for u in uses]
        perm = PermuteChannelsOp.of(permute).order
        if owners and all(_foldable(user, index, resources) for user, index in owners):
            # Every consumer is a conv that reads channels in the producer's order from now on.
            for user, _ in owners:
                _fold_into(user, permute.operands[0], perm, resources)
            permute.erase()
            return
        if len(uses) != 1:
            return
        user, index = owners[0]
        if not _commutes(user, index):
            return
        # user(permute(x)) == permute(user(x)) for a channel-wise op.
        user.operands[index] = permute.operands[0]
        result = user.results[0]
        moved = _permute(result, perm, user)
        result.replace_all_uses_except(moved.results[0], moved)
        permute.erase()
        permute = moved


def _pays_off(weight: np.ndarray, ids: np.ndarray, patterns: list[tuple[int, ...]]) -> bool:
    """Whether the reordered filters, packed in the compact pass's default groups, cut MACs
    enough for the pattern lowering to take the conv. Otherwise reordering only adds a
    channel gather to a conv that stays dense (G=1 ResNet-50 3x3 convs: 7% slower)."""
    packed = pack(weight, ids, patterns, min(cost_model.DEFAULT_BLOCK_SIZE, ids.shape[0]))
    return cost_model.reorder_pays_off(packed.macs_per_pixel, ids.size * 9)


@dataclasses.dataclass
class ReorderKernels(PconvPass):
    name: ClassVar[str] = "pconv-reorder-kernels"
    summary: ClassVar[str] = "Reorder filters so equal kernel structures are adjacent (FKR); sink the permutation"

    def run(self, module: ir.Operation) -> None:
        resources = ResourceTable(module)
        for op in ops_named(module, Conv2dOp.OPERATION_NAME):
            conv = Conv2dOp.of(op)
            if conv.geometry.groups != 1 or conv.block > 1:
                continue
            weight = constant_array(op.operands[1], resources)
            bias = constant_array(op.operands[2], resources)
            ids = conv.kernel_pattern_ids
            order = filter_order(ids)
            if weight is None or bias is None or (order == np.arange(len(order))).all():
                continue
            if not _pays_off(weight[order], ids[order], conv.library):
                continue
            op.operands[1] = constant(op, np.ascontiguousarray(weight[order]))
            op.operands[2] = constant(op, np.ascontiguousarray(bias[order]))
            conv.set_kernel_pattern_ids(ids[order])
            conv.set_block(largest_shared_block(ids[order], 1))
            restore = _permute(op.results[0], np.argsort(order), op)
            op.results[0].replace_all_uses_except(restore.results[0], restore)
            sink(restore, resources)
