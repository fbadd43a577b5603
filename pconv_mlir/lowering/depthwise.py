"""Pattern-sparse depthwise 3x3 conv (each conv group has one input channel).

One elementwise ``linalg.generic`` over (n, k, q): the 4 taps of each channel's pattern are
unrolled in the body (4 multiply-adds instead of 9); tap offsets come from a per-channel table
read with ``tensor.extract`` (loop-invariant along pixels, so rows load as contiguous vectors).
For stride 1 and an output as wide as the input (3x3 pad 1) the rows are masked rows
(pattern_conv.py): the input is padded in H only, q = i*W + j runs over exactly the output
pixels (address = off + q) and the elements that wrapped around a row edge are zeroed by a
mask[dx, q]; other stride-1 convs are computed over the padded width (q = i*Wp + j) and the
extra columns sliced off.  The four tap weights and the bias are operands with map
(k), which also keeps IREE from collapsing the channel dim into the pixel dim.
"""

from __future__ import annotations

import numpy as np

from .mlir_util import array_type, tensor_type
from .rows import exact_rows_ok, row_edge_mask
from .spec import ConvSpec, LoweredConv, PatternConvRefused

T4 = 4


def emit_pattern_depthwise(spec: ConvSpec, weight: np.ndarray, bias, func_name: str,
                           force: bool = False) -> LoweredConv:
    s = spec
    if s.Cg != 1:
        raise PatternConvRefused("not depthwise")
    w = np.asarray(weight, np.float32).reshape(s.K, 9)
    nzc = (w != 0).sum(axis=1)
    if nzc.max(initial=0) > T4:
        raise PatternConvRefused(f"depthwise kernel with {nzc.max()} non-zeros (> 4): not pattern-sparse")
    sh, sw = s.stride
    dh, dw = s.dilation
    flat = (sh, sw) == (1, 1)
    exact = exact_rows_ok(s)
    # Measured vs IREE dense depthwise (1 thread): stride 1 32@112 5.8x, 144@56 3.5x, 192@28 2.8x,
    # 576@14 3.6x; stride 2 144@56 1.8x (strided element loads).  No refusal needed.
    Wp = s.W if exact else s.Wp
    extra = -(-(2 * dw) // Wp) if flat and not exact else 0
    Hp2 = s.Hp + extra + (2 if exact else 0)  # masked rows: one more zero row above and below
    N, C, K, OH, OW = s.N, s.C, s.K, s.OH, s.OW
    Qw = Wp if flat else OW
    taps = np.full((K, T4), 4, np.int64)
    wt = np.zeros((T4, K), np.float32)
    for k in range(K):
        nz = np.nonzero(w[k])[0]
        taps[k, :len(nz)] = nz
        wt[:len(nz), k] = w[k, nz]
    dy, dx = (taps // 3) * dh, (taps % 3) * dw
    chan = np.arange(K) // s.Kg
    consts = [wt[t].copy() for t in range(T4)]
    pt, pl, pb, pr = s.padding
    shift = Wp - pl if exact else 0
    consts.append(np.ascontiguousarray((chan[:, None] * Hp2 * Wp + dy * Wp + dx + shift).astype(np.int32)))
    b = np.zeros(K, np.float32) if bias is None else np.asarray(bias, np.float32).reshape(K)
    consts.append(b)
    names = ["%w0", "%w1", "%w2", "%w3", "%toff", "%bias"]
    if exact:
        consts.append(np.ascontiguousarray((taps % 3).astype(np.int32)))
        consts.append(row_edge_mask(OH, OW, dw, pl))
        names += ["%tkx", "%cmask"]
    types = [array_type(c) for c in consts]
    sig = ", ".join([f"%x: {s.in_type}"] + [f"{n}: {t}" for n, t in zip(names, types)])
    xpt = tensor_type((N, C, Hp2, Wp), "f32")
    lo, hi = (f"{pt + 1}, 0", f"{pb + 1}, 0") if exact else (f"{pt}, {pl}", f"{pb + extra}, {pr}")
    xft = tensor_type((N, C * Hp2 * Wp), "f32")
    L = [f"func.func private @{func_name}({sig}) -> {s.out_type} {{", "  %zero = arith.constant 0.0 : f32",
         f"  %xp = tensor.pad %x low[0, 0, {lo}] high[0, 0, {hi}] {{",
         "  ^bb0(%i0: index, %i1: index, %i2: index, %i3: index):", "    tensor.yield %zero : f32",
         f"  }} : {s.in_type} to {xpt}",
         f"  %xf = tensor.collapse_shape %xp [[0], [1, 2, 3]] : {xpt} into {xft}"]
    if flat:
        ot = tensor_type((N, K, OH * Qw), "f32")
        dims, omap = "(n, k, q)", "(n, k, q)"
        pix = ["%n = linalg.index 0 : index", "%k = linalg.index 1 : index", "%q = linalg.index 2 : index"]
        addr = lambda t: [f"%a{t} = arith.addi %o{t}, %q : index"]
    else:
        ot = tensor_type((N, K, OH, OW), "f32")
        dims, omap = "(n, k, i, j)", "(n, k, i, j)"
        pix = ["%n = linalg.index 0 : index", "%k = linalg.index 1 : index", "%i = linalg.index 2 : index",
               "%j = linalg.index 3 : index", f"%rs = arith.constant {sh * Wp} : index",
               f"%cs = arith.constant {sw} : index", "%ir = arith.muli %i, %rs : index",
               "%jc = arith.muli %j, %cs : index", "%ij = arith.addi %ir, %jc : index"]
        addr = lambda t: [f"%a{t} = arith.addi %o{t}, %ij : index"]
    body = list(pix)
    for t in range(T4):
        body += [f"%t{t} = arith.constant {t} : index",
                 f"%o{t}_32 = tensor.extract %toff[%k, %t{t}] : {types[4]}",
                 f"%o{t} = arith.index_cast %o{t}_32 : i32 to index"] + addr(t) + [
                 f"%v{t} = tensor.extract %xf[%n, %a{t}] : {xft}"]
        if exact:  # zero what wrapped around a row edge
            body[-1] = body[-1].replace(f"%v{t} =", f"%u{t} =")
            body += [f"%k{t}_32 = tensor.extract %tkx[%k, %t{t}] : {types[6]}",
                     f"%k{t} = arith.index_cast %k{t}_32 : i32 to index",
                     f"%mk{t} = tensor.extract %cmask[%k{t}, %q] : {types[7]}",
                     f"%z{t} = arith.constant 0 : i32", f"%ok{t} = arith.cmpi ne, %mk{t}, %z{t} : i32",
                     f"%v{t} = arith.select %ok{t}, %u{t}, %zero : f32"]
    body += ["%m0 = arith.mulf %wv0, %v0 : f32", "%s0 = arith.addf %bv, %m0 : f32",
             "%m1 = arith.mulf %wv1, %v1 : f32", "%s1 = arith.addf %s0, %m1 : f32",
             "%m2 = arith.mulf %wv2, %v2 : f32", "%s2 = arith.addf %s1, %m2 : f32",
             "%m3 = arith.mulf %wv3, %v3 : f32", "%s3 = arith.addf %s2, %m3 : f32", "linalg.yield %s3 : f32"]
    kmap = f"affine_map<{dims} -> (k)>"
    par = ", ".join(['"parallel"'] * (3 if flat else 4))
    L.append(f"  %e = tensor.empty() : {ot}")
    L.append(f"  %r = linalg.generic {{indexing_maps = [{', '.join([kmap] * 5)}, affine_map<{dims} -> {omap}>], "
             f"iterator_types = [{par}]}} ins(%w0, %w1, %w2, %w3, %bias : {', '.join(types[:4])}, {types[5]}) "
             f"outs(%e : {ot}) {{")
    L.append("  ^bb0(%wv0: f32, %wv1: f32, %wv2: f32, %wv3: f32, %bv: f32, %o: f32):")
    L += ["    " + ln for ln in body]
    L.append(f"  }} -> {ot}")
    if exact:
        L.append(f"  %y = tensor.expand_shape %r [[0], [1], [2, 3]] output_shape [{N}, {K}, {OH}, {OW}] : {ot} into {s.out_type}")
        L.append(f"  return %y : {s.out_type}")
    elif flat:
        t4 = tensor_type((N, K, OH, Qw), "f32")
        L.append(f"  %r4 = tensor.expand_shape %r [[0], [1], [2, 3]] output_shape [{N}, {K}, {OH}, {Qw}] : {ot} into {t4}")
        L.append(f"  %y = tensor.extract_slice %r4[0, 0, 0, 0] [{N}, {K}, {OH}, {OW}] [1, 1, 1, 1] : {t4} to {s.out_type}")
        L.append(f"  return %y : {s.out_type}")
    else:
        L.append(f"  return %r : {s.out_type}")
    L.append("}")
    P = N * OH * OW
    stats = {"macs": K * T4 * N * OH * Qw, "useful_macs": int((w != 0).sum()) * P, "dense_macs": s.dense_macs,
             "gathered_rows": 0, "packed_bytes": int(sum(c.nbytes for c in consts)), "G": 1}
    return LoweredConv(func_name, s, "\n".join(L) + "\n", consts, types, stats,
                       "depthwise, masked rows" if exact else "depthwise")
