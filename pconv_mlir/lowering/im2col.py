"""A dense convolution as an explicit im2col copy + ``linalg.batch_matmul`` (one batch per conv
group), for the targets where IREE's own conv code is wrong.

IREE 3.13's two SPIR-V paths for ``linalg.conv_2d_nchw_fchw`` each give wrong numbers on some
shapes (lavapipe, docs/vulkan-targets.md): its im2col rewrite (``--iree-global-opt-use-im2col-for-convs``)
for a dense 22->9 2x2 conv on 4x3 (rel err 2.9) and a 10->27 3x3 on 9x5 (rel err 32); the default
direct-conv path for ResNet-50 at 32x32 (rel err 0.19). The pattern convs' batched GEMMs were right
on every shape tried, so the dense convs take the same road: one copy generic whose input map is
affine (no ``tensor.extract``) builds the columns, then a batched GEMM, then the conv's own initial
value (torch-mlir's bias broadcast) is added afterwards, elementwise (an init folded into the GEMM is
what IREE const-folds and miscompiles on small outputs, pattern_conv.py)::

  cols[g, c, ky, kx, n, i, j] = x[n, g, c, i*sh + ky*dh, j*sw + kx*dw]
  y[n, g, k, i, j] = init[n, g, k, i, j] + sum_r w[g, k, r] * cols[g, r, (n, i, j)]
"""

from __future__ import annotations

from .mlir_util import tensor_type

__all__ = ["im2col_conv_text"]

_PAR = '"parallel"'


def im2col_conv_text(name: str, x_shape, w_shape, y_shape, strides, dilations, grouped: bool) -> str:
    """``func.func private @name(%x, %w, %init) -> y`` computing the convolution of a
    ``linalg.conv_2d_nchw_fchw`` (``grouped=False``: x NCHW, w FCHW, y NKHW) or a
    ``linalg.conv_2d_ngchw_gfchw`` (``grouped=True``: x NGCHW, w GFCHW, y NGKHW) on f32,
    accumulating into ``%init`` as the linalg op does. ``x`` is the already padded input."""
    if grouped:
        N, G, Cg, H, W = x_shape
        _, Kg, _, KH, KW = w_shape
        _, _, _, OH, OW = y_shape
    else:
        N, Cg, H, W = x_shape
        Kg, _, KH, KW = w_shape
        _, _, OH, OW = y_shape
        G = 1
    sh, sw = strides
    dh, dw = dilations
    R, P = Cg * KH * KW, N * OH * OW
    x_t, w_t, y_t = (tensor_type(s, "f32") for s in (x_shape, w_shape, y_shape))
    x5_t = tensor_type((N, G, Cg, H, W), "f32")
    w5_t = tensor_type((G, Kg, Cg, KH, KW), "f32")
    y5_t = tensor_type((N, G, Kg, OH, OW), "f32")
    cols_t = tensor_type((G, Cg, KH, KW, N, OH, OW), "f32")
    colsc_t = tensor_type((G, R, P), "f32")
    wg_t = tensor_type((G, Kg, R), "f32")
    mm_t = tensor_type((G, Kg, P), "f32")
    mm5_t = tensor_type((G, Kg, N, OH, OW), "f32")
    L = [f"func.func private @{name}(%x: {x_t}, %w: {w_t}, %init: {y_t}) -> {y_t} {{",
         "  %zero = arith.constant 0.0 : f32"]
    if grouped:
        x5, w5, init5 = "%x", "%w", "%init"
    else:  # a unit group dim, so both ops share one body
        L += [f"  %x5 = tensor.expand_shape %x [[0], [1, 2], [3], [4]] output_shape [{N}, 1, {Cg}, {H}, {W}] "
              f": {x_t} into {x5_t}",
              f"  %w5 = tensor.expand_shape %w [[0, 1], [2], [3], [4]] output_shape [1, {Kg}, {Cg}, {KH}, {KW}] "
              f": {w_t} into {w5_t}",
              f"  %init5 = tensor.expand_shape %init [[0], [1, 2], [3], [4]] output_shape [{N}, 1, {Kg}, {OH}, {OW}] "
              f": {y_t} into {y5_t}"]
        x5, w5, init5 = "%x5", "%w5", "%init5"
    d7 = "(g, c, ky, kx, n, i, j)"
    L += [f"  %ce = tensor.empty() : {cols_t}",
          f"  %cols = linalg.generic {{indexing_maps = [affine_map<{d7} -> (n, g, c, i * {sh} + ky * {dh}, "
          f"j * {sw} + kx * {dw})>, affine_map<{d7} -> {d7}>], iterator_types = [{', '.join([_PAR] * 7)}]}} "
          f"ins({x5} : {x5_t}) outs(%ce : {cols_t}) {{",
          "  ^bb0(%a: f32, %o: f32):",
          "    linalg.yield %a : f32",
          f"  }} -> {cols_t}",
          f"  %colsc = tensor.collapse_shape %cols [[0], [1, 2, 3], [4, 5, 6]] : {cols_t} into {colsc_t}",
          f"  %wg = tensor.collapse_shape {w5} [[0], [1], [2, 3, 4]] : {w5_t} into {wg_t}",
          f"  %me = tensor.empty() : {mm_t}",
          f"  %acc = linalg.fill ins(%zero : f32) outs(%me : {mm_t}) -> {mm_t}",
          f"  %mm = linalg.batch_matmul ins(%wg, %colsc : {wg_t}, {colsc_t}) outs(%acc : {mm_t}) -> {mm_t}",
          f"  %mm5 = tensor.expand_shape %mm [[0], [1], [2, 3, 4]] output_shape [{G}, {Kg}, {N}, {OH}, {OW}] "
          f": {mm_t} into {mm5_t}",
          f"  %ye = tensor.empty() : {y5_t}",
          "  %y5 = linalg.generic {indexing_maps = [affine_map<(n, g, k, i, j) -> (g, k, n, i, j)>, "
          "affine_map<(n, g, k, i, j) -> (n, g, k, i, j)>, affine_map<(n, g, k, i, j) -> (n, g, k, i, j)>], "
          f"iterator_types = [{', '.join([_PAR] * 5)}]}} ins(%mm5, {init5} : {mm5_t}, {y5_t}) outs(%ye : {y5_t}) {{",
          "  ^bb0(%m: f32, %b: f32, %o: f32):",
          "    %s = arith.addf %m, %b : f32",
          "    linalg.yield %s : f32",
          f"  }} -> {y5_t}"]
    if grouped:
        L.append(f"  return %y5 : {y5_t}")
    else:
        L += [f"  %y = tensor.collapse_shape %y5 [[0], [1, 2], [3], [4]] : {y5_t} into {y_t}",
              f"  return %y : {y_t}"]
    L.append("}")
    return "\n".join(L) + "\n"
