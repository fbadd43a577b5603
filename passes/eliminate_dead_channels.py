"""pconv-eliminate-dead-channels: cut the channels no filter of the next conv reads.

Connectivity pruning can leave an input channel of a 1x1 conv with no kept weight in any filter:
a 1x1 projection pruned in one block of G filters keeps the same half of its input channels in
every filter (MobileNet-V2's 96->24, 144->24, 144->32, 192->32). The other half is still
computed by the conv that produces it and by every channel-wise op in between (BN, ReLU6, the
pad and the depthwise conv), then multiplied by zero. This pass removes those channels from
the whole chain, back to the producing conv's filters::

  %a = linalg.conv_2d_nchw_fchw ins(%x, %w1 : ..., tensor<96x16x1x1xf32>)   // expansion
  %b = linalg.generic {BN, ReLU6 with per-channel tensor<96x1x1xf32> operands}
  %c = tensor.pad %b low[0, 0, 1, 1] high[0, 0, 1, 1]
  %d = linalg.depthwise_conv_2d_nchw_chw ins(%c, %wd : ..., tensor<96x3x3xf32>)
  %y = linalg.conv_2d_nchw_fchw ins(%d, %w2 : ..., tensor<24x96x1x1xf32>)  // keeps 48 of 96

becomes the same chain on the 48 kept channels: the producer's filters, every per-channel
operand and the consumer's weights are sliced (constants in place, computed values through a
gather that IREE folds at compile time). Numbers are unchanged: a dropped channel was only
ever multiplied by zero weights.

It fires only where every value of the chain has one use, each op is channel-wise (an
elementwise ``linalg.generic`` with one full-size input, a pad of the spatial dims, a
depthwise conv) and the chain starts at a conv with constant weights (and a zero or bias init)
whose blocks of G filters survive the cut. A channel that also feeds a residual add is left
alone, and so is a conv with fewer than ``cost_model.DEAD_CHANNELS_MIN_SHARE`` of its input
channels dead (a few cut channels save little and leave odd channel counts).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np

from pconv_mlir.dialects.pconv import DEAD_CHANNELS_ATTR
from pconv_mlir.lowering import cost_model
from pconv_mlir.lowering.plan import largest_shared_block
from pconv_mlir.mlir.constants import ResourceTable, constant_array
from pconv_mlir.mlir.ir import ir, linalg, tensor
from pconv_mlir.mlir.pass_infra import (
    PconvPass,
    constant,
    erase_dead,
    install_functions,
    ops_named,
    take_function_text,
)
from pconv_mlir.passes.raise_pattern_conv import analyze

CONV = "linalg.conv_2d_nchw_fchw"
DEPTHWISE = "linalg.depthwise_conv_2d_nchw_chw"
CHANNEL = 1  # NCHW


def _owner(value: ir.Value) -> ir.Operation | None:
    owner = value.owner
    return owner.operation if isinstance(owner, ir.OpView) else None


def _erase_if_dead(value: ir.Value) -> None:
    owner = _owner(value)
    if owner is not None and not list(value.uses) and owner.name in (
            "arith.constant", "tensor.empty", "linalg.fill", "linalg.broadcast", "tensor.expand_shape",
            "tensor.collapse_shape"):
        erase_dead(owner)


def _one_use(value: ir.Value) -> bool:
    return len(list(value.uses)) == 1


def _identity(m: ir.AffineMap) -> bool:
    return m.n_dims == len(m.results) and all(str(e) == f"d{i}" for i, e in enumerate(m.results))


def _channel_dim(m: ir.AffineMap) -> int | None | bool:
    """Where the loop's channel dim ``d1`` sits in an operand's indexing map: its position,
    None if the operand does not vary with the channel, False if it mixes it into an expression."""
    results = [str(e) for e in m.results]
    if f"d{CHANNEL}" in results:
        return results.index(f"d{CHANNEL}")
    return False if any(f"d{CHANNEL}" in r for r in results) else None


@dataclasses.dataclass
class _Step:
    """One op of the chain and, per operand, what slicing it takes: ``chain`` (the value
    coming from below), ``empty`` (an init the body never reads), ``init`` (a conv's fill or
    bias broadcast), an int (slice that dim) or None (unchanged)."""
    op: ir.Operation
    operands: list


def _generic_step(op: ir.Operation) -> _Step | None:
    attrs = op.attributes
    iterators = [str(a) for a in ir.ArrayAttr(attrs["iterator_types"])]
    maps = [ir.AffineMapAttr(a).value for a in ir.ArrayAttr(attrs["indexing_maps"])]
    n_in = len(op.operands) - len(op.results)
    if len(op.results) != 1 or any("parallel" not in i for i in iterators) or not _identity(maps[-1]):
        return None
    body = op.regions[0].blocks[0]
    if len(list(body.arguments[-1].uses)):
        return None  # the body reads its init: not elementwise
    result_type = op.results[0].type
    kinds: list = []
    for operand, m in zip(list(op.operands)[:n_in], maps[:n_in]):
        if _identity(m) and operand.type == result_type:
            kinds.append("chain")
            continue
        dim = _channel_dim(m)
        if dim is False:
            return None
        kinds.append(dim)
    if kinds.count("chain") != 1:
        return None  # a second full-size input (a residual add) shares the channels
    return _Step(op, kinds + ["empty"])


def _init_ok(op: ir.Operation) -> bool:
    """A conv's init is a fill or torch-mlir's broadcast of a per-channel bias."""
    init = _owner(op.operands[2])
    if init is not None and init.name == "linalg.broadcast":
        return list(ir.DenseI64ArrayAttr(init.attributes["dimensions"])) == [0, 2, 3] and _one_use(op.operands[2])
    return init is not None and init.name == "linalg.fill"


def _chain(consumer: ir.Operation) -> list[_Step] | None:
    """The channel-wise ops from the producing conv (first) up to ``consumer``'s input, or None."""
    steps: list[_Step] = []
    value = consumer.operands[0]
    while True:
        op = _owner(value)
        if op is None or not _one_use(value) or len(op.results) != 1:
            return None
        if op.name == CONV:
            if not _init_ok(op):
                return None
            steps.append(_Step(op, [None, 0, "init"]))
            return steps[::-1]
        if op.name == DEPTHWISE and _init_ok(op):
            steps.append(_Step(op, ["chain", 0, "init"]))
        elif op.name == "tensor.pad":
            low, high = (list(ir.DenseI64ArrayAttr(op.attributes[k])) for k in ("static_low", "static_high"))
            if len(op.operands) != 1 or low[CHANNEL] or high[CHANNEL]:
                return None
            steps.append(_Step(op, ["chain"]))
        elif op.name == "linalg.generic":
            step = _generic_step(op)
            if step is None:
                return None
            steps.append(step)
        else:
            return None
        value = op.operands[0] if op.name != "linalg.generic" else op.operands[steps[-1].operands.index("chain")]


def _sliced_type(t: ir.Type, dim: int, size: int) -> ir.RankedTensorType:
    rt = ir.RankedTensorType(t)
    shape = list(rt.shape)
    shape[dim] = size
    return ir.RankedTensorType.get(shape, rt.element_type)


class _Cutter:
    def __init__(self, module: ir.Operation):
        self.module = module
        self.resources = ResourceTable(module)
        self.count = 0

    def take(self, at: ir.Operation, value: ir.Value, dim: int, keep: list[int]) -> ir.Value:
        """``value`` with only the ``keep`` entries of ``dim``: a constant sliced here, anything
        else through a gather (IREE folds it when its input is constant)."""
        array = constant_array(value, self.resources)
        source = _owner(value)
        if array is None and source is not None and source.name in ("tensor.expand_shape", "tensor.collapse_shape"):
            array = constant_array(source.operands[0], self.resources)  # torch-mlir's reshaped constants
            array = None if array is None else array.reshape(ir.RankedTensorType(value.type).shape)
        if array is not None:
            return constant(at, np.take(array, keep, axis=dim))
        self.count += 1
        name = f"pconv_take_channels_{self.count}"
        t = ir.RankedTensorType(value.type)
        install_functions(self.module, take_function_text(name, t, dim, keep))
        with ir.InsertionPoint(at), at.location:
            call = ir.Operation.create("func.call", results=[_sliced_type(t, dim, len(keep))], operands=[value],
                                       attributes={"callee": ir.FlatSymbolRefAttr.get(name)})
        return call.results[0]

    def fresh_init(self, at: ir.Operation, init: ir.Value, keep: list[int]) -> ir.Value:
        """A new init with only the ``keep`` channels: an empty tensor for a generic (whose body
        never reads it), else the conv's fill or bias broadcast over them."""
        t = _sliced_type(init.type, CHANNEL, len(keep))
        source = _owner(init)
        with ir.InsertionPoint(at), at.location:
            empty = tensor.EmptyOp(list(t.shape), t.element_type).result
            if source is None or source.name not in ("linalg.fill", "linalg.broadcast"):
                return empty
            if source.name == "linalg.fill":
                return linalg.fill(source.operands[0], outs=[empty])
        bias = self.take(at, source.operands[0], 0, keep)
        with ir.InsertionPoint(at), at.location:
            built = linalg.broadcast(bias, outs=[empty], dimensions=[0, 2, 3])
            return built if isinstance(built, ir.Value) else built.results[0]

    def cut(self, consumer: ir.Operation, weights: np.ndarray, keep: list[int], steps: list[_Step]) -> None:
        k = len(keep)
        for step in steps:
            op = step.op
            for i, kind in enumerate(step.operands):
                operand = op.operands[i]
                if kind in ("empty", "init"):
                    op.operands[i] = self.fresh_init(op, operand, keep)
                elif isinstance(kind, int):
                    op.operands[i] = self.take(op, operand, kind, keep)
                else:
                    continue
                _erase_if_dead(operand)
            op.results[0].set_type(_sliced_type(op.results[0].type, CHANNEL, k))
        old = consumer.operands[1]
        consumer.operands[1] = constant(consumer, np.ascontiguousarray(weights[:, keep]))
        _erase_if_dead(old)
        dead, c = weights.shape[1] - k, weights.shape[1]
        _note(steps[0].op, f"{dead} of its {c} filters fed no weight of the next conv: cut")
        _note(consumer, f"{dead} of {c} input channels had no weight: cut, with the ops that made them")


def _keeps_blocks(producer: ir.Operation, keep: list[int], resources: ResourceTable) -> bool:
    """Whether a 3x3 pattern conv producing the channels keeps its blocks of G filters sharing one
    structure once only ``keep`` filters are left (as many as fit): cutting filters out of the
    middle of blocks would leave it a dense conv. 1x1 and dense producers always may be cut."""
    match = analyze(producer, resources)
    if isinstance(match, str) or match.library is None:
        return True
    before = match.block_size
    after = largest_shared_block(match.kernel_patterns[keep], match.groups)
    return after >= min(before, 1 << (len(keep).bit_length() - 1))


def _note(op: ir.Operation, text: str) -> None:
    old = op.attributes[DEAD_CHANNELS_ATTR].value if DEAD_CHANNELS_ATTR in op.attributes else None
    op.attributes[DEAD_CHANNELS_ATTR] = ir.StringAttr.get(f"{old}; {text}" if old else text)


@dataclasses.dataclass
class EliminateDeadChannels(PconvPass):
    name: ClassVar[str] = "pconv-eliminate-dead-channels"
    summary: ClassVar[str] = ("Cut channels no filter of the next conv reads, back through channel-wise ops "
                              "to the producing conv's filters")

    def run(self, module: ir.Operation) -> None:
        cutter = _Cutter(module)
        for consumer in ops_named(module, CONV):
            weights = constant_array(consumer.operands[1], cutter.resources)
            if weights is None or weights.shape[2:] != (1, 1):
                continue  # a 3x3 pattern conv gathers only its kept rows: cutting its inputs saves nothing
            keep = [int(c) for c in np.flatnonzero(np.any(weights != 0, axis=(0, 2, 3)))]
            if len(keep) > (1 - cost_model.DEAD_CHANNELS_MIN_SHARE) * weights.shape[1] or not keep:
                continue
            steps = _chain(consumer)
            if steps is not None and _keeps_blocks(steps[0].op, keep, cutter.resources):
                with consumer.location:
                    cutter.cut(consumer, weights, keep, steps)
