"""Dense reference lowering: tensor.pad + linalg.conv_2d_nchw_fchw (+ bias)."""

from __future__ import annotations

import numpy as np

from .mlir_util import tensor_type
from .spec import ConvSpec, LoweredConv

SMALL_OUTPUT_PIXELS = 16  # N*OH*OW at or below which the bias is added after the conv

__all__ = ["emit_dense_conv"]


def emit_dense_conv(spec: ConvSpec, weight: np.ndarray, bias: np.ndarray | None,
                    func_name: str, layout: str = "nchw") -> LoweredConv:
    """Dense conv, any stride/padding/dilation/groups, as IREE sees it from torch-mlir.
    ``layout="nhwc"``: channels-last input and result (IREE's NHWC conv code is 2-40x faster
    on CPU); grouped convs other than depthwise keep an NCHW body between two transposes."""
    s = spec
    w = np.ascontiguousarray(weight, dtype=np.float32)
    if w.shape != (s.K, s.Cg, s.KH, s.KW):
        raise ValueError(f"weight shape {w.shape} != {(s.K, s.Cg, s.KH, s.KW)}")
    if layout == "nhwc":
        depthwise = s.Cg == 1 and s.K == s.C
        if s.groups == 1 or depthwise:
            return _emit_dense_nhwc(s, w, bias, func_name, depthwise)
        return _wrap_nchw_in_transposes(emit_dense_conv(spec, w, bias, func_name + "_nchw"), func_name)
    out_t = s.out_type
    consts = [w]
    if bias is not None and not np.any(bias):
        bias = None  # a zero bias (convs followed by BN) is a zero fill, as torch-mlir emits it
    args = [tensor_type(w.shape, "f32")]
    if bias is not None:
        consts.append(np.ascontiguousarray(bias, dtype=np.float32).reshape(s.K))
        args.append(tensor_type((s.K,), "f32"))
    L = []
    sig = ", ".join([f"%x: {s.in_type}", f"%w: {args[0]}"] + ([f"%bias: {args[1]}"] if bias is not None else []))
    L.append(f"func.func private @{func_name}({sig}) -> {out_t} {{")
    L.append("  %zero = arith.constant 0.0 : f32")
    window, xp, (Hr, Wr) = _read_window(s, nhwc=False)
    L += window
    L.append(f"  %e = tensor.empty() : {out_t}")
    # The bias is the conv's initial value (as torch-mlir emits it; IREE fuses it into the
    # GEMM) except for tiny outputs: there IREE 3.13 const-folds the bias broadcast into a
    # global and then fails or miscompiles (pattern_conv.py), so the bias is added afterwards.
    # (Adding it afterwards everywhere cost VGG-16 12 extra dispatches, unfused on llvm-cpu.)
    bias_init = bias is not None and s.N * s.OH * s.OW > SMALL_OUTPUT_PIXELS
    if bias_init:
        L.append("  %acc = linalg.generic {indexing_maps = [affine_map<(n, k, i, j) -> (k)>, "
                 "affine_map<(n, k, i, j) -> (n, k, i, j)>], iterator_types = "
                 "[\"parallel\", \"parallel\", \"parallel\", \"parallel\"]} "
                 f"ins(%bias : {args[1]}) outs(%e : {out_t}) {{")
        L.append("  ^bb0(%bv: f32, %o: f32):")
        L.append("    linalg.yield %bv : f32")
        L.append(f"  }} -> {out_t}")
    else:
        L.append(f"  %acc = linalg.fill ins(%zero : f32) outs(%e : {out_t}) -> {out_t}")
    attrs = (f"{{dilations = dense<[{s.dilation[0]}, {s.dilation[1]}]> : tensor<2xi64>, "
             f"strides = dense<[{s.stride[0]}, {s.stride[1]}]> : tensor<2xi64>}}")
    if s.groups == 1:
        L.append(f"  %y = linalg.conv_2d_nchw_fchw {attrs} ins({xp}, %w : tensor<{s.N}x{s.C}x{Hr}x{Wr}xf32>, "
                 f"{args[0]}) outs(%acc : {out_t}) -> {out_t}")
    else:
        g = s.groups
        L.append(f"  %xg = tensor.expand_shape {xp} [[0], [1, 2], [3], [4]] output_shape [{s.N}, {g}, {s.Cg}, {Hr}, {Wr}] "
                 f": tensor<{s.N}x{s.C}x{Hr}x{Wr}xf32> into tensor<{s.N}x{g}x{s.Cg}x{Hr}x{Wr}xf32>")
        L.append(f"  %wg = tensor.expand_shape %w [[0, 1], [2], [3], [4]] output_shape [{g}, {s.Kg}, {s.Cg}, 3, 3] "
                 f": {args[0]} into tensor<{g}x{s.Kg}x{s.Cg}x3x3xf32>")
        og = f"tensor<{s.N}x{g}x{s.Kg}x{s.OH}x{s.OW}xf32>"
        L.append(f"  %accg = tensor.expand_shape %acc [[0], [1, 2], [3], [4]] output_shape [{s.N}, {g}, {s.Kg}, {s.OH}, {s.OW}] "
                 f": {out_t} into {og}")
        L.append(f"  %yg = linalg.conv_2d_ngchw_gfchw {attrs} ins(%xg, %wg : tensor<{s.N}x{g}x{s.Cg}x{Hr}x{Wr}xf32>, "
                 f"tensor<{g}x{s.Kg}x{s.Cg}x3x3xf32>) outs(%accg : {og}) -> {og}")
        L.append(f"  %y = tensor.collapse_shape %yg [[0], [1, 2], [3], [4]] : {og} into {out_t}")
    if bias is not None and not bias_init:
        L.append(f"  %e2 = tensor.empty() : {out_t}")
        L.append("  %yb = linalg.generic {indexing_maps = [affine_map<(n, k, i, j) -> (n, k, i, j)>, "
                 "affine_map<(n, k, i, j) -> (k)>, affine_map<(n, k, i, j) -> (n, k, i, j)>], iterator_types = "
                 "[\"parallel\", \"parallel\", \"parallel\", \"parallel\"]} "
                 f"ins(%y, %bias : {out_t}, {args[1]}) outs(%e2 : {out_t}) {{")
        L.append("  ^bb0(%a: f32, %bv: f32, %o: f32):")
        L.append("    %ab = arith.addf %a, %bv : f32")
        L.append("    linalg.yield %ab : f32")
        L.append(f"  }} -> {out_t}")
        L.append(f"  return %yb : {out_t}")
    else:
        L.append(f"  return %y : {out_t}")
    L.append("}")
    return LoweredConv(func_name, spec, "\n".join(L) + "\n", consts, args,
                       {"macs": s.dense_macs, "dense_macs": s.dense_macs,
                        "packed_bytes": int(sum(c.nbytes for c in consts))}, "dense")


def _emit_dense_nhwc(s: ConvSpec, w: np.ndarray, bias: np.ndarray | None, func_name: str,
                     depthwise: bool) -> LoweredConv:
    """pad + linalg.conv_2d_nhwc_hwcf / depthwise_conv_2d_nhwc_hwc, the bias as the init."""
    in_t = tensor_type((s.N, s.H, s.W, s.C), "f32")
    out_t = tensor_type((s.N, s.OH, s.OW, s.K), "f32")
    wt = np.ascontiguousarray(w.reshape(s.K, s.KH, s.KW).transpose(1, 2, 0) if depthwise else w.transpose(2, 3, 1, 0))
    bias = np.zeros(s.K, np.float32) if bias is None else np.ascontiguousarray(bias, np.float32).reshape(s.K)
    w_t, b_t = tensor_type(wt.shape, "f32"), tensor_type((s.K,), "f32")
    attrs = (f"{{dilations = dense<[{s.dilation[0]}, {s.dilation[1]}]> : tensor<2xi64>, "
             f"strides = dense<[{s.stride[0]}, {s.stride[1]}]> : tensor<2xi64>}}")
    L = [f"func.func private @{func_name}(%x: {in_t}, %w: {w_t}, %bias: {b_t}) -> {out_t} {{",
         "  %zero = arith.constant 0.0 : f32"]
    window, xp, (Hr, Wr) = _read_window(s, nhwc=True)
    xp_t = tensor_type((s.N, Hr, Wr, s.C), "f32")
    L += window
    # Zero init, bias added afterwards: see the NCHW form for why tiny outputs need that, and
    # IREE fuses the add into the conv's dispatch either way.
    L += [f"  %e = tensor.empty() : {out_t}",
          f"  %acc = linalg.fill ins(%zero : f32) outs(%e : {out_t}) -> {out_t}"]
    if depthwise:  # a generic: IREE's im2col rewrite makes the named op 50x slower (convert_to_nhwc)
        d6 = "affine_map<(n, i, j, c, ky, kx) -> "
        (sh, sw), (dh, dw) = s.stride, s.dilation
        L += [f"  %y = linalg.generic {{indexing_maps = [{d6}(n, i * {sh} + ky * {dh}, j * {sw} + kx * {dw}, c)>, "
              f"{d6}(ky, kx, c)>, {d6}(n, i, j, c)>], iterator_types = [\"parallel\", \"parallel\", "
              "\"parallel\", \"parallel\", \"reduction\", \"reduction\"]} "
              f"ins({xp}, %w : {xp_t}, {w_t}) outs(%acc : {out_t}) {{",
              "  ^bb0(%xv: f32, %wv: f32, %av: f32):",
              "    %m = arith.mulf %xv, %wv : f32",
              "    %s = arith.addf %av, %m : f32",
              "    linalg.yield %s : f32",
              f"  }} -> {out_t}"]
    else:
        L.append(f"  %y = linalg.conv_2d_nhwc_hwcf {attrs} ins({xp}, %w : {xp_t}, {w_t}) outs(%acc : {out_t}) -> {out_t}")
    L += [
          "  %yb = linalg.generic {indexing_maps = [affine_map<(n, i, j, k) -> (n, i, j, k)>, "
          "affine_map<(n, i, j, k) -> (k)>, affine_map<(n, i, j, k) -> (n, i, j, k)>], iterator_types = "
          "[\"parallel\", \"parallel\", \"parallel\", \"parallel\"]} "
          f"ins(%y, %bias : {out_t}, {b_t}) outs(%e : {out_t}) {{",
          "  ^bb0(%a: f32, %bv: f32, %o: f32):",
          "    %ab = arith.addf %a, %bv : f32",
          "    linalg.yield %ab : f32",
          f"  }} -> {out_t}",
          f"  return %yb : {out_t}", "}"]
    return LoweredConv(func_name, s, "\n".join(L) + "\n", [wt, bias], [w_t, b_t],
                       {"macs": s.dense_macs, "dense_macs": s.dense_macs,
                        "packed_bytes": int(wt.nbytes + bias.nbytes)}, "dense", "nhwc")


def _read_window(s: ConvSpec, nhwc: bool) -> tuple[list[str], str, tuple[int, int]]:
    """(lines, value, (rows, cols)): %x zero-padded to exactly the rows and columns the conv
    reads. Extra unread ones (stride 2 with a 1x1 output) make IREE 3.13's unit-dim folding
    build an invalid linalg.generic, so the high pad is trimmed and any unread input sliced off."""
    t, l, b, r = s.padding
    (sh, sw), (dh, dw) = s.stride, s.dilation
    rows, cols = (s.OH - 1) * sh + (s.KH - 1) * dh + 1, (s.OW - 1) * sw + (s.KW - 1) * dw + 1
    b, r = max(0, rows - t - s.H), max(0, cols - l - s.W)

    def shape(h: int, w: int) -> tuple[int, ...]:
        return (s.N, h, w, s.C) if nhwc else (s.N, s.C, h, w)

    def hw(a: int, c: int) -> str:
        return f"0, {a}, {c}, 0" if nhwc else f"0, 0, {a}, {c}"

    lines, value, src = [], "%x", tensor_type(shape(s.H, s.W), "f32")
    if t or l or b or r:
        padded = tensor_type(shape(t + s.H + b, l + s.W + r), "f32")
        lines += [f"  %xp = tensor.pad %x low[{hw(t, l)}] high[{hw(b, r)}] {{",
                  "  ^bb0(%i0: index, %i1: index, %i2: index, %i3: index):",
                  "    tensor.yield %zero : f32",
                  f"  }} : {src} to {padded}"]
        value, src = "%xp", padded
    window = tensor_type(shape(rows, cols), "f32")
    if src != window:
        sizes = ", ".join(map(str, shape(rows, cols)))
        lines.append(f"  %xs = tensor.extract_slice {value}[0, 0, 0, 0] [{sizes}] [1, 1, 1, 1] : {src} to {window}")
        value = "%xs"
    return lines, value, (rows, cols)


def _wrap_nchw_in_transposes(inner: LoweredConv, func_name: str) -> LoweredConv:
    """An NHWC-interface function around an NCHW lowering (grouped convs)."""
    s = inner.spec
    in_t = tensor_type((s.N, s.H, s.W, s.C), "f32")
    out_t = tensor_type((s.N, s.OH, s.OW, s.K), "f32")
    sig = ", ".join([f"%x: {in_t}"] + [f"%a{i}: {t}" for i, t in enumerate(inner.arg_types)])
    args = "".join(f", %a{i}" for i in range(len(inner.arg_types)))
    L = [inner.mlir.rstrip(), f"func.func private @{func_name}({sig}) -> {out_t} {{",
         f"  %xe = tensor.empty() : {s.in_type}",
         f"  %xn = linalg.transpose ins(%x : {in_t}) outs(%xe : {s.in_type}) permutation = [0, 3, 1, 2]",
         f"  %y = func.call @{inner.func_name}(%xn{args}) : ({', '.join([s.in_type] + inner.arg_types)}) -> {s.out_type}",
         f"  %ye = tensor.empty() : {out_t}",
         f"  %yt = linalg.transpose ins(%y : {s.out_type}) outs(%ye : {out_t}) permutation = [0, 2, 3, 1]",
         f"  return %yt : {out_t}", "}"]
    return LoweredConv(func_name, s, "\n".join(L) + "\n", inner.constants, inner.arg_types, inner.stats,
                       inner.formulation, "nhwc")
