"""Pattern-sparse 3x3 convolution -> linalg/tensor/arith that IREE compiles well.

PatDNN's filter-level load sharing, expressed as block GEMMs:

* Filters are cut into blocks of G consecutive output filters (:mod:`.plan`). A block's rows
  are the union of its filters' kept (input channel, tap) pairs.
* A gather builds each block's rows contiguous along the output pixels (:mod:`.rows` says
  where a row lives per formulation; ``templates/gather_*.mlir`` are the kernels).
* One ``linalg.batch_matmul`` per chunk (blocks = batch) multiplies the packed weights
  ``[blocks, G, R]`` by the rows ``[blocks, R, pixels]``; the bias is added after it by an
  elementwise consumer IREE fuses into the matmul dispatch, which also writes the result in
  NCHW or NHWC order (``templates/bias_*.mlir``).

Large layers are cut into chunks (:func:`.cost_model.chunk_plan`) so the gathered rows are still
in cache when the GEMM reads them. The union-of-rows construction is exact for ANY weight, so
correctness never depends on the structure; only speed does. Accumulators start at zero and
the bias comes after the GEMM: a bias-broadcast init is folded by IREE's const-eval into a
global when the output is small, and IREE 3.13 then fails to compile it or, fused,
miscompiles it (ResNet-50 layer4 at 32x32 on lavapipe: rel err 3.1).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import cost_model
from .mlir_util import array_type, tensor_type
from .plan import PatternPlan, plan_from_packed, plan_from_weights
from .rows import RowGeometry, row_edge_mask, row_geometry
from .spec import ConvSpec, LoweredConv, PatternConvRefused
from .template import render

__all__ = ["emit_pattern_conv", "emit_packed_conv", "pattern_refusal", "PRECISIONS"]

LAYOUTS = ("nchw", "nhwc")
#: fp32; fp16-storage: f16 packed weights widened in the GEMM, f32 rows and accumulation;
#: fp16: f16 weights, rows and accumulation, widened to f32 by the bias epilogue. The conv's
#: input and output stay f32 either way (the network between convs is not pconv's).
PRECISIONS = ("fp32", "fp16-storage", "fp16")


def emit_pattern_conv(spec: ConvSpec, weight: np.ndarray, bias: np.ndarray | None, block_size: int,
                      func_name: str, *, formulation: str = "auto", force: bool = False,
                      row_multiple: int = cost_model.ROW_MULTIPLE, chunk_bytes: int | None = cost_model.CHUNK_BYTES,
                      max_chunks: int = cost_model.MAX_CHUNKS,
                      chunk_above_bytes: int = cost_model.CHUNK_ABOVE_BYTES, layout: str = "nchw",
                      matmul_attrs: str = "", precision: str = "fp32",
                      pixel_gemm_attrs: Callable[[int, int, int], str] | None = None) -> LoweredConv:
    """Lower one pattern-sparse 3x3 conv from its dense weights, blocks of ``block_size``
    filters; raise PatternConvRefused when the cost model says dense is as fast.

    ``formulation``: "auto" (rows for stride 1, masked where the output is as wide as the
    input; the gather otherwise), "rows" or "gather". ``force`` skips the profitability check
    (unsupported forms still raise). ``chunk_bytes``/``max_chunks``/``chunk_above_bytes``: see
    :func:`.cost_model.chunk_plan` (None: never chunk). ``layout``: "nchw" or "nhwc", the
    layout of the function's input and result. ``matmul_attrs``: an attribute dictionary
    (``{...}``) put on every batched GEMM (tiling hints). ``precision``: one of
    :data:`PRECISIONS`. ``pixel_gemm_attrs``: when given, GEMMs may put the pixels on their rows:
    an unpadded 1x1 block conv channels-last takes the pixel gather (``templates/gather_pixels.mlir``),
    a map of at most :data:`.cost_model.PIXEL_ROWS_MAX_PIXELS` pixels the transposed GEMM
    (``templates/block_gemm_pixel_rows.mlir``); their attributes are ``pixel_gemm_attrs(pixels, G, R)``.
    Depthwise convs go to :func:`.depthwise.emit_pattern_depthwise` (NCHW only, fp32).
    """
    if spec.groups > 1 and spec.Cg == 1:
        from .depthwise import emit_pattern_depthwise
        if layout != "nchw":
            raise PatternConvRefused("the pattern depthwise lowering is NCHW only")
        return emit_pattern_depthwise(spec, weight, bias, func_name, force=force)
    plan = plan_from_weights(spec, weight, block_size, row_multiple)
    return _lower(plan, bias, func_name, formulation, force,
                  (chunk_bytes, max_chunks, chunk_above_bytes), layout, matmul_attrs, precision, pixel_gemm_attrs)


def emit_packed_conv(spec: ConvSpec, weights: np.ndarray, row_channels: np.ndarray, row_taps: np.ndarray,
                     bias: np.ndarray | None, func_name: str, *, force: bool = False,
                     row_multiple: int = cost_model.ROW_MULTIPLE, layout: str = "nchw",
                     matmul_attrs: str = "", precision: str = "fp32",
                     pixel_gemm_attrs: Callable[[int, int, int], str] | None = None) -> LoweredConv:
    """Lower a conv given in the passes' compact form (``pconv.packed_conv2d``: weights
    ``[blocks, G, R]`` and per-block row tables), keeping their blocks and row order."""
    plan = plan_from_packed(spec, weights, row_channels, row_taps, row_multiple)
    chunking = (cost_model.CHUNK_BYTES, cost_model.MAX_CHUNKS, cost_model.CHUNK_ABOVE_BYTES)
    return _lower(plan, bias, func_name, "auto", force, chunking, layout, matmul_attrs, precision, pixel_gemm_attrs)


def pattern_refusal(plan: PatternPlan, geometry: RowGeometry) -> str | None:
    """Why ``plan`` should stay dense (the cost model's verdict), or None."""
    s = plan.spec
    pixels = s.N * s.OH * geometry.row_width
    return cost_model.pattern_refusal(s, plan.macs(), plan.nb, plan.G, plan.R, pixels)


def _lower(plan: PatternPlan, bias, func_name: str, formulation: str, force: bool, chunking,
           layout: str, matmul_attrs: str, precision: str = "fp32", pixel_gemm_attrs=None) -> LoweredConv:
    if formulation not in ("auto", "rows", "gather"):
        raise ValueError(f"unknown formulation {formulation!r} (auto, rows, gather)")
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r} ({', '.join(LAYOUTS)})")
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r} ({', '.join(PRECISIONS)})")
    geometry = row_geometry(plan.spec, gather=formulation == "gather")
    if not force:
        why = pattern_refusal(plan, geometry)
        if why:
            raise PatternConvRefused(f"{why}; keep dense")
    s = plan.spec
    if geometry.flat:
        chunks = cost_model.chunk_plan(plan.nb, plan.R, s.N, s.OH, geometry.row_width, *chunking)
    else:
        chunks = [(0, plan.nb, 0, s.OH)]
    return _Emitter(plan, geometry, bias, func_name, chunks, layout, matmul_attrs, precision, pixel_gemm_attrs).emit()


def _t(shape, elt: str = "f32") -> str:
    return tensor_type(shape, elt)


class _Emitter:
    """Assembles one lowered conv's private function from the skeletons."""

    def __init__(self, plan: PatternPlan, geometry: RowGeometry, bias, func_name: str, chunks, layout: str,
                 matmul_attrs: str, precision: str = "fp32", pixel_gemm_attrs=None):
        self.plan, self.geo, self.name, self.chunks = plan, geometry, func_name, chunks
        self.matmul_attrs = (matmul_attrs + " ") if matmul_attrs else ""
        s = plan.spec
        p = plan.packed
        self.spec = s
        self.nb, self.G, self.R = plan.nb, plan.G, plan.R
        # Where each filter lands: slot i of block b is output channel plan.blocks[b][i].
        slots = np.concatenate([b * self.G + np.arange(len(f)) for b, f in enumerate(plan.blocks)])
        order = np.empty(s.K, np.int64)
        order[np.concatenate(plan.blocks)] = slots
        self.identity_order = bool(np.array_equal(order, np.arange(s.K)))
        # NHWC results are written channels-last by the bias epilogue; a filter order that is
        # not the identity (blocks padded inside conv groups) takes the NCHW epilogue + a transpose.
        self.layout = layout
        self.nhwc_epilogue = layout == "nhwc" and self.identity_order
        # An unpadded 1x1 block conv channels-last gathers each pixel's kept channels and writes
        # NHWC: no transpose of its input, which IREE fuses into the producer's store (MobileNet-V2's
        # depthwise convs ran 2.3x slower writing NCHW for the block convs after them).
        self.pixel_major = (pixel_gemm_attrs is not None and self.nhwc_epilogue and (s.KH, s.KW) == (1, 1)
                            and not any(s.padding) and s.groups == 1)
        # A small map puts its pixels on the GEMM's rows and the filters on the vector lanes.
        pixels = s.N * s.OH * geometry.row_width
        self.pixel_rows = (pixel_gemm_attrs is not None and not self.pixel_major
                           and pixels <= cost_model.PIXEL_ROWS_MAX_PIXELS)
        if self.pixel_major or self.pixel_rows:
            attrs = pixel_gemm_attrs(pixels, plan.G, plan.R)
            self.matmul_attrs = (attrs + " ") if attrs else ""
        self.precision = precision
        # Element types: packed weights, gathered rows, GEMM accumulator.
        self.w_elt = "f32" if precision == "fp32" else "f16"
        self.row_elt = self.acc_elt = "f16" if precision == "fp16" else "f32"
        weights = p.weights if precision == "fp32" else p.weights.astype(np.float16)
        self.args: list[tuple[str, np.ndarray]] = [("%wp", weights), ("%tc", p.channels)]
        if self.pixel_major or self.pixel_rows:  # [blocks, R, G]: the GEMM's right operand
            self.args[0] = ("%wpt", np.ascontiguousarray(weights.transpose(0, 2, 1)))
        # Where each row lives in the input; the pixel gather reads the NHWC input by channel alone.
        if geometry.flat and not self.pixel_major:
            self.args.append(("%toff", geometry.offsets(s, p.taps)))
            if geometry.kind == "masked-rows":
                self.args.append(("%tkx", np.ascontiguousarray(p.taps % s.KW, np.int32)))
                self.args.append(("%cmask", row_edge_mask(s.OH, s.OW, s.dilation[1], s.padding[1], s.KW)))
        elif not self.pixel_major:
            dy, dx = (p.taps // s.KW) * s.dilation[0], (p.taps % s.KW) * s.dilation[1]
            self.args += [("%tdy", np.ascontiguousarray(dy, np.int32)), ("%tdx", np.ascontiguousarray(dx, np.int32))]
        # The bias epilogue also widens an f16 accumulator back to f32.
        self.has_bias = bias is not None or self.nhwc_epilogue or self.acc_elt == "f16"
        if self.has_bias:
            bp = np.zeros((self.nb, self.G), np.float32)
            if bias is not None:
                flat_bias = np.asarray(bias, np.float32).reshape(-1)
                for b, filters in enumerate(plan.blocks):
                    bp[b, :len(filters)] = flat_bias[filters]
            self.args.append(("%bias", bp))
        if not self.identity_order:
            self.args.append(("%ord", np.ascontiguousarray(order, np.int32)))
        self.types = {name: array_type(a) for name, a in self.args}
        self.lines: list[str] = []

    # -- pieces ----------------------------------------------------------------------------
    def _prologue(self) -> tuple[str, str]:
        """Pad (and, for an NHWC input, transpose) the input; returns the padded value and type."""
        s, g = self.spec, self.geo
        L = self.lines
        L.append("  %zero = arith.constant 0.0 : f32")
        if self.acc_elt == "f16":
            L.append("  %zeroh = arith.constant 0.0 : f16")
        source, source_t = "%x", s.in_type
        if self.pixel_major:
            return source, _t((s.N, s.H, s.W, s.C))
        if self.layout == "nhwc":
            L += [f"  %xe = tensor.empty() : {s.in_type}",
                  f"  %xn = linalg.transpose ins(%x : {_t((s.N, s.H, s.W, s.C))}) outs(%xe : {s.in_type}) "
                  "permutation = [0, 3, 1, 2]"]
            source = "%xn"
        xp_t = _t((s.N, s.C, g.padded_h, g.padded_w))
        if g.pad_low == (0, 0) and g.pad_high == (0, 0):
            return source, source_t
        L.append(render("pad_input", source=source, source_type=source_t, xp_type=xp_t, low_h=g.pad_low[0],
                        low_w=g.pad_low[1], high_h=g.pad_high[0], high_w=g.pad_high[1]).rstrip("\n"))
        return "%xp", xp_t

    def _gather(self, i: int, b0: int, b1: int, r0: int, r1: int, xp: str, xp_t: str) -> tuple[str, str]:
        """Chunk ``i``'s rows; returns the gathered tensor's type and how to collapse it to
        ``[blocks, R, pixels]``."""
        s, g, nbc = self.spec, self.geo, b1 - b0
        tab_t = self.types["%tc"]
        elt = self._row_values()
        if not g.flat:
            gather_t = _t((nbc, self.R, s.N, s.OH, s.OW), self.row_elt)
            self.lines.append(render("gather_strided", gather_type=gather_t, tab_type=tab_t, xp=xp, xp_type=xp_t,
                                     stride_h=s.stride[0], stride_w=s.stride[1], **elt).rstrip("\n"))
            return gather_t, "[[0], [1], [2, 3, 4]]"
        qc = (r1 - r0) * g.row_width
        gather_t = _t((nbc, self.R, s.N, qc), self.row_elt)
        mask, value = "", "%v0"
        if g.kind == "masked-rows":
            mask, value = render("row_edge_mask", tab_type=tab_t, mask_type=self.types["%cmask"]), "%v1"
        self.lines.append(render("gather_rows", i=i, b0=b0, q0=r0 * g.row_width, nbc=nbc, rows=self.R,
                                 tab_type=tab_t, ctab_type=_t((nbc, self.R), "i32"), gather_type=gather_t,
                                 xf_type=self._xf_type(), mask=mask, value=value, **elt).rstrip("\n"))
        return gather_t, "[[0], [1], [2, 3]]"

    def _row_values(self) -> dict:
        """Template values that make a gather write ``row_elt`` (narrowing the f32 input)."""
        if self.row_elt == "f32":
            return {"elt": "f32", "narrow": "", "yielded": "%v"}
        return {"elt": "f16", "narrow": "    %vh = arith.truncf %v : f32 to f16\n", "yielded": "%vh"}

    def _acc_values(self) -> dict:
        """Template values for the GEMM's accumulator type and the epilogue that widens it."""
        if self.acc_elt == "f32":
            return {"acc_elt": "f32", "acc_zero": "%zero", "widen": "", "a": "%a"}
        return {"acc_elt": "f16", "acc_zero": "%zeroh", "widen": "    %af = arith.extf %a : f16 to f32\n",
                "a": "%af"}

    def _xf_type(self) -> str:
        s, g = self.spec, self.geo
        return _t((s.N, s.C, g.padded_h * g.padded_w))

    def _chunk_pixels(self, i: int, b0: int, b1: int, r0: int, r1: int, x_t: str) -> None:
        """Chunk ``i`` of a pixel-gather 1x1 conv: output rows ``r0:r1`` of blocks ``b0:b1``."""
        s, nbc, rc = self.spec, b1 - b0, r1 - r0
        pixels = s.N * rc * s.OW
        self.lines.append(render(
            "gather_pixels", i=i, b0=b0, r0=r0, nbc=nbc, rows=self.R, g=self.G, n=s.N, rc=rc, ow=s.OW,
            stride_h=s.stride[0], stride_w=s.stride[1], x_type=x_t, tab_type=self.types["%tc"],
            ctab_type=_t((nbc, self.R), "i32"), gather_type=_t((nbc, s.N, rc, s.OW, self.R), self.row_elt),
            crows_type=_t((nbc, pixels, self.R), self.row_elt), wp_type=self.types["%wpt"],
            cwp_type=_t((nbc, self.R, self.G), self.w_elt), cmm_type=_t((nbc, pixels, self.G), self.acc_elt),
            matmul_attrs=self.matmul_attrs, cm5_type=_t((nbc, s.N, rc, s.OW, self.G), self.acc_elt),
            bias_type=self.types["%bias"], cb_type=_t((nbc, self.G)), co_type=_t((s.N, rc, s.OW, nbc, self.G)),
            coc_type=_t((s.N, rc, s.OW, nbc * self.G)), **self._row_values(), **self._acc_values()).rstrip("\n"))
        self._insert_nhwc(i, b0, nbc, r0, rc)

    def _insert_nhwc(self, i: int, b0: int, nbc: int, r0: int, rc: int) -> None:
        s = self.spec
        coc_t = _t((s.N, rc, s.OW, nbc * self.G))
        self.lines.append(f"  %full{i + 1} = tensor.insert_slice %coc{i} into %full{i}[0, {r0}, 0, {b0 * self.G}] "
                          f"[{s.N}, {rc}, {s.OW}, {nbc * self.G}] [1, 1, 1, 1] : {coc_t} into {self._full_type()}")

    def _chunk(self, i: int, b0: int, b1: int, r0: int, r1: int, xp: str, xp_t: str) -> None:
        s, g, nbc = self.spec, self.geo, b1 - b0
        if self.pixel_major:
            self._chunk_pixels(i, b0, b1, r0, r1, xp_t)
            return
        gather_t, collapse = self._gather(i, b0, b1, r0, r1, xp, xp_t)
        pixels = s.N * (r1 - r0) * g.row_width
        cmm_t = _t((nbc, self.G, pixels), self.acc_elt)
        acc = self._acc_values()
        gemm = "block_gemm_pixel_rows" if self.pixel_rows else "block_gemm"
        self.lines.append(render(
            gemm, i=i, b0=b0, nbc=nbc, g=self.G, rows=self.R, wp_type=self.types["%wpt" if self.pixel_rows else "%wp"],
            cwp_type=_t((nbc, self.R, self.G) if self.pixel_rows else (nbc, self.G, self.R), self.w_elt),
            gather_type=gather_t, gather_collapse=collapse,
            crows_type=_t((nbc, self.R, pixels), self.row_elt), cmm_type=cmm_t, matmul_attrs=self.matmul_attrs,
            cpm_type=_t((nbc, pixels, self.G), self.acc_elt),
            **acc).rstrip("\n"))
        cb_t = _t((nbc, self.G))
        if self.nhwc_epilogue:
            rc = r1 - r0
            co_t = _t((s.N, rc, s.OW, nbc, self.G))
            coc_t = _t((s.N, rc, s.OW, nbc * self.G))
            self.lines.append(render(
                "bias_nhwc", i=i, b0=b0, nbc=nbc, g=self.G, n=s.N, rc=rc, qw=g.row_width, ow=s.OW,
                cmm_type=cmm_t, cm5_type=_t((nbc, self.G, s.N, rc, g.row_width), self.acc_elt),
                cms_type=_t((nbc, self.G, s.N, rc, s.OW), self.acc_elt), bias_type=self.types["%bias"], cb_type=cb_t,
                co_type=co_t, coc_type=coc_t, **acc).rstrip("\n"))
            self._insert_nhwc(i, b0, nbc, r0, rc)
            return
        mm = f"%cmm{i}"
        if self.has_bias:
            cmm_t, in_t = _t((nbc, self.G, pixels)), cmm_t
            self.lines.append(render("bias_nchw", i=i, b0=b0, nbc=nbc, g=self.G, bias_type=self.types["%bias"],
                                     cb_type=cb_t, cmm_type=in_t, cmb_type=cmm_t, **acc).rstrip("\n"))
            mm = f"%cmb{i}"
        qc = (r1 - r0) * g.row_width
        cmc_t = _t((nbc, self.G, s.N, qc))
        self.lines += [
            f"  %cmc{i} = tensor.expand_shape {mm} [[0], [1], [2, 3]] output_shape [{nbc}, {self.G}, {s.N}, {qc}] "
            f": {cmm_t} into {cmc_t}",
            f"  %full{i + 1} = tensor.insert_slice %cmc{i} into %full{i}[{b0}, 0, 0, {r0 * g.row_width}] "
            f"[{nbc}, {self.G}, {s.N}, {qc}] [1, 1, 1, 1] : {cmc_t} into {self._full_type()}"]

    def _full_type(self) -> str:
        s = self.spec
        if self.nhwc_epilogue:
            return _t((s.N, s.OH, s.OW, self.nb * self.G))
        return _t((self.nb, self.G, s.N, s.OH * self.geo.row_width))

    def _out_type(self) -> str:
        s = self.spec
        return _t((s.N, s.OH, s.OW, s.K)) if self.layout == "nhwc" else s.out_type

    def _finish_nhwc(self, full: str) -> str:
        s = self.spec
        if self.nb * self.G == s.K:
            return full
        self.lines.append(f"  %y = tensor.extract_slice {full}[0, 0, 0, 0] [{s.N}, {s.OH}, {s.OW}, {s.K}] "
                          f"[1, 1, 1, 1] : {self._full_type()} to {self._out_type()}")
        return "%y"

    def _finish_nchw(self, full: str) -> str:
        """[blocks, G, N, OH*Qw] -> [N, K, OH, OW] in the original filter order."""
        s, qw = self.spec, self.geo.row_width
        nb, g = self.nb, self.G
        acc_t = _t((nb, g, s.N, s.OH, qw))
        m4_t = _t((nb * g, s.N, s.OH, qw))
        L = self.lines
        L += [f"  %m5 = tensor.expand_shape {full} [[0], [1], [2], [3, 4]] output_shape [{nb}, {g}, {s.N}, {s.OH}, {qw}] "
              f": {self._full_type()} into {acc_t}",
              f"  %m4 = tensor.collapse_shape %m5 [[0, 1], [2], [3], [4]] : {acc_t} into {m4_t}"]
        out_t = s.out_type
        if not self.identity_order:
            L += [f"  %oe = tensor.empty() : {out_t}",
                  "  %y = linalg.generic {indexing_maps = [affine_map<(n, k, i, j) -> (k)>, "
                  "affine_map<(n, k, i, j) -> (n, k, i, j)>], iterator_types = [\"parallel\", \"parallel\", "
                  f"\"parallel\", \"parallel\"]}} ins(%ord : {self.types['%ord']}) outs(%oe : {out_t}) {{",
                  "  ^bb0(%s32: i32, %o: f32):",
                  "    %n = linalg.index 0 : index", "    %i = linalg.index 2 : index", "    %j = linalg.index 3 : index",
                  "    %sl = arith.index_cast %s32 : i32 to index",
                  f"    %v = tensor.extract %m4[%sl, %n, %i, %j] : {m4_t}", "    linalg.yield %v : f32",
                  f"  }} -> {out_t}"]
            return "%y"
        src_t = _t((s.K, s.N, s.OH, s.OW))
        src = "%m4"
        if s.K != nb * g or qw != s.OW:
            L.append(f"  %ms = tensor.extract_slice %m4[0, 0, 0, 0] [{s.K}, {s.N}, {s.OH}, {s.OW}] [1, 1, 1, 1] "
                     f": {m4_t} to {src_t}")
            src = "%ms"
        if s.N == 1:
            t5 = _t((1, s.K, 1, s.OH, s.OW))
            L += [f"  %y5 = tensor.expand_shape {src} [[0, 1], [2], [3], [4]] output_shape [1, {s.K}, 1, {s.OH}, {s.OW}] "
                  f": {src_t} into {t5}",
                  f"  %y = tensor.collapse_shape %y5 [[0], [1], [2, 3], [4]] : {t5} into {out_t}"]
        else:
            L += [f"  %oe = tensor.empty() : {out_t}",
                  f"  %y = linalg.transpose ins({src} : {src_t}) outs(%oe : {out_t}) permutation = [1, 0, 2, 3]"]
        return "%y"

    # -- the function ----------------------------------------------------------------------
    def emit(self) -> LoweredConv:
        s, g = self.spec, self.geo
        in_t = _t((s.N, s.H, s.W, s.C)) if self.layout == "nhwc" else s.in_type
        sig = ", ".join([f"%x: {in_t}"] + [f"{n}: {self.types[n]}" for n, _ in self.args])
        self.lines.append(f"func.func private @{self.name}({sig}) -> {self._out_type()} {{")
        xp, xp_t = self._prologue()
        if g.flat and not self.pixel_major:
            self.lines.append(f"  %xf = tensor.collapse_shape {xp} [[0], [1], [2, 3]] : {xp_t} into {self._xf_type()}")
        self.lines.append(f"  %full0 = tensor.empty() : {self._full_type()}")
        for i, (b0, b1, r0, r1) in enumerate(self.chunks):
            self._chunk(i, b0, b1, r0, r1, xp, xp_t)
        full = f"%full{len(self.chunks)}"
        if self.nhwc_epilogue:
            result = self._finish_nhwc(full)
        else:
            result = self._finish_nchw(full)
            if self.layout == "nhwc":
                out_t = self._out_type()
                self.lines += [f"  %ye = tensor.empty() : {out_t}",
                               f"  %yt = linalg.transpose ins({result} : {s.out_type}) outs(%ye : {out_t}) "
                               "permutation = [0, 2, 3, 1]"]
                result = "%yt"
        self.lines += [f"  return {result} : {self._out_type()}", "}"]
        return LoweredConv(self.name, s, "\n".join(self.lines) + "\n", [a for _, a in self.args],
                           [self.types[n] for n, _ in self.args], self._stats(),
                           self._formulation(), self.layout)

    def _formulation(self) -> str:
        if self.pixel_major:
            return "pixel gather"
        return self.geo.kind if self.geo.kind != "padded-rows" else "rows"

    def _stats(self) -> dict:
        plan, s, g = self.plan, self.spec, self.geo
        pixels = s.N * s.OH * g.row_width
        chunked_by = "none"
        if len(self.chunks) > 1:
            chunked_by = "blocks" if self.chunks[0][1] < self.nb else "pixels"
        dense_macs = s.dense_macs
        return {"macs": self.nb * self.G * self.R * pixels, "useful_macs": plan.nnz_weights * s.N * s.OH * s.OW,
                "dense_macs": dense_macs, "blocks": self.nb, "G": self.G, "rows_per_block": self.R,
                "gathered_rows": self.nb * self.R, "gathered_elems": self.nb * self.R * pixels,
                "packed_bytes": int(sum(a.nbytes for _, a in self.args)), "kept_kernels": plan.nnz_kernels,
                "predicted_speedup": cost_model.predicted_speedup(s, self.nb, self.G, self.R, pixels),
                "pixel_chunks": len(self.chunks), "chunked_by": chunked_by, "precision": self.precision}
