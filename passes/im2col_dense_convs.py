"""pconv-im2col-dense-convs: every dense 2-D convolution -> im2col copy + batched GEMM.

For the Vulkan targets, where IREE 3.13's own SPIR-V conv code gives wrong numbers on some
shapes (:mod:`pconv_mlir.lowering.im2col` says which): the convs the pattern lowering leaves
dense (stems, 1x1 and non-3x3 convs, unpruned layers) take the same batched-GEMM road as the
pattern convs, which were right on every shape tried. f32 ``linalg.conv_2d_nchw_fchw`` and
``linalg.conv_2d_ngchw_gfchw`` with static shapes are rewritten; the input is already padded
(torch-mlir pads with ``tensor.pad``)::

  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<2> : tensor<2xi64>}
         ins(%x, %w : tensor<1x16x9x9xf32>, tensor<32x16x3x3xf32>) outs(%b : tensor<1x32x4x4xf32>)

becomes::

  %y = call @pconv_im2col_1(%x, %w, %b) : (...) -> tensor<1x32x4x4xf32>
  func.func private @pconv_im2col_1(...) {
    %cols = linalg.generic {... affine_map<(g, c, ky, kx, n, i, j) -> (n, g, c, i * 2 + ky, j * 2 + kx)> ...}
    %mm = linalg.batch_matmul ins(%w', %cols' : tensor<1x32x144xf32>, tensor<1x144x16xf32>) ...
    ... %init + %mm ...
  }

Run ``inline`` afterwards (the compile pipeline does). Depthwise convs are left to IREE (right
on lavapipe in every test so far). Not used on the CPU targets: IREE's CPU conv code is right
and faster there.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from pconv_mlir.lowering.im2col import im2col_conv_text
from pconv_mlir.mlir.ir import ir
from pconv_mlir.mlir.pass_infra import (
    PconvPass,
    discardable_attributes,
    install_functions,
    int_list,
    ops_named,
    replace_with_call,
)

GROUPED = {"linalg.conv_2d_nchw_fchw": False, "linalg.conv_2d_ngchw_gfchw": True}


def _rewritable(op: ir.Operation) -> bool:
    types = [ir.RankedTensorType(v.type) for v in (*op.operands[:3], op.results[0])]
    return all(t.has_static_shape and isinstance(t.element_type, ir.F32Type) for t in types)


@dataclasses.dataclass
class Im2colDenseConvs(PconvPass):
    name: ClassVar[str] = "pconv-im2col-dense-convs"
    summary: ClassVar[str] = "Rewrite dense convolutions as an im2col copy + batched GEMM (targets with wrong IREE convs)"

    def run(self, module: ir.Operation) -> None:
        count = 0
        for op in ops_named(module, *GROUPED):
            if not _rewritable(op):
                continue
            count += 1
            name = f"pconv_im2col_{count}"
            pair = lambda a: int_list(op.attributes[a]) if a in op.attributes else [1, 1]  # noqa: E731
            shapes = [ir.RankedTensorType(v.type).shape for v in (op.operands[0], op.operands[1], op.results[0])]
            text = im2col_conv_text(name, *shapes, pair("strides"), pair("dilations"), GROUPED[op.name])
            install_functions(module, text)
            tags = {k: v for k, v in discardable_attributes(op).items() if k.startswith("pconv.")}
            replace_with_call(op, name, list(op.operands[:3]), tags)
