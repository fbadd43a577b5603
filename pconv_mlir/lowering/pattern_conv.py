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

__all__ = ["PatternPlan", "plan_pattern_conv", "emit_pattern_conv", "predict_speedup"]


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


# Calibrated on this machine class (x86 Zen 3, llvm-cpu, 1 thread): see results/layer_bench.md.
# Time of the dense im2col conv ~ dense_macs / DENSE_RATE; pattern conv ~ macs / GEMM_RATE(Gmax)
# + gathered elements / GATHER_RATE.  Only used to refuse clearly unprofitable layers.
def predict_speedup(plan: PatternPlan) -> float:
    s = plan.spec
    P = s.N * s.OH * s.OW
    dense = s.dense_macs / 70e9 * 2 + 2e-6
    gemm_rate = {1: 6e9, 2: 10e9, 4: 18e9, 8: 30e9}.get(plan.Gmax, 45e9) * 2
    sparse = plan.macs() * 2 / gemm_rate + plan.nb * plan.Rmax * P * 4 / 8e9 + 4e-6
    return dense / sparse


def _i32(a) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a, dtype=np.int32))


def emit_pattern_conv(spec: ConvSpec, weight: np.ndarray, bias: np.ndarray | None, group_size: int,
                      func_name: str, formulation: str = "auto", force: bool = False,
                      row_multiple: int = 1, min_speedup: float = 1.1) -> LoweredConv:
    """Lower one pattern-sparse 3x3 conv; raise PatternConvRefused to keep it dense.

    ``formulation``: "gather" (general), "rows" (stride-1 shifted flattened rows over the
    padded width), or "auto".  ``force`` skips the profitability check.
    """
    s = spec
    w = np.asarray(weight, dtype=np.float32)
    if s.groups > 1 and s.Cg == 1:
        from .depthwise import emit_pattern_depthwise
        return emit_pattern_depthwise(spec, w, bias, func_name, force=force)
    plan = plan_pattern_conv(s, w, group_size, row_multiple)
    if not force:
        sp = predict_speedup(plan)
        if sp < min_speedup:
            raise PatternConvRefused(
                f"predicted {sp:.2f}x vs dense (G={plan.Gmax}, rows/block={plan.Rmax}, "
                f"MACs {plan.macs()} vs dense {s.dense_macs}); keep dense")
    if formulation == "auto":
        formulation = "rows" if s.stride == (1, 1) and s.dilation[1] * 2 < s.Wp else "gather"
    if formulation == "rows" and s.stride != (1, 1):
        formulation = "gather"
    return _emit(plan, w, bias, func_name, formulation)


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


def _emit(plan: PatternPlan, w, bias, func_name: str, formulation: str) -> LoweredConv:
    s = plan.spec
    nb, G, R = plan.nb, plan.Gmax, plan.Rmax
    N, C, OH, OW = s.N, s.C, s.OH, s.OW
    dh, dw = s.dilation
    sh, sw = s.stride
    pt, pl, pb, pr = s.padding
    wp, tc, tt = _pack(plan, w)
    dy, dx = (tt // 3) * dh, (tt % 3) * dw
    flat = formulation in ("rows", "direct") and (sh, sw) == (1, 1)
    direct = formulation == "direct"
    Hp, Wp = s.Hp, s.Wp
    extra = -(-(2 * dw) // Wp) if flat else 0  # zero rows so every shifted slice is in bounds
    Hp2 = Hp + extra
    Qw = Wp if flat else OW
    P = N * OH * Qw
    # Bias per (block, slot), folded into the accumulator's initial value.
    consts = [wp, _i32(tc)]
    an = ["%wp", "%tc"]
    if flat:
        consts.append(_i32(dy * Wp + dx)); an.append("%toff")
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
    if pt or pl or pb or pr or extra:
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
    # Accumulator init [nb, G, N, OH, Qw]: bias or zero.
    acc_t = tensor_type((nb, G, N, OH, Qw), "f32")
    L.append(f"  %ae = tensor.empty() : {acc_t}")
    if bias is not None:
        _generic(L, ["affine_map<(b, g, n, i, j) -> (b, g)>", "affine_map<(b, g, n, i, j) -> (b, g, n, i, j)>"],
                 [_PAR] * 5, ["%bias"], [T["%bias"]], "%ae", acc_t, ["%bv: f32", "%o: f32"],
                 ["linalg.yield %bv : f32"], res="%acc")
    else:
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
        rep = {"%c32": "%tc_v", "%o32": "%toff_v", "%y32": "%tdy_v", "%x32": "%tdx_v"}
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
              f"  %mm = linalg.batch_matmul ins(%wp, %gc : {T['%wp']}, {rt}) outs(%accc : {mt}) -> {mt}",
              f"  %mm5 = tensor.expand_shape %mm [[0], [1], [2, 3, 4]] output_shape [{nb}, {G}, {N}, {OH}, {Qw}] "
              f": {mt} into {acc_t}"]
    # Epilogue: [nb, G, N, OH, Qw] -> [N, K, OH, OW] in the original filter order.
    m4t = tensor_type((nb * G, N, OH, Qw), "f32")
    L.append(f"  %m4 = tensor.collapse_shape %mm5 [[0, 1], [2], [3], [4]] : {acc_t} into {m4t}")
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
             "predicted_speedup": predict_speedup(plan)}
    return LoweredConv(func_name, s, "\n".join(L) + "\n", consts, arg_types, stats, formulation)
