"""pconv-convert-to-nhwc: run a network's convolutions, poolings and the glue between them
channels-last (NHWC), with transposes only where the network meets NCHW code.

IREE's CPU code for NCHW convolutions is 2-40x slower than for the same math channels-last
(a 56x56x144 depthwise conv: 2.46 ms NCHW, 0.06 ms NHWC), and its own transpose propagation
can fold transposes back into the convs. So pconv assigns the layout itself. Walking each
function in order, it rewrites:

- NCHW convs and poolings (``linalg.conv_2d_nchw_fchw``, ``depthwise_conv_2d_nchw_chw``,
  ``pooling_nchw_max``/``sum``) into their NHWC named forms; constant filters are transposed
  at compile time;
- a dense 1x1 conv into a matmul over pixels, with the cost model's tiles as a hint or left to
  IREE's data tiling (option ``pointwise-tiles``: auto, always, never);
- the ops between them, in place, when one of their 4-D inputs is already NHWC: elementwise
  ``linalg.generic`` (iteration order (n, h, w, c); per-channel operands keep their maps,
  composed), zero ``tensor.pad`` of H/W, and the ``tensor.empty``/``linalg.fill``/bias
  ``linalg.broadcast`` inits of converted ops (rebuilt channels-last).

A 4-D function argument is transposed once at entry; a converted value that reaches anything
else (a flatten, a matmul, ``func.return``, a pconv op) is transposed back right before it::

  %p = tensor.pad %x low[0, 0, 1, 1] high[0, 0, 1, 1] {...} : tensor<1x8x8x8xf32> to tensor<1x8x10x10xf32>
  %y = linalg.depthwise_conv_2d_nchw_chw {...} ins(%p, %w : ..., tensor<8x3x3xf32>) outs(%i ...)
  %r = linalg.generic {... maximumf ...} ins(%y ...)
  return %r

becomes::

  %xt = linalg.transpose ins(%x ...) permutation = [0, 2, 3, 1]
  %p = tensor.pad %xt low[0, 1, 1, 0] high[0, 1, 1, 0] {...} : tensor<1x8x8x8xf32> to tensor<1x10x10x8xf32>
  %y = linalg.depthwise_conv_2d_nhwc_hwc {...} ins(%p, %wt : ..., tensor<3x3x8xf32>) outs(%i2 ...)
  %r = linalg.generic {... maximumf ...} ins(%y ...)          // now on 1x8x8x8 NHWC
  %rt = linalg.transpose ins(%r ...) permutation = [0, 3, 1, 2]
  return %rt

Must not fire on: grouped (non-depthwise) convs, non-constant filters, dynamic shapes,
non-f32 element types; generics with reductions, ``linalg.index`` over more than the four
dims, or a 4-D operand read through anything but the identity map are left NCHW (a converted
input then gets a transpose back).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np

from pconv_mlir.dialects.pconv import CONV_INDEX_ATTR, LOWERING_ATTR, OP_NAMES, TILES_ATTR
from pconv_mlir.lowering import cost_model
from pconv_mlir.mlir.constants import ResourceTable, constant_array
from pconv_mlir.mlir.ir import ir, linalg, tensor
from pconv_mlir.mlir.pass_infra import PassFailure, PconvPass, constant, int_list, option

TO_NHWC, TO_NCHW = [0, 2, 3, 1], [0, 3, 1, 2]
POINTWISE_TILES = ("auto", "always", "never")

# NCHW named op -> (builder of the NHWC named op, filter permutation or None for a pooling window)
NHWC_FORMS = {
    "linalg.conv_2d_nchw_fchw": (linalg.conv_2d_nhwc_hwcf, [2, 3, 1, 0]),
    "linalg.depthwise_conv_2d_nchw_chw": (linalg.depthwise_conv_2d_nhwc_hwc, [1, 2, 0]),
    "linalg.pooling_nchw_max": (linalg.pooling_nhwc_max, None),
    "linalg.pooling_nchw_sum": (linalg.pooling_nhwc_sum, None),
}
_IDENTITY4 = "affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>"
# NCHW pconv ops (all the dialect's ops): kept, between transposes their lowering absorbs.
PCONV_OPS = OP_NAMES


def _permuted(shape: list[int], perm: list[int]) -> list[int]:
    return [shape[p] for p in perm]


def _tensor4(value: ir.Value) -> ir.RankedTensorType | None:
    """The type of ``value`` when it is a static rank-4 f32 tensor."""
    t = value.type
    if not isinstance(t, ir.RankedTensorType):
        return None
    t = ir.RankedTensorType(t)
    if t.rank != 4 or not t.has_static_shape or not isinstance(t.element_type, ir.F32Type):
        return None
    return t


def _nhwc_type(t: ir.RankedTensorType) -> ir.RankedTensorType:
    return ir.RankedTensorType.get(_permuted(list(t.shape), TO_NHWC), t.element_type)


def _value(built) -> ir.Value:
    """The single result of what a binding builder returned (a value, an op, or a result list)."""
    if isinstance(built, ir.Value):
        return built
    if isinstance(built, (ir.OpView, ir.Operation)):
        return built.results[0]
    return built[0]


def _parent(op: ir.Operation) -> ir.Operation | None:
    parent = op.parent
    return parent.operation if isinstance(parent, ir.OpView) else parent


def _defining_op(value: ir.Value) -> ir.Operation | None:
    owner = value.owner
    return owner.operation if isinstance(owner, ir.OpView) else None


class _Converter:
    """Layout assignment over one function body (a single block)."""

    def __init__(self, func: ir.Operation, block: ir.Block, resources: ResourceTable, pointwise_tiles: str):
        self.func = func
        self.pointwise_tiles = pointwise_tiles
        self.block = block
        self.resources = resources
        self.nhwc: dict[ir.Value, ir.Value] = {}  # NCHW value -> its NHWC twin (or itself if converted)
        self.converted: set[ir.Value] = set()  # values whose type is now NHWC
        self.back: dict[ir.Value, ir.Value] = {}  # converted value -> its NCHW transpose

    # -- helpers ---------------------------------------------------------------------------
    def _transpose(self, value: ir.Value, perm: list[int], ip: ir.InsertionPoint) -> ir.Value:
        t = ir.RankedTensorType(value.type)
        with ip:
            empty = tensor.EmptyOp(_permuted(list(t.shape), perm), t.element_type)
            return _value(linalg.transpose(value, outs=[empty.result], permutation=perm))


    def available(self, value: ir.Value) -> bool:
        """Whether ``value`` has (or can cheaply get) an NHWC form: converted, or an argument."""
        return value in self.converted or value in self.nhwc or (
            _defining_op(value) is None and _tensor4(value) is not None)

    def to_nhwc(self, value: ir.Value, at: ir.Operation) -> ir.Value:
        if value in self.converted:
            return value
        if value not in self.nhwc:
            if _defining_op(value) is None:
                ip = ir.InsertionPoint(list(self.block.operations)[0])
            else:
                ip = ir.InsertionPoint(at)
            with at.location:
                self.nhwc[value] = self._transpose(value, TO_NHWC, ip)
        return self.nhwc[value]

    def to_nchw(self, value: ir.Value, at: ir.Operation) -> ir.Value:
        """``value`` transposed back to NCHW, once, right after its producer (so it dominates
        every user, whichever asks first)."""
        if value not in self.back:
            with at.location:
                self.back[value] = self._transpose(value, TO_NCHW, ir.InsertionPoint.after(_defining_op(value)))
        return self.back[value]

    def nhwc_init(self, init: ir.Value, at: ir.Operation) -> ir.Value:
        """An NHWC version of a conv/generic init: empties, zero-or-constant fills and bias
        broadcasts are rebuilt channels-last (cheap, and shared inits stay intact)."""
        if init in self.converted:
            return init
        t = _tensor4(init)
        op = _defining_op(init)
        nt = _nhwc_type(t)
        with ir.InsertionPoint(at), at.location:
            if op is not None and op.name == "tensor.empty":
                return tensor.EmptyOp(list(nt.shape), nt.element_type).result
            if op is not None and op.name == "linalg.fill" and _defining_op(op.operands[1]) is not None \
                    and _defining_op(op.operands[1]).name == "tensor.empty":
                empty = tensor.EmptyOp(list(nt.shape), nt.element_type).result
                return _value(linalg.fill(op.operands[0], outs=[empty]))
            if op is not None and op.name == "linalg.broadcast":
                dims = list(ir.DenseI64ArrayAttr(op.attributes["dimensions"]))
                if dims == [0, 2, 3] and ir.RankedTensorType(op.operands[0].type).rank == 1:
                    empty = tensor.EmptyOp(list(nt.shape), nt.element_type).result
                    return _value(linalg.broadcast(op.operands[0], outs=[empty], dimensions=[0, 1, 2]))
        return self.to_nhwc(init, at)

    # -- rewrites --------------------------------------------------------------------------
    def convert_named(self, op: ir.Operation) -> bool:
        build, filter_perm = NHWC_FORMS[op.name]
        x, window, init = op.operands[0], op.operands[1], op.operands[2]
        if filter_perm is not None:
            weights = self.constant_filter(window)
            if weights is None:
                return False  # a filter computed at run time: leave the op NCHW
            if op.name == "linalg.conv_2d_nchw_fchw" and weights.shape[2:] == (1, 1):
                x2, init2 = self.to_nhwc(x, op), self.nhwc_init(init, op)
                tags = _discardable(op)
                new, how = self.pointwise(op, x2, weights, init2)
                matmul = _defining_op(_defining_op(new).operands[0])
                _tag(matmul, tags, f"NHWC, as a matmul over pixels (1x1), {how}")
                self._replace(op, new)
                return True
            window = constant(op, np.ascontiguousarray(weights.transpose(filter_perm)))
        x2 = self.to_nhwc(x, op)
        init2 = self.nhwc_init(init, op)
        attrs = {name: int_list(op.attributes[name]) if name in op.attributes else [1, 1]
                 for name in ("strides", "dilations")}
        # A depthwise conv goes to IREE as a linalg.generic: IREE 3.13's im2col rewrite (which
        # the CPU targets want for the other convs) makes the named op 50x slower, and fails
        # to compile it at batch > 1.
        generic = op.name == "linalg.depthwise_conv_2d_nchw_chw"
        with ir.InsertionPoint(op), op.location:
            new = build(x2, window, outs=[init2], emit_generic=generic, **attrs)
        new = _value(new)
        _tag(_defining_op(new), _discardable(op), "NHWC")
        self._replace(op, new)
        return True

    def pointwise(self, op: ir.Operation, x: ir.Value, weights: np.ndarray, init: ir.Value) -> tuple[ir.Value, str]:
        """A 1x1 conv on NHWC ``x`` as a matmul over pixels, and how it is tiled. Where the cost
        model gives tiles, the weights are its (C, F) B operand with those tiles as a hint (on
        the x86 host they keep IREE's data tiling off this matmul); elsewhere they are its
        transposed (F, C) B operand (IREE's best form without data tiling: 2.4x faster than HWCF
        on ResNet-50's 49x2048x1024 layer). A stride becomes a strided slice first."""
        sh, sw = int_list(op.attributes["strides"]) if "strides" in op.attributes else [1, 1]
        n, _, _, c = ir.RankedTensorType(x.type).shape
        _, oh, ow, f = ir.RankedTensorType(init.type).shape
        f32 = ir.F32Type.get()
        tiles = None if self.pointwise_tiles == "never" else cost_model.pointwise_tiles(
            n * oh * ow, f, c, always=self.pointwise_tiles == "always")
        w = constant(op, np.ascontiguousarray(weights.reshape(f, c).T if tiles else weights.reshape(f, c)))
        with ir.InsertionPoint(op):
            if (sh, sw) != (1, 1):
                x = tensor.ExtractSliceOp(ir.RankedTensorType.get([n, oh, ow, c], f32), x, [], [], [],
                                          [0, 0, 0, 0], [n, oh, ow, c], [1, sh, sw, 1]).result
            flat = [[0, 1, 2], [3]]
            x2 = tensor.CollapseShapeOp(ir.RankedTensorType.get([n * oh * ow, c], f32), x, flat).result
            acc = tensor.CollapseShapeOp(ir.RankedTensorType.get([n * oh * ow, f], f32), init, flat).result
            if tiles:
                y = _value(linalg.matmul(x2, w, outs=[acc]))
                _defining_op(y).attributes[TILES_ATTR] = ir.StringAttr.get(tiles)
                how = "pconv's tile hint, no data tiling on the host"
            else:
                d = [ir.AffineDimExpr.get(i) for i in range(3)]
                maps = [ir.AffineMap.get(3, 0, m) for m in ([d[0], d[2]], [d[1], d[2]], [d[0], d[1]])]
                y = _value(linalg.matmul(x2, w, outs=[acc], indexing_maps=maps))
                how = "IREE's tiles (data-tiled on the host)"
            out = tensor.ExpandShapeOp(ir.RankedTensorType.get([n, oh, ow, f], f32), y, flat, [], [n, oh, ow, f])
            return out.result, how

    def constant_filter(self, value: ir.Value) -> np.ndarray | None:
        """A constant filter, looking through the collapse torch-mlir puts on depthwise weights."""
        op = _defining_op(value)
        if op is not None and op.name == "tensor.collapse_shape":
            source = constant_array(op.operands[0], self.resources)
            return None if source is None else source.reshape(ir.RankedTensorType(value.type).shape)
        return constant_array(value, self.resources)

    def convert_pad(self, op: ir.Operation) -> None:
        low = list(ir.DenseI64ArrayAttr(op.attributes["static_low"]))
        high = list(ir.DenseI64ArrayAttr(op.attributes["static_high"]))
        op.operands[0] = self.to_nhwc(op.operands[0], op)
        op.attributes["static_low"] = ir.DenseI64ArrayAttr.get(_permuted(low, TO_NHWC))
        op.attributes["static_high"] = ir.DenseI64ArrayAttr.get(_permuted(high, TO_NHWC))
        result = op.results[0]
        result.set_type(_nhwc_type(_tensor4(result)))
        self._mark(result, op)

    def convert_generic(self, op: ir.Operation) -> None:
        n_in = len(op.operands) - len(op.results)
        maps = [ir.AffineMapAttr(m).value for m in ir.ArrayAttr(op.attributes["indexing_maps"])]
        d = [ir.AffineDimExpr.get(i) for i in range(4)]
        # new dims (n, h, w, c): old d0 = n, d1 = c, d2 = h, d3 = w
        old_in_new = ir.AffineMap.get(4, 0, [d[0], d[3], d[1], d[2]])
        new_maps = []
        for i, (value, amap) in enumerate(zip(list(op.operands), maps)):
            results = [r.compose(old_in_new) for r in amap.results]
            is_init = i >= n_in
            if _tensor4(value) is not None and (is_init or value in self.converted or self.available(value)):
                # read (or written) channels-last: identity map in the new dims
                results = _permuted(results, TO_NHWC)
                op.operands[i] = self.nhwc_init(value, op) if is_init else self.to_nhwc(value, op)
            new_maps.append(ir.AffineMap.get(4, 0, results))
        op.attributes["indexing_maps"] = ir.ArrayAttr.get([ir.AffineMapAttr.get(m) for m in new_maps])
        i64 = ir.IntegerType.get_signless(64)
        new_dim = {0: 0, 1: 3, 2: 1, 3: 2}
        for inner in op.regions[0].blocks[0].operations:
            if inner.operation.name == "linalg.index":
                dim = ir.IntegerAttr(inner.operation.attributes["dim"]).value
                inner.operation.attributes["dim"] = ir.IntegerAttr.get(i64, new_dim[dim])
        for result in op.results:
            result.set_type(_nhwc_type(_tensor4(result)))
            self._mark(result, op)

    def sandwich(self, op: ir.Operation) -> bool:
        """Put an NCHW pconv op whose input is channels-last between two transposes; its
        lowering reads and writes NHWC itself and drops them (``nhwc_sandwich``)."""
        x = op.operands[0]
        if not self.available(x) or len(op.results) != 1 or _tensor4(op.results[0]) is None:
            return False
        op.operands[0] = self.to_nchw(self.to_nhwc(x, op), op)
        result = op.results[0]
        back = self._transpose(result, TO_NHWC, ir.InsertionPoint.after(op))
        result.replace_all_uses_except(back, _defining_op(back))
        self._mark(back, _defining_op(back))
        return True

    def _replace(self, op: ir.Operation, new: ir.Value) -> None:
        old = op.results[0]
        old.replace_all_uses_with(new)
        op.erase()
        self._mark(new, _defining_op(new))

    def _mark(self, value: ir.Value, producer: ir.Operation) -> None:
        """Record ``value`` as NHWC. Uses nested in other ops' regions (a ``tensor.extract`` in
        a gather's body reads with NCHW indices) get the value transposed back instead."""
        self.converted.add(value)
        for use in list(value.uses):
            user = use.owner.operation if isinstance(use.owner, ir.OpView) else use.owner
            ancestor = user
            while _parent(ancestor) is not None and _parent(ancestor) != self.func:
                ancestor = _parent(ancestor)
            if ancestor != user:
                user.operands[use.operand_number] = self.to_nchw(value, ancestor)

    # -- eligibility -----------------------------------------------------------------------
    def generic_convertible(self, op: ir.Operation) -> bool:
        n_in = len(op.operands) - len(op.results)
        iters = [str(a) for a in ir.ArrayAttr(op.attributes["iterator_types"])]
        if len(iters) != 4 or any("parallel" not in it for it in iters):
            return False
        if not all(_tensor4(r) is not None for r in op.results):
            return False
        maps = [str(m) for m in ir.ArrayAttr(op.attributes["indexing_maps"])]
        fours = [i for i, v in enumerate(op.operands) if _tensor4(v) is not None]
        if any(maps[i] != _IDENTITY4 for i in fours):
            return False
        # only worth it when an input already is (or cheaply becomes) channels-last
        return any(op.operands[i] in self.converted for i in fours if i < n_in)

    def run(self) -> None:
        for op in [o.operation for o in self.block.operations]:
            with op.location:
                self._visit(op)

    def _visit(self, op: ir.Operation) -> None:
        name = op.name
        if name in NHWC_FORMS and all(_tensor4(v) is not None for v in (op.operands[0], op.operands[2])) \
                and self.convert_named(op):
            return
        if name in PCONV_OPS and self.sandwich(op):
            return
        if name == "linalg.generic" and self.generic_convertible(op):
            self.convert_generic(op)
        elif name == "tensor.pad" and len(op.operands) == 1 and _tensor4(op.results[0]) is not None \
                and self.available(op.operands[0]):
            self.convert_pad(op)
        else:  # stays NCHW: give it NCHW operands
            for i, value in enumerate(list(op.operands)):
                if value in self.converted:
                    op.operands[i] = self.to_nchw(value, op)


def _tag(op: ir.Operation, tags: dict[str, ir.Attribute], form: str) -> None:
    """Carry the conv's pconv tags to what replaces it and say, for the report, how it runs."""
    for key, value in tags.items():
        op.attributes[key] = value
    if CONV_INDEX_ATTR in tags:
        op.attributes[LOWERING_ATTR] = ir.StringAttr.get(form)


def _discardable(op: ir.Operation) -> dict[str, ir.Attribute]:
    attrs = op.attributes
    return {attrs[i].name: attrs[i].attr for i in range(len(attrs)) if attrs[i].name.startswith("pconv.")}


@dataclasses.dataclass
class ConvertToNhwc(PconvPass):
    name: ClassVar[str] = "pconv-convert-to-nhwc"
    summary: ClassVar[str] = "Run convolutions, poolings and the ops between them channels-last (NHWC)"
    pointwise_tiles: str = option("auto", "dense 1x1 convs' matmuls: auto (pconv's tiles where the cost model "
                                  "chooses them), always, or never (all keep IREE's tiles and data tiling)")

    def run(self, module: ir.Operation) -> None:
        if self.pointwise_tiles not in POINTWISE_TILES:
            raise PassFailure(f"pointwise-tiles must be one of {', '.join(POINTWISE_TILES)}, got '{self.pointwise_tiles}'")
        resources = ResourceTable(module)
        for func in module.regions[0].blocks[0].operations:
            if func.operation.name != "func.func" or not func.operation.regions[0].blocks:
                continue
            blocks = list(func.operation.regions[0].blocks)
            if len(blocks) == 1:
                _Converter(func.operation, blocks[0], resources, self.pointwise_tiles).run()
