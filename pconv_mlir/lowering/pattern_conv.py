"""Pattern-sparse 3x3 convolution -> linalg/tensor/arith MLIR that IREE compiles well.

Formulation ("group-shared rows", PatDNN's filter-level load sharing expressed for IREE):

* Filters are cut into blocks of ``group_size`` consecutive output filters (never straddling
  a conv group).  A block's *rows* are the union over its filters of the kept
  (input channel, tap) pairs; with the pruner's G structure (the block shares kept channels and
  each channel's pattern) that is 4 x (kept channels) rows.
* One gather ``linalg.generic`` builds, for every block, its rows contiguous along output
  pixels (``tensor.extract`` from the padded input; index tables are constant operands).
* One ``linalg.batch_matmul`` (blocks = batch) multiplies the packed weights
  [blocks, G, R] by the rows [blocks, R, pixels]; an epilogue generic adds the bias and puts
  the result in NCHW order (IREE fuses it into the matmul dispatch).

The union-of-rows construction is exact for ANY weight (a kernel outside the block's rows is
impossible by construction), so correctness never depends on the structure; only speed does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .mlir_util import array_type, tensor_type
from .spec import ConvSpec, LoweredConv, PatternConvRefused

__all__ = ["PatternPlan", "plan_pattern_conv", "plan_packed", "emit_pattern_conv", "emit_packed_conv",
           "predict_speedup"]


@dataclass
class PatternPlan:
    spec: ConvSpec
    group_size: int
    blocks: list[np.ndarray]          # filter ids per block
    rows: list[list[tuple[int, int]]]  # per block: (global channel, tap)
    Gmax: int
    Rmax: int
    nnz_kernels: int
    nnz_weights: int

    @property
    def nb(self) -> int:
        return len(self.blocks)

    @property
    def row_sum(self) -> int:
        return sum(len(r) for r in self.rows)

    def macs(self) -> int:
        s = self.spec
        return self.nb * self.Gmax * self.Rmax * s.N * s.OH * s.OW


def _round_up(v: int, m: int) -> int:
    return (v + m - 1) // m * m if m > 1 else v


def plan_pattern_conv(spec: ConvSpec, weight: np.ndarray, group_size: int,
                      row_multiple: int = 1) -> PatternPlan:
    s = spec
    w = np.asarray(weight)
    if w.shape != (s.K, s.Cg, 3, 3) or (s.KH, s.KW) != (3, 3):
        raise PatternConvRefused(f"only 3x3 kernels: weight {w.shape}, spec K={s.K} Cg={s.Cg}")
    G = max(1, int(group_size))
    nz = (w.reshape(s.K, s.Cg, 9) != 0)
    blocks, rows = [], []
    for gi in range(s.groups):
        f0 = gi * s.Kg
        for b0 in range(0, s.Kg, G):
            fl = np.arange(f0 + b0, f0 + min(b0 + G, s.Kg))
            used = nz[fl].any(axis=0)  # (Cg, 9)
            cs, ts = np.nonzero(used)
            blocks.append(fl)
            rows.append([(int(c) + gi * s.Cg, int(t)) for c, t in zip(cs, ts)])
    Gmax = max(len(b) for b in blocks)
    Rmax = _round_up(max(1, max(len(r) for r in rows)), row_multiple)
    return PatternPlan(s, G, blocks, rows, Gmax, Rmax, int(nz.any(axis=2).sum()), int(nz.sum()))


# Cost model calibrated on this machine class (x86 Zen 3 AVX2, llvm-cpu, IREE 3.13, 1 thread;
# see results/layer_bench.md).  It only has to rank "pattern" vs "dense" with a margin: the
# emitter refuses (caller keeps the layer dense) unless the predicted speedup >= min_speedup.
DENSE_MAC_RATE = 11.5e9      # dense conv (best of default / im2col), MAC/s
BMM_MAC_RATE = {1: 2e9, 2: 4e9, 4: 8e9, 8: 15e9, 16: 18e9}  # batch_matmul by block size; >=32: 20e9
GATHER_S_PER_ELEM = 0.25e-9  # contiguous row gather, s/element
DIRECT_MAC_RATE = 2.0e9      # direct (SpMM-style) generic at 34-wide rows; scales ~ sqrt(width/34)
DISPATCH_S = 20e-6


def _bmm_rate(G: int) -> float:
    for g in sorted(BMM_MAC_RATE, reverse=True):
        if G >= g:
            return BMM_MAC_RATE[g] if G < 32 else 20e9
    return BMM_MAC_RATE[1]


def predict_times(plan: PatternPlan) -> dict:
    """Predicted seconds for dense, the batch-matmul formulation and the direct formulation."""
    s = plan.spec
    flat_w = s.OW if s.stride != (1, 1) or exact_rows_ok(s) else s.Wp
    P = s.N * s.OH * flat_w
    bmm_macs = plan.nb * plan.Gmax * plan.Rmax * P
    t_dense = s.dense_macs / DENSE_MAC_RATE + DISPATCH_S
    t_bmm = bmm_macs / _bmm_rate(plan.Gmax) + plan.nb * plan.Rmax * P * GATHER_S_PER_ELEM + 2 * DISPATCH_S
    t_direct = bmm_macs / (DIRECT_MAC_RATE * min(1.5, (flat_w / 34) ** 0.5)) + 2 * DISPATCH_S
    return {"dense": t_dense, "bmm": t_bmm, "direct": t_direct}


def predict_speedup(plan: PatternPlan) -> float:
    t = predict_times(plan)
    return t["dense"] / t["bmm"]


def exact_rows_ok(s: ConvSpec) -> bool:
    """Stride-1 convs whose output is as wide as the input (``pl + pr == 2 * dilation``, e.g.
    3x3 pad 1) take the masked rows layout: rows over exactly the output pixels."""
    pl, pr = s.padding[1], s.padding[3]
    return s.stride == (1, 1) and pl + pr == 2 * s.dilation[1] and s.W >= max(pl, pr)


def row_edge_mask(OH: int, OW: int, dw: int, pl: int) -> np.ndarray:
    """mask[kx, q] (i32 0/1) of masked rows: whether output pixel q = i*OW + j reads a real
    input column through tap column kx (0 where the row slice wrapped around a row edge)."""
    cols = np.arange(OH * OW) % OW
    return _i32([(cols + kx * dw - pl >= 0) & (cols + kx * dw - pl < OW) for kx in range(3)])


MIN_CG = 8
# Measured: G=1 VGG-16 64->128@16 merged into 64-filter groups of 568 rows (1.01x fewer MACs)
# ran 1.10 ms vs 0.80 ms dense; the bandwidth model above does not see that.
MIN_MAC_REDUCTION = 2.0
CHUNK_ABOVE_BYTES = 1 << 20
CHUNK_BYTES = 131072
MAX_CHUNKS = 32
# Pixel chunks narrower than this make skinny GEMMs: cut the filter blocks instead, into chunks
# of about BLOCK_CHUNK_FACTOR * chunk_bytes of rows (VGG-16 512@4 G=8 had 4 one-row pixel chunks
# of 4 pixels each).
MIN_CHUNK_PIXELS = 64
BLOCK_CHUNK_FACTOR = 4


def _i32(a) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a, dtype=np.int32))


def emit_pattern_conv(spec: ConvSpec, weight: np.ndarray, bias: np.ndarray | None, group_size: int,
                      func_name: str, formulation: str = "auto", force: bool = False,
                      row_multiple: int = 8, min_speedup: float = 1.3,
                      chunk_bytes: int | None = CHUNK_BYTES, max_chunks: int = MAX_CHUNKS,
                      chunk_above_bytes: int | None = None) -> LoweredConv:
    """Lower one pattern-sparse 3x3 conv; raise PatternConvRefused to keep it dense.

    ``formulation``: "auto" (default: "rows" for stride 1, else "gather"), "rows" (stride-1
    shifted flattened rows: each (channel, tap) row is one contiguous slice of the flattened
    input; over exactly the output pixels with masked row edges when the output is as wide as
    the input, the result's ``formulation`` is then "masked-rows"; else over the padded width),
    "gather" (exact output pixels, any stride/dilation),
    "direct" (no materialised rows, one reduction generic; measured slow, explicit only).
    ``force`` skips the profitability check (unsupported forms still raise).
    ``row_multiple`` pads rows per block (the matmul's reduction) to a multiple of it.
    ``chunk_bytes``: rows mode splits the output rows into chunks whose gathered rows take about
    this many bytes (at most ``max_chunks``), one gather + batch_matmul per chunk, so the rows
    stay in cache (64@56 G=8: 3.7-8.7 ms -> 1.45 ms).  Depthwise layers (one input channel per
    group) go to :func:`pconv_mlir.lowering.depthwise.emit_pattern_depthwise`.
    """
    s = spec
    w = np.asarray(weight, dtype=np.float32)
    if s.groups > 1 and s.Cg == 1:
        from .depthwise import emit_pattern_depthwise
        return emit_pattern_depthwise(spec, w, bias, func_name, force=force)
    plan = plan_pattern_conv(s, w, group_size, row_multiple)
    return _emit_if_profitable(plan, _pack(plan, w), bias, func_name, formulation, force, min_speedup,
                               chunk_bytes, max_chunks, chunk_above_bytes)


def plan_packed(spec: ConvSpec, weights: np.ndarray, row_channels: np.ndarray, row_taps: np.ndarray,
                row_multiple: int = 1) -> tuple[PatternPlan, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Plan and emitter arrays straight from the compact form the passes build
    (``pconv.packed_conv2d``: weights (blocks, G, R), filter ``b*G + i`` in slot ``i`` of block
    ``b``; per-block row tables). Rows whose weights are all zero (the packing's padding) are
    dropped; the layout is otherwise the passes' (their row order, their group size)."""
    s = spec
    if s.groups != 1 or (s.KH, s.KW) != (3, 3):
        raise PatternConvRefused(f"packed form covers 3x3 convs without groups (groups={s.groups})")
    weights = np.asarray(weights, np.float32)
    nb, G, _ = weights.shape
    blocks, rows, live = [], [], []
    for b in range(nb):
        blocks.append(np.arange(b * G, min(s.K, (b + 1) * G)))
        cols = np.nonzero(np.abs(weights[b]).sum(axis=0))[0]
        live.append(cols)
        rows.append([(int(row_channels[b, r]), int(row_taps[b, r])) for r in cols])
    Gmax = max(len(fl) for fl in blocks)
    Rmax = _round_up(max(1, max(len(r) for r in rows)), row_multiple)
    wp = np.zeros((nb, Gmax, Rmax), np.float32)
    tc = np.full((nb, Rmax), -1, np.int64)  # padding row: reads channel 0, yields zeros
    tt = np.full((nb, Rmax), 4, np.int64)
    kernels = set()
    for b, cols in enumerate(live):
        n = len(blocks[b])
        wp[b, :n, :len(cols)] = weights[b, :n][:, cols]
        tc[b, :len(cols)] = row_channels[b, cols]
        tt[b, :len(cols)] = row_taps[b, cols]
        for i, j in zip(*np.nonzero(weights[b, :n][:, cols])):
            kernels.add((b * G + int(i), int(row_channels[b, cols[j]])))
    plan = PatternPlan(s, G, blocks, rows, Gmax, Rmax, len(kernels), int(np.count_nonzero(wp)))
    return plan, (wp, tc, tt)


def emit_packed_conv(spec: ConvSpec, weights: np.ndarray, row_channels: np.ndarray, row_taps: np.ndarray,
                     bias: np.ndarray | None, func_name: str, force: bool = False, row_multiple: int = 8,
                     min_speedup: float = 1.3) -> LoweredConv:
    """Lower a conv given in the passes' compact form (see :func:`plan_packed`); same
    formulations, cost model and refusals as :func:`emit_pattern_conv`."""
    plan, arrays = plan_packed(spec, weights, row_channels, row_taps, row_multiple)
    return _emit_if_profitable(plan, arrays, bias, func_name, "auto", force, min_speedup, CHUNK_BYTES, MAX_CHUNKS,
                               None)


def _emit_if_profitable(plan: PatternPlan, arrays, bias, func_name: str, formulation: str, force: bool,
                        min_speedup: float, chunk_bytes: int | None, max_chunks: int,
                        chunk_above_bytes: int | None) -> LoweredConv:
    s = plan.spec
    t = predict_times(plan)
    if not force and s.Cg < MIN_CG:
        raise PatternConvRefused(
            f"only {s.Cg} input channels per group (< {MIN_CG}): rows of a few channels make "
            "the gather and a K<8 matmul dominate (measured 0.15-0.9x on 3->64@32); keep dense")
    if not force and plan.macs() * MIN_MAC_REDUCTION > s.dense_macs:
        raise PatternConvRefused(
            f"the filter groups' rows cover most of the dense kernel (MACs {plan.macs()} vs dense "
            f"{s.dense_macs}, < {MIN_MAC_REDUCTION}x fewer): gathers with no MAC saving; keep dense")
    if not force:
        sp = t["dense"] / t["bmm"]
        if sp < min_speedup:
            raise PatternConvRefused(
                f"predicted {sp:.2f}x vs dense (G={plan.Gmax}, rows/block={plan.Rmax}, "
                f"MACs {plan.macs()} vs dense {s.dense_macs}); keep dense")
    if formulation == "auto":
        # "direct" (no materialised rows) is never chosen automatically: IREE vectorises its
        # reduction over rows, so every input load becomes an element gather (0.3-1.5x dense).
        formulation = "rows" if s.stride == (1, 1) else "gather"
    if formulation == "rows" and s.stride != (1, 1):
        formulation = "gather"
    return _emit(plan, arrays, bias, func_name, formulation, chunk_bytes, max_chunks,
                 CHUNK_ABOVE_BYTES if chunk_above_bytes is None else chunk_above_bytes)


def _pack(plan: PatternPlan, w: np.ndarray):
    s = plan.spec
    nb, G, R = plan.nb, plan.Gmax, plan.Rmax
    wp = np.zeros((nb, G, R), np.float32)
    tc = np.full((nb, R), -1, np.int64)
    tt = np.full((nb, R), 4, np.int64)
    wf = w.reshape(s.K, s.Cg, 9)
    for b, (fl, rows) in enumerate(zip(plan.blocks, plan.rows)):
        if not rows:
            continue
        cs = np.array([c for c, _ in rows])
        ts = np.array([t for _, t in rows])
        gi = fl[0] // s.Kg
        wp[b, :len(fl), :len(rows)] = wf[fl][:, cs - gi * s.Cg, ts]
        tc[b, :len(rows)] = cs
        tt[b, :len(rows)] = ts
        tc[b, len(rows):] = -1  # padding row: reads channel 0, yields zeros
    return wp, tc, tt


_PAR = '"parallel"'


def _generic(L, maps, iters, ins, in_types, out, out_type, args, body, res="%r"):
    L.append(f"  {res} = linalg.generic {{indexing_maps = [{', '.join(maps)}], iterator_types = "
             f"[{', '.join(iters)}]}} " + (f"ins({', '.join(ins)} : {', '.join(in_types)}) " if ins else "") +
             f"outs({out} : {out_type}) {{")
    L.append(f"  ^bb0({', '.join(args)}):")
    L += ["    " + b for b in body]
    L.append(f"  }} -> {out_type}")


def _add_bias(L, value: str, value_t: str, bias_t: str, res: str, bias_value: str = "%bias") -> None:
    """``res = value + bias`` over [nb, G, pixels...] (bias [nb, G]): an elementwise consumer
    of the GEMM that IREE fuses into its dispatch."""
    rank = value_t.count("x")
    dims = ", ".join(f"d{i}" for i in range(rank))
    full, bg = f"affine_map<({dims}) -> ({dims})>", f"affine_map<({dims}) -> (d0, d1)>"
    L.append(f"  {res}_e = tensor.empty() : {value_t}")
    _generic(L, [full, bg, full], [_PAR] * rank, [value, bias_value], [value_t, bias_t], f"{res}_e", value_t,
             ["%a: f32", "%bv: f32", "%o: f32"], ["%ab = arith.addf %a, %bv : f32", "linalg.yield %ab : f32"], res=res)


def _emit(plan: PatternPlan, arrays, bias, func_name: str, formulation: str, chunk_bytes: int | None = None,
          max_chunks: int = 32, chunk_above_bytes: int = 1 << 20) -> LoweredConv:
    s = plan.spec
    nb, G, R = plan.nb, plan.Gmax, plan.Rmax
    N, C, OH, OW = s.N, s.C, s.OH, s.OW
    dh, dw = s.dilation
    sh, sw = s.stride
    pt, pl, pb, pr = s.padding
    wp, tc, tt = arrays
    dy, dx = (tt // 3) * dh, (tt % 3) * dw
    flat = formulation in ("rows", "direct") and (sh, sw) == (1, 1)
    direct = formulation == "direct"
    # Masked rows: the input is padded in H only (one more zero row above and below, so every
    # shifted slice is in bounds) and flattened, so row (c, dy, dx) over the OUTPUT pixels
    # q = i*W + j is the contiguous slice starting at (dy + 1)*W + dx - pl; the elements that
    # wrap around a row edge (where the width padding would be) are zeroed by a mask[dx, q].
    # Computing over the padded width instead (q = i*Wp + j, then slicing) costs Wp/W more
    # MACs: 1.25x at 8x8, 1.5x at 4x4, 2x at 2x2.
    exact = flat and not direct and exact_rows_ok(s)
    Hp, Wp = s.Hp, (s.W if exact else s.Wp)
    extra = -(-(2 * dw) // Wp) if flat and not exact else 0  # zero rows so every shifted slice is in bounds
    Hp2 = Hp + extra + (2 if exact else 0)
    Qw = Wp if flat else OW
    P = N * OH * Qw
    chunks = 1
    if flat and not direct and chunk_bytes:
        # Only when the gathered rows overflow the caches (> CHUNK_ABOVE_BYTES): below that a
        # matmul over a few pixels per chunk costs more than it saves (512@4 G=32, 0.87 MB:
        # 4 chunks of 6 pixels ran ~2x slower); above it chunking wins big (512@7 G=8, 9 MB:
        # 12.3 -> 3.9 ms; 64@56 G=8, 7.5 MB: 3.7-8.7 -> 1.45 ms).
        total = nb * R * P * 4
        if total > chunk_above_bytes:
            chunks = max(1, min(OH, max_chunks, -(-total // chunk_bytes)))
        chunks = -(-OH // -(-OH // chunks))  # no empty trailing chunk
    # (b0, b1, r0, r1): blocks b0..b1-1 over output rows r0..r1-1, one gather + GEMM each.
    chunk_list = [(0, nb, 0, OH)]
    if chunks > 1 and N * -(-OH // chunks) * Qw >= MIN_CHUNK_PIXELS:
        rc = -(-OH // chunks)
        chunk_list = [(0, nb, r0, min(OH, r0 + rc)) for r0 in range(0, OH, rc)]
    elif chunks > 1:
        bc = -(-nb // max(1, min(nb, max_chunks, -(-(nb * R * P * 4) // (BLOCK_CHUNK_FACTOR * chunk_bytes)))))
        chunk_list = [(b0, min(nb, b0 + bc), 0, OH) for b0 in range(0, nb, bc)]
    chunks = len(chunk_list)
    consts = [wp, _i32(tc)]
    an = ["%wp", "%tc"]
    if flat:
        consts.append(_i32(dy * Wp + dx + (Wp - pl if exact else 0))); an.append("%toff")
        if exact:
            consts.append(_i32(tt % 3)); an.append("%tkx")
            consts.append(row_edge_mask(OH, OW, dw, pl)); an.append("%cmask")
    else:
        consts += [_i32(dy), _i32(dx)]; an += ["%tdy", "%tdx"]
    if bias is not None:
        bp = np.zeros((nb, G), np.float32)
        for b, fl in enumerate(plan.blocks):
            bp[b, :len(fl)] = np.asarray(bias, np.float32).reshape(-1)[fl]
        consts.append(bp); an.append("%bias")
    slots = np.concatenate([b * G + np.arange(len(fl)) for b, fl in enumerate(plan.blocks)])
    order = np.empty(s.K, np.int64)
    order[np.concatenate(plan.blocks)] = slots
    identity = bool(np.array_equal(order, np.arange(s.K)))
    if not identity:
        consts.append(_i32(order)); an.append("%ord")
    arg_types = [array_type(c) for c in consts]
    T = dict(zip(an, arg_types))
    sig = ", ".join([f"%x: {s.in_type}"] + [f"{n}: {t}" for n, t in zip(an, arg_types)])
    out_t = s.out_type
    L = [f"func.func private @{func_name}({sig}) -> {out_t} {{", "  %zero = arith.constant 0.0 : f32"]
    xpt = tensor_type((N, C, Hp2, Wp), "f32")
    if exact:
        L += [f"  %xp = tensor.pad %x low[0, 0, {pt + 1}, 0] high[0, 0, {pb + 1}, 0] {{",
              "  ^bb0(%i0: index, %i1: index, %i2: index, %i3: index):",
              "    tensor.yield %zero : f32",
              f"  }} : {s.in_type} to {xpt}"]
        xp = "%xp"
    elif pt or pl or pb or pr or extra:
        L += [f"  %xp = tensor.pad %x low[0, 0, {pt}, {pl}] high[0, 0, {pb + extra}, {pr}] {{",
              "  ^bb0(%i0: index, %i1: index, %i2: index, %i3: index):",
              "    tensor.yield %zero : f32",
              f"  }} : {s.in_type} to {xpt}"]
        xp = "%xp"
    else:
        xp = "%x"
    tab_t = T["%tc"]
    if flat:
        xft = tensor_type((N, C, Hp2 * Wp), "f32")
        L.append(f"  %xf = tensor.collapse_shape {xp} [[0], [1], [2, 3]] : {xpt} into {xft}")
    # Accumulator [nb, G, N, OH, Qw], zero-initialised; the bias is added after the GEMM (an
    # elementwise consumer IREE fuses into the matmul dispatch). A bias-broadcast init is
    # folded by IREE's const-eval into a constant global when the output is small, and IREE
    # 3.13 then fails ("write affecting operations on global resources ...", llvm-cpu and
    # SPIR-V) or, fused, miscompiles it (ResNet-50 layer4 at 32x32 on lavapipe: rel err 3.1).
    acc_t = tensor_type((nb, G, N, OH, Qw), "f32")
    L.append(f"  %ae = tensor.empty() : {acc_t}")
    L.append(f"  %acc = linalg.fill ins(%zero : f32) outs(%ae : {acc_t}) -> {acc_t}")
    # Index computation of one input element for (b, r) at pixel (n, i, j).
    def tab_reads(names, bdim, rdim):
        out = [f"%tb = linalg.index {bdim} : index", f"%tr = linalg.index {rdim} : index"]
        for nm in names:
            out.append(f"%{nm[1:]}_v = tensor.extract {nm}[%tb, %tr] : {tab_t}")
        return out
    if flat:
        tabs, tab_args = ["%tc", "%toff"], ["%c32: i32", "%o32: i32"]
        load = ["%c = arith.index_cast %c32 : i32 to index", "%o = arith.index_cast %o32 : i32 to index",
                f"%wpc = arith.constant {Wp} : index", "%iw = arith.muli %i, %wpc : index",
                "%q = arith.addi %iw, %j : index", "%p = arith.addi %o, %q : index",
                f"%v = tensor.extract %xf[%n, %c, %p] : {xft}"]
        if exact:  # zero what wrapped around a row edge: mask[dx, q]
            tabs, tab_args = tabs + ["%tkx"], tab_args + ["%k32: i32"]
            load[-1] = load[-1].replace("%v =", "%v0 =")
            load += ["%k = arith.index_cast %k32 : i32 to index",
                     f"%mk = tensor.extract %cmask[%k, %q] : {T['%cmask']}",
                     "%mok = arith.cmpi ne, %mk, %z32 : i32", "%v = arith.select %mok, %v0, %zero : f32"]
    else:
        tabs, tab_args = ["%tc", "%tdy", "%tdx"], ["%c32: i32", "%y32: i32", "%x32: i32"]
        load = ["%c = arith.index_cast %c32 : i32 to index", "%dy = arith.index_cast %y32 : i32 to index",
                "%dx = arith.index_cast %x32 : i32 to index"]
        hi, wi = "%i", "%j"
        if sh != 1:
            load += [f"%shc = arith.constant {sh} : index", "%is = arith.muli %i, %shc : index"]; hi = "%is"
        if sw != 1:
            load += [f"%swc = arith.constant {sw} : index", "%js = arith.muli %j, %swc : index"]; wi = "%js"
        load += [f"%h = arith.addi {hi}, %dy : index", f"%w = arith.addi {wi}, %dx : index",
                 f"%v = tensor.extract {xp}[%n, %c, %h, %w] : {xpt}"]
    def fix(lines):
        # table values come from tensor.extract (already index-typed after cast)
        rep = {"%c32": "%tc_v", "%o32": "%toff_v", "%y32": "%tdy_v", "%x32": "%tdx_v", "%k32": "%tkx_v"}
        out = []
        for ln in lines:
            for a, b2 in rep.items():
                ln = ln.replace(a + " ", b2 + " ")
            out.append(ln)
        return out
    if direct and flat:
        # No materialised rows: out[b,g,n,q] += W[b,g,r] * xflat[n, c(b,r), off(b,r) + q], with the
        # reduction dim placed before the pixel dims so that q is the vectorised dim.
        acc4 = tensor_type((nb, G, N, OH * Qw), "f32")
        L.append(f"  %acc4 = tensor.collapse_shape %acc [[0], [1], [2], [3, 4]] : {acc_t} into {acc4}")
        m6 = "affine_map<(b, g, r, n, q) -> "
        fl = [ln for ln in fix(load) if not any(t in ln for t in ("%wpc =", "%iw =", "%q ="))]
        _generic(L, [m6 + "(b, g, r)>"] + [m6 + "(b, g, n, q)>"],
                 [_PAR, _PAR, '"reduction"', _PAR, _PAR], ["%wp"], [T["%wp"]], "%acc4", acc4,
                 ["%wv: f32", "%a: f32"],
                 ["%n = linalg.index 3 : index", "%q = linalg.index 4 : index"]
                 + tab_reads(tabs, 0, 2)
                 + ["%z32 = arith.constant 0 : i32", "%tcc = arith.maxsi %tc_v, %z32 : i32"]
                 + [ln.replace("%tc_v :", "%tcc :") for ln in fl]
                 + ["%m = arith.mulf %wv, %v : f32", "%s = arith.addf %a, %m : f32", "linalg.yield %s : f32"],
                 res="%mm4")
        L.append(f"  %mm5 = tensor.expand_shape %mm4 [[0], [1], [2], [3, 4]] output_shape [{nb}, {G}, {N}, {OH}, {Qw}] "
                 f": {acc4} into {acc_t}")
    elif flat and chunks > 1:
        # Chunks of output rows (or, where those would be narrow, of filter blocks): each chunk
        # gathers its rows and runs its own batch_matmul, so the gathered rows stay in cache
        # between the two dispatches.
        full_t = tensor_type((nb, G, N, OH * Qw), "f32")
        L.append(f"  %cfull0 = tensor.empty() : {full_t}")
        fl = [ln for ln in fix(load) if not any(t in ln for t in ("%wpc =", "%iw =", "%q ="))]
        ci = 0
        for b0, b1, r0, r1 in chunk_list:
            q0, Qc, nbc = r0 * Qw, (r1 - r0) * Qw, b1 - b0
            gt = tensor_type((nbc, R, N, Qc), "f32")
            m4 = "affine_map<(b, r, n, q) -> "
            wpt, tct = tensor_type((nbc, G, R), "f32"), tensor_type((nbc, R), "i32")
            L += [f"  %cwp{ci} = tensor.extract_slice %wp[{b0}, 0, 0] [{nbc}, {G}, {R}] [1, 1, 1] : {T['%wp']} to {wpt}",
                  f"  %ctc{ci} = tensor.extract_slice %tc[{b0}, 0] [{nbc}, {R}] [1, 1] : {tab_t} to {tct}",
                  f"  %cge{ci} = tensor.empty() : {gt}"]
            block = tab_reads(tabs, 0, 1)
            block[0:1] = ["%tb1 = linalg.index 0 : index", f"%b0 = arith.constant {b0} : index",
                          "%tb = arith.addi %tb1, %b0 : index"]
            _generic(L, [m4 + "(b, r)>", m4 + "(b, r, n, q)>"], [_PAR] * 4, [f"%ctc{ci}"], [tct], f"%cge{ci}", gt,
                     ["%cm: i32", "%out: f32"],
                     ["%n = linalg.index 2 : index", "%q1 = linalg.index 3 : index",
                      f"%q0 = arith.constant {q0} : index", "%q = arith.addi %q1, %q0 : index"]
                     + block
                     + ["%z32 = arith.constant 0 : i32", "%tcc = arith.maxsi %tc_v, %z32 : i32"]
                     + [ln.replace("%tc_v :", "%tcc :") for ln in fl]
                     + ["%ok = arith.cmpi sge, %cm, %z32 : i32", "%vs = arith.select %ok, %v, %zero : f32",
                        "linalg.yield %vs : f32"], res=f"%cg{ci}")
            rt = tensor_type((nbc, R, N * Qc), "f32")
            mt = tensor_type((nbc, G, N * Qc), "f32")
            L.append(f"  %cgc{ci} = tensor.collapse_shape %cg{ci} [[0], [1], [2, 3]] : {gt} into {rt}")
            L.append(f"  %cae{ci} = tensor.empty() : {mt}")
            L.append(f"  %cacc{ci} = linalg.fill ins(%zero : f32) outs(%cae{ci} : {mt}) -> {mt}")
            ct = tensor_type((nbc, G, N, Qc), "f32")
            L.append(f"  %cmm{ci} = linalg.batch_matmul ins(%cwp{ci}, %cgc{ci} : {wpt}, {rt}) outs(%cacc{ci} : {mt}) -> {mt}")
            cmm = f"%cmm{ci}"
            if bias is not None:
                bt = tensor_type((nbc, G), "f32")
                L.append(f"  %cbias{ci} = tensor.extract_slice %bias[{b0}, 0] [{nbc}, {G}] [1, 1] : {T['%bias']} to {bt}")
                _add_bias(L, cmm, mt, bt, f"%cmb{ci}", bias_value=f"%cbias{ci}")
                cmm = f"%cmb{ci}"
            L += [f"  %cmc{ci} = tensor.expand_shape {cmm} [[0], [1], [2, 3]] output_shape [{nbc}, {G}, {N}, {Qc}] "
                  f": {mt} into {ct}",
                  f"  %cfull{ci + 1} = tensor.insert_slice %cmc{ci} into %cfull{ci}[{b0}, 0, 0, {q0}] "
                  f"[{nbc}, {G}, {N}, {Qc}] [1, 1, 1, 1] : {ct} into {full_t}"]
            ci += 1
        L.append(f"  %mm5 = tensor.expand_shape %cfull{ci} [[0], [1], [2], [3, 4]] output_shape "
                 f"[{nb}, {G}, {N}, {OH}, {Qw}] : {full_t} into {acc_t}")
    elif direct:
        # No materialised rows: out[b,g,n,i,j] += W[b,g,r] * x[row(b,r) shifted to (n,i,j)].
        m6 = "affine_map<(b, g, n, i, j, r) -> "
        _generic(L, [m6 + "(b, g, r)>"] + [m6 + "(b, g, n, i, j)>"],
                 [_PAR] * 5 + ['"reduction"'], ["%wp"], [T["%wp"]], "%acc", acc_t,
                 ["%wv: f32", "%a: f32"],
                 ["%n = linalg.index 2 : index", "%i = linalg.index 3 : index", "%j = linalg.index 4 : index"]
                 + tab_reads(tabs, 0, 5)
                 + ["%z32 = arith.constant 0 : i32", "%tcc = arith.maxsi %tc_v, %z32 : i32"]
                 + [ln.replace("%tc_v :", "%tcc :") for ln in fix(load)] + ["%m = arith.mulf %wv, %v : f32", "%s = arith.addf %a, %m : f32", "linalg.yield %s : f32"],
                 res="%mm5")
    else:
        if flat:
            # One pixel dim q = i*Wp + j: the address is off(b, r) + q, a contiguous row slice.
            gt = tensor_type((nb, R, N, OH * Qw), "f32")
            m5 = "affine_map<(b, r, n, q) -> "
            gdims = 4
            pix = ["%n = linalg.index 2 : index", "%q = linalg.index 3 : index"]
            fl = [ln for ln in fix(load) if not any(t in ln for t in ("%wpc =", "%iw =", "%q ="))]
            gcollapse = "[[0], [1], [2, 3]]"
        else:
            gt = tensor_type((nb, R, N, OH, Qw), "f32")
            m5 = "affine_map<(b, r, n, i, j) -> "
            gdims = 5
            pix = ["%n = linalg.index 2 : index", "%i = linalg.index 3 : index", "%j = linalg.index 4 : index"]
            fl = fix(load)
            gcollapse = "[[0], [1], [2, 3, 4]]"
        L.append(f"  %ge = tensor.empty() : {gt}")
        # The row's channel is read twice: through tensor.extract at (b, r) for the address (the
        # vectorizer sees it loop-invariant along pixels -> contiguous vector loads) and as an
        # operand with map (b, r) whose sign marks padding rows (-1 -> zero row).  The operand
        # also keeps IREE from collapsing the row dims into the pixel dims (which turns the
        # contiguous loads into element gathers).
        _generic(L, [m5 + "(b, r)>", m5 + ("(b, r, n, q)>" if flat else "(b, r, n, i, j)>")], [_PAR] * gdims,
                 ["%tc"], [tab_t], "%ge", gt, ["%cm: i32", "%out: f32"],
                 pix + tab_reads(tabs, 0, 1)
                 + ["%z32 = arith.constant 0 : i32", "%tcc = arith.maxsi %tc_v, %z32 : i32"]
                 + [ln.replace("%tc_v :", "%tcc :") for ln in fl]
                 + ["%ok = arith.cmpi sge, %cm, %z32 : i32", "%vs = arith.select %ok, %v, %zero : f32",
                    "linalg.yield %vs : f32"], res="%g")
        rt = tensor_type((nb, R, P), "f32")
        mt = tensor_type((nb, G, P), "f32")
        L += [f"  %gc = tensor.collapse_shape %g {gcollapse} : {gt} into {rt}",
              f"  %accc = tensor.collapse_shape %acc [[0], [1], [2, 3, 4]] : {acc_t} into {mt}",
              f"  %mm = linalg.batch_matmul ins(%wp, %gc : {T['%wp']}, {rt}) outs(%accc : {mt}) -> {mt}"]
        mm3 = "%mm"
        if bias is not None:
            _add_bias(L, mm3, mt, T["%bias"], "%mmb")
            mm3 = "%mmb"
        L.append(f"  %mm5 = tensor.expand_shape {mm3} [[0], [1], [2, 3, 4]] output_shape [{nb}, {G}, {N}, {OH}, {Qw}] "
                 f": {mt} into {acc_t}")
    mm = "%mm5"
    if bias is not None and direct:  # the GEMM formulations added it after their matmuls
        _add_bias(L, "%mm5", acc_t, T["%bias"], "%mm5b")
        mm = "%mm5b"
    # Epilogue: [nb, G, N, OH, Qw] -> [N, K, OH, OW] in the original filter order.
    m4t = tensor_type((nb * G, N, OH, Qw), "f32")
    L.append(f"  %m4 = tensor.collapse_shape {mm} [[0, 1], [2], [3], [4]] : {acc_t} into {m4t}")
    if identity:
        src_t = tensor_type((s.K, N, OH, OW), "f32")
        if s.K != nb * G or Qw != OW:
            L.append(f"  %ms = tensor.extract_slice %m4[0, 0, 0, 0] [{s.K}, {N}, {OH}, {OW}] [1, 1, 1, 1] "
                     f": {m4t} to {src_t}")
            src = "%ms"
        else:
            src = "%m4"
        if N == 1:
            t5 = tensor_type((1, s.K, 1, OH, OW), "f32")
            L.append(f"  %y5 = tensor.expand_shape {src} [[0, 1], [2], [3], [4]] output_shape [1, {s.K}, 1, {OH}, {OW}] "
                     f": {src_t} into {t5}")
            L.append(f"  %y = tensor.collapse_shape %y5 [[0], [1], [2, 3], [4]] : {t5} into {out_t}")
        else:
            L.append(f"  %oe = tensor.empty() : {out_t}")
            L.append(f"  %y = linalg.transpose ins({src} : {src_t}) outs(%oe : {out_t}) permutation = [1, 0, 2, 3]")
    else:
        L.append(f"  %oe = tensor.empty() : {out_t}")
        _generic(L, ["affine_map<(n, k, i, j) -> (k)>", "affine_map<(n, k, i, j) -> (n, k, i, j)>"], [_PAR] * 4,
                 ["%ord"], [T["%ord"]], "%oe", out_t, ["%s32: i32", "%o: f32"],
                 ["%n = linalg.index 0 : index", "%i = linalg.index 2 : index", "%j = linalg.index 3 : index",
                  "%sl = arith.index_cast %s32 : i32 to index",
                  f"%v = tensor.extract %m4[%sl, %n, %i, %j] : {m4t}", "linalg.yield %v : f32"], res="%y")
    L.append(f"  return %y : {out_t}")
    L.append("}")
    stats = {"macs": plan.macs() * Qw // OW, "useful_macs": plan.nnz_weights * N * OH * OW,
             "dense_macs": s.dense_macs, "blocks": nb, "G": G, "rows_per_block": R,
             "gathered_rows": 0 if direct else nb * R, "gathered_elems": 0 if direct else nb * R * P,
             "packed_bytes": int(sum(c.nbytes for c in consts)), "kept_kernels": plan.nnz_kernels,
             "predicted_speedup": predict_speedup(plan), "pixel_chunks": chunks,
             "chunked_by": "none" if chunks == 1 else "blocks" if chunk_list[0][1] < nb else "pixels"}
    return LoweredConv(func_name, s, "\n".join(L) + "\n", consts, arg_types, stats,
                       "masked-rows" if exact else formulation)
