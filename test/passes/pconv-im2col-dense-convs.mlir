// RUN: pconv-opt --split-input-file -p pconv-im2col-dense-convs %s | filecheck %s

// Stride 2, 3x3 on 9x9: the columns are an affine copy (no tensor.extract), the GEMM runs over
// (channel, tap) x output pixels, and the conv's initial value (the bias) is added afterwards.
// CHECK: #[[COLS:.*]] = affine_map<(d0, d1, d2, d3, d4, d5, d6) -> (d4, d0, d1, d5 * 2 + d2, d6 * 2 + d3)>
// CHECK-LABEL: func.func @strided
// CHECK: %[[Y:.*]] = call @pconv_im2col_1(%arg0, %arg1, %arg2) :
// CHECK-NOT: linalg.conv_2d_nchw_fchw
// CHECK: return %[[Y]]
// CHECK-LABEL: func.func private @pconv_im2col_1
// CHECK: linalg.generic {indexing_maps = [#[[COLS]],
// CHECK-NOT: tensor.extract
// CHECK: tensor.collapse_shape {{.*}} into tensor<1x144x16xf32>
// CHECK: linalg.batch_matmul ins({{.*}} : tensor<1x32x144xf32>, tensor<1x144x16xf32>)
// CHECK: arith.addf
func.func @strided(%x: tensor<1x16x9x9xf32>, %w: tensor<32x16x3x3xf32>, %b: tensor<1x32x4x4xf32>) -> tensor<1x32x4x4xf32> {
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<2> : tensor<2xi64>} ins(%x, %w : tensor<1x16x9x9xf32>, tensor<32x16x3x3xf32>) outs(%b : tensor<1x32x4x4xf32>) -> tensor<1x32x4x4xf32>
  return %y : tensor<1x32x4x4xf32>
}

// -----

// Grouped (2 groups), dilation 2, batch 2: one GEMM batch per group.
// CHECK: #[[COLS:.*]] = affine_map<(d0, d1, d2, d3, d4, d5, d6) -> (d4, d0, d1, d5 + d2 * 2, d6 + d3 * 2)>
// CHECK-LABEL: func.func @grouped
// CHECK: call @pconv_im2col_1
// CHECK-LABEL: func.func private @pconv_im2col_1
// CHECK: linalg.generic {indexing_maps = [#[[COLS]],
// CHECK: linalg.batch_matmul ins({{.*}} : tensor<2x3x36xf32>, tensor<2x36x32xf32>)
func.func @grouped(%x: tensor<2x2x4x8x8xf32>, %w: tensor<2x3x4x3x3xf32>, %b: tensor<2x2x3x4x4xf32>) -> tensor<2x2x3x4x4xf32> {
  %y = linalg.conv_2d_ngchw_gfchw {dilations = dense<2> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>} ins(%x, %w : tensor<2x2x4x8x8xf32>, tensor<2x3x4x3x3xf32>) outs(%b : tensor<2x2x3x4x4xf32>) -> tensor<2x2x3x4x4xf32>
  return %y : tensor<2x2x3x4x4xf32>
}

// -----

// Must not fire: depthwise convs stay with IREE; a dynamic batch is not rewritten.
// CHECK-LABEL: func.func @untouched
// CHECK-NOT: call
// CHECK: linalg.depthwise_conv_2d_nchw_chw
// CHECK: linalg.conv_2d_nchw_fchw
func.func @untouched(%x: tensor<1x4x6x6xf32>, %w: tensor<4x3x3xf32>, %o: tensor<1x4x4x4xf32>,
                     %xd: tensor<?x4x6x6xf32>, %wd: tensor<8x4x3x3xf32>, %od: tensor<?x8x4x4xf32>) -> (tensor<1x4x4x4xf32>, tensor<?x8x4x4xf32>) {
  %y = linalg.depthwise_conv_2d_nchw_chw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>} ins(%x, %w : tensor<1x4x6x6xf32>, tensor<4x3x3xf32>) outs(%o : tensor<1x4x4x4xf32>) -> tensor<1x4x4x4xf32>
  %yd = linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>} ins(%xd, %wd : tensor<?x4x6x6xf32>, tensor<8x4x3x3xf32>) outs(%od : tensor<?x8x4x4xf32>) -> tensor<?x8x4x4xf32>
  return %y, %yd : tensor<1x4x4x4xf32>, tensor<?x8x4x4xf32>
}
