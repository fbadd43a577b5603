"""pconv-lower-to-linalg: pconv ops -> linalg/tensor/arith that IREE compiles well.

Each ``pconv.packed_conv2d`` becomes a call to a private function built by
:mod:`pconv_mlir.lowering` (one gather of each filter block's (channel, tap) rows, one
batched GEMM over blocks, the bias added after it); the packed weights and row
tables go to the emitter as the passes laid them out and become
constants passed to it. A 1x1 packed conv (``kernel_size = [1, 1]``) takes the same path:
its rows are the kept input-channel planes. Where the emitter's cost model predicts no gain
over dense (option ``force`` overrides), and for a ``pconv.conv2d`` or
``pconv.block_conv2d`` left unpacked, the conv gets the depthwise pattern lowering, the
block lowering, or a dense ``linalg`` convolution on its zero-filled weights: always the
same numbers. The call records what happened in ``pconv.lowering`` ("pattern (...)",
"blocks (...)" or "dense (why)"). ``pconv.permute_channels`` becomes a gather::

  %y = "pconv.packed_conv2d"(%x, %pw, %b) {...} : (...) -> tensor<1x64x32x32xf32>

becomes::

  %y = call @pconv_conv_0(%x, %pw, %rows, %taps, %b) : (...) -> tensor<1x64x32x32xf32>
  func.func private @pconv_conv_0(...) { ... linalg.batch_matmul ... }

Run ``inline`` afterwards (the compile pipeline does) to leave plain linalg.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np

from pconv_mlir.dialects.pconv import (
    LOWERING_ATTR,
    PRECISION_ATTR,
    STORAGE_ATTR,
    TILES_ATTR,
    BlockConv2dOp,
    Conv2dOp,
    PackedConv2dOp,
    PermuteChannelsOp,
)
from pconv_mlir.lowering import (
    ConvSpec,
    PatternConvRefused,
    cost_model,
    emit_dense_conv,
    emit_packed_conv,
    emit_pattern_conv,
)
from pconv_mlir.lowering.pattern_conv import PRECISIONS
from pconv_mlir.lowering.plan import unpack
from pconv_mlir.mlir.constants import ResourceTable, constant_array
from pconv_mlir.mlir.ir import ir
from pconv_mlir.mlir.pass_infra import (
    PassFailure,
    PconvPass,
    constant,
    discardable_attributes,
    erase_dead,
    install_functions,
    ops_named,
    option,
    replace_with_call,
    take_function_text,
)

_CONV_VIEWS = {op.OPERATION_NAME: op for op in (Conv2dOp, BlockConv2dOp, PackedConv2dOp)}


def view(op: ir.Operation):
    """``op`` as its pconv conv class."""
    return _CONV_VIEWS[op.name].of(op)


def kernel_of(op) -> tuple[int, int]:
    if isinstance(op, PackedConv2dOp):
        return op.kernel
    return (1, 1) if isinstance(op, BlockConv2dOp) else (3, 3)


def _tuned(op: ir.Operation) -> tuple[str, str | None] | None:
    """The tuning file's choice for ``op`` (``pconv.tuned_lowering`` / ``pconv.tuned_tiles``), or None."""
    a = op.attributes
    if "pconv.tuned_lowering" not in a:
        return None
    tiles = ir.StringAttr(a["pconv.tuned_tiles"]).value if "pconv.tuned_tiles" in a else None
    return ir.StringAttr(a["pconv.tuned_lowering"]).value, tiles


def spec_of(op: ir.Operation) -> ConvSpec:
    conv = view(op)
    geo = conv.geometry
    n, c, h, w = ir.RankedTensorType(op.operands[0].type).shape
    kh, kw = kernel_of(conv)
    return ConvSpec(n, c, h, w, conv.out_channels, stride=tuple(geo.strides), padding=tuple(geo.padding),
                    dilation=tuple(geo.dilations), groups=geo.groups, KH=kh, KW=kw)


def unpack_op(op: ir.Operation, packed: np.ndarray) -> np.ndarray:
    """The dense (K, C, KH, KW) weights a packed_conv2d represents (for the dense fallback)."""
    conv = PackedConv2dOp.of(op)
    return unpack(packed, conv.channel_table, conv.tap_table, conv.out_channels, conv.in_channels, conv.kernel)


def storage_facts(op: ir.Operation, packed: np.ndarray, weight_bytes: int = 4) -> ir.Attribute:
    """Weight storage of a packed conv, for the compile report: dense fp32, bare non-zeros,
    the packed form (``weight_bytes`` per weight: 2 when packed as f16) and its row tables (bytes)."""
    conv = PackedConv2dOp.of(op)
    kh, kw = conv.kernel
    tables = conv.channel_table.size + conv.tap_table.size
    i64 = ir.IntegerType.get_signless(64)
    facts = {"dense_bytes": conv.out_channels * conv.in_channels * kh * kw * 4,
             "nonzero_bytes": int(np.count_nonzero(packed)) * weight_bytes,
             "packed_bytes": int(packed.size) * weight_bytes,
             "index_bytes": tables * 4}
    return ir.DictAttr.get({k: ir.IntegerAttr.get(i64, v) for k, v in facts.items()})


TO_NCHW, TO_NHWC = [0, 3, 1, 2], [0, 2, 3, 1]


def _transpose_with(op, permutation: list[int]) -> bool:
    return (op is not None and op.name == "linalg.transpose"
            and list(ir.DenseI64ArrayAttr(op.attributes["permutation"])) == permutation)


def nhwc_sandwich(op: ir.Operation) -> tuple[ir.Value | None, ir.Operation | None]:
    """(NHWC input, the NHWC output transpose) when ``op`` reads a transpose NHWC -> NCHW and
    its one use is a transpose NCHW -> NHWC, as ``pconv-convert-to-nhwc`` leaves pconv ops;
    (None, None) otherwise."""
    producer = op.operands[0].owner
    producer = producer.operation if isinstance(producer, ir.OpView) else None
    uses = list(op.results[0].uses)
    if not _transpose_with(producer, TO_NCHW) or len(uses) != 1:
        return None, None
    user = uses[0].owner
    user = user.operation if isinstance(user, ir.OpView) else user
    if not _transpose_with(user, TO_NHWC):
        return None, None
    return producer.operands[0], user


def pixel_gather_attrs(pixels: int, g: int, rows: int) -> str:
    """The tile hint of a block GEMM with the pixels on its rows (the emitters' ``pixel_gemm_attrs``)."""
    return f'{{{TILES_ATTR} = "{cost_model.pixel_gather_tiles(pixels, g, rows)}"}}'


class _Lowerer:
    def __init__(self, module: ir.Operation, force: bool, precision: str = "fp32"):
        self.module = module
        self.force = force
        self.precision = precision
        self.resources = ResourceTable(module)
        self.count = 0

    def _name(self, kind: str) -> str:
        self.count += 1
        return f"pconv_{kind}_{self.count}"

    def _install(self, text: str) -> None:
        install_functions(self.module, text)

    def _call(self, op: ir.Operation, name: str, args: list[ir.Value], how: str, facts: dict | None = None) -> None:
        replace_with_call(op, name, args, {**discardable_attributes(op), LOWERING_ATTR: ir.StringAttr.get(how),
                                           **(facts or {})})

    def lower_conv(self, op: ir.Operation, weight: np.ndarray) -> None:
        """A packed_conv2d goes to the emitter in its packed form (the compact and
        load-elimination passes chose the groups and rows); a conv2d with dense weights goes
        to the depthwise or dense lowering. Refused pattern lowerings fall back to dense.
        Between NHWC transposes (``pconv-convert-to-nhwc``) the lowering reads and writes
        channels-last itself and the transposes go away; a depthwise conv there is lowered
        dense (IREE's NHWC depthwise: 0.06 ms at 144@56, 10x the 4-tap NCHW kernel)."""
        spec = spec_of(op)
        bias = constant_array(op.operands[2], self.resources)
        if bias is None:
            raise PassFailure("the lowering needs a constant bias", op.location)
        conv = view(op)
        block_size = conv.block
        blocks = spec.KH == 1 and spec.KW == 1
        name = self._name("conv")
        nhwc_input, nhwc_output = nhwc_sandwich(op)
        layout = "nhwc" if nhwc_input is not None else "nchw"
        depthwise = spec.groups > 1 and spec.Cg == 1
        tuned = _tuned(op)  # pconv_mlir.tuning.apply: (lowering, tiles or None) measured fastest, or None
        try:
            if layout == "nhwc" and depthwise:
                raise PatternConvRefused("a depthwise conv channels-last is memory-bound: IREE's dense NHWC "
                                         "depthwise beats the 4-tap pattern kernel (10x at 144@56)")
            if tuned and tuned[0] == "dense":
                raise PatternConvRefused("tuned: dense measured fastest")
            tiles = tuned[1] if tuned and tuned[1] is not None else cost_model.cpu_gemm_tiles(block_size)
            hints = f'{{{TILES_ATTR} = "{tiles}"}}' if tiles else ""
            # Channels-last 1x1 blocks take the pixel gather, small maps the transposed GEMM, unless
            # tuning chose tiles of the rows form.
            pixel_hints = None if tuned and tuned[1] is not None else pixel_gather_attrs
            if isinstance(conv, PackedConv2dOp):
                lowered = emit_packed_conv(spec, weight, conv.channel_table, conv.tap_table, bias, name,
                                           force=self.force or bool(tuned), layout=layout, matmul_attrs=hints,
                                           precision=self.precision, pixel_gemm_attrs=pixel_hints)
            else:
                lowered = emit_pattern_conv(spec, weight, bias, block_size, name, force=self.force, layout=layout,
                                            matmul_attrs=hints, precision=self.precision,
                                            pixel_gemm_attrs=pixel_hints)
            if blocks:
                st = lowered.stats
                how = (f"blocks ({lowered.formulation}, G={block_size}, {st['blocks']} blocks x "
                       f"{st['rows_per_block']} channels, {st['dense_macs'] / max(1, st['macs']):.2f}x fewer MACs)")
            else:
                how = f"pattern ({lowered.formulation}, G={block_size})"
        except (PatternConvRefused, ImportError) as why:
            dense = unpack_op(op, weight) if isinstance(conv, PackedConv2dOp) else weight
            lowered = emit_dense_conv(spec, dense, bias, name, layout=layout)
            how = f"dense ({why})"
        if layout == "nhwc":
            how += ", NHWC"
        if tuned and tuned[0] != "dense":  # a tuned dense conv says so in its reason
            how += ", tuned" + (" tiles" if tuned[1] is not None else "")
        # Depthwise and dense lowerings are f32 only; the stats say what the emitter did.
        precision = lowered.stats.get("precision", "fp32")
        facts = {} if precision == "fp32" else {PRECISION_ATTR: ir.StringAttr.get(precision)}  # fp32: untagged
        if isinstance(conv, PackedConv2dOp):
            facts[STORAGE_ATTR] = storage_facts(op, weight, 4 if precision == "fp32" else 2)
        self._install(lowered.mlir)
        args = [nhwc_input if layout == "nhwc" else op.operands[0]] + [constant(op, a) for a in lowered.constants]
        if layout == "nhwc":
            self._call_nhwc(op, nhwc_output, name, args, how, facts)
        else:
            self._call(op, name, args, how, facts)

    def _call_nhwc(self, op: ir.Operation, nhwc_output: ir.Operation, name: str, args: list[ir.Value],
                   how: str, facts: dict) -> None:
        """Call ``name`` on the NHWC input; its NHWC result replaces the output transpose."""
        attributes = {**discardable_attributes(op), LOWERING_ATTR: ir.StringAttr.get(how), **facts}
        with ir.InsertionPoint(op), op.location:
            call = ir.Operation.create("func.call", results=[nhwc_output.results[0].type], operands=args,
                                       attributes={"callee": ir.FlatSymbolRefAttr.get(name), **attributes})
        nhwc_output.results[0].replace_all_uses_with(call.results[0])
        nhwc_output.erase()
        erase_dead(op)

    def lower_permute(self, op: ir.Operation) -> None:
        name = self._name("permute")
        order = [int(p) for p in PermuteChannelsOp.of(op).order]
        self._install(take_function_text(name, ir.RankedTensorType(op.results[0].type), 1, order))
        self._call(op, name, [op.operands[0]], "gather")


@dataclasses.dataclass
class LowerToLinalg(PconvPass):
    name: ClassVar[str] = "pconv-lower-to-linalg"
    summary: ClassVar[str] = "Lower pconv ops to linalg/tensor/arith (gather + batched GEMM per filter block)"
    force: bool = option(False, "pattern lowering even where the cost model predicts no gain over dense")
    precision: str = option("fp32", "fp32, fp16-storage (f16 weights, f32 math) or fp16 (f16 weights, rows and "
                                    "accumulation) for the pattern/block GEMMs; depthwise and dense stay fp32")

    def run(self, module: ir.Operation) -> None:
        if self.precision not in PRECISIONS:
            raise PassFailure(f"precision must be one of {', '.join(PRECISIONS)}, got '{self.precision}'")
        lowerer = _Lowerer(module, self.force, self.precision)
        for op in ops_named(module, *_CONV_VIEWS, PermuteChannelsOp.OPERATION_NAME):
            if op.name == PermuteChannelsOp.OPERATION_NAME:
                lowerer.lower_permute(op)
                continue
            weight = constant_array(op.operands[1], lowerer.resources)
            if weight is None:
                raise PassFailure("the lowering needs constant weights", op.location)
            lowerer.lower_conv(op, weight)
