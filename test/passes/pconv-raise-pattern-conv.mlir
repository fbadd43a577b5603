// RUN: pconv-opt --split-input-file -p pconv-raise-pattern-conv %s | filecheck %s

// The FX importer's form: zero tensor.pad, bias broadcast, pattern-sparse constant weights.
// CHECK-LABEL: func.func @padded_with_bias
// CHECK-SAME: (%[[X:.*]]: tensor<1x2x8x8xf32>, %[[B:.*]]: tensor<2xf32>)
// CHECK-NOT: tensor.pad
// CHECK-NOT: linalg.broadcast
// CHECK: %[[W:.*]] = arith.constant dense<{{.*}}> : tensor<2x2x3x3xf32>
// CHECK: "pconv.conv2d"(%[[X]], %[[W]], %[[B]])
// CHECK-SAME: block_size = 1 : i64, dilations = array<i64: 1, 1>, groups = 1 : i64
// CHECK-SAME: kernel_patterns = dense<{{\[}}[0, -1], [1, 0]]> : tensor<2x2xi8>
// CHECK-SAME: padding = array<i64: 1, 1, 1, 1>
// CHECK-SAME: patterns = array<i64: 1, 3, 4, 5, 0, 1, 4, 7>
// CHECK-SAME: strides = array<i64: 1, 1>
// CHECK-SAME: -> tensor<1x2x8x8xf32>
// CHECK-NOT: linalg.conv_2d_nchw_fchw
func.func @padded_with_bias(%x: tensor<1x2x8x8xf32>, %b: tensor<2xf32>) -> tensor<1x2x8x8xf32> {
  %zero = arith.constant 0.000000e+00 : f32
  %w = arith.constant dense<[[[[0.0, 7.0, 0.0], [6.0, 5.0, 3.0], [0.0, 0.0, 0.0]], [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]], [[[3.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 1.0, 0.0]], [[0.0, 2.0, 0.0], [7.0, 6.0, 8.0], [0.0, 0.0, 0.0]]]]> : tensor<2x2x3x3xf32>
  %padded = tensor.pad %x low[0, 0, 1, 1] high[0, 0, 1, 1] {
  ^bb0(%i: index, %j: index, %k: index, %l: index):
    tensor.yield %zero : f32
  } : tensor<1x2x8x8xf32> to tensor<1x2x10x10xf32>
  %e = tensor.empty() : tensor<1x2x8x8xf32>
  %init = linalg.broadcast ins(%b : tensor<2xf32>) outs(%e : tensor<1x2x8x8xf32>) dimensions = [0, 2, 3]
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%padded, %w : tensor<1x2x10x10xf32>, tensor<2x2x3x3xf32>) outs(%init : tensor<1x2x8x8xf32>) -> tensor<1x2x8x8xf32>
  return %y : tensor<1x2x8x8xf32>
}

// -----

// No padding, stride 2, dilation 2, zero fill: the bias becomes a zero constant.
// CHECK-LABEL: func.func @strided_no_bias
// CHECK: %[[ZB:.*]] = arith.constant dense<0.000000e+00> : tensor<2xf32>
// CHECK: "pconv.conv2d"(%{{[a-z0-9_]+}}, %{{[a-z0-9_]+}}, %[[ZB]])
// CHECK-SAME: dilations = array<i64: 2, 2>
// CHECK-SAME: padding = array<i64: 0, 0, 0, 0>
// CHECK-SAME: strides = array<i64: 2, 2>
// CHECK-SAME: -> tensor<1x2x2x2xf32>
// CHECK-NOT: linalg.fill
func.func @strided_no_bias(%x: tensor<1x2x8x8xf32>) -> tensor<1x2x2x2xf32> {
  %zero = arith.constant 0.000000e+00 : f32
  %w = arith.constant dense<[[[[0.0, 7.0, 0.0], [6.0, 5.0, 3.0], [0.0, 0.0, 0.0]], [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]], [[[3.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 1.0, 0.0]], [[0.0, 2.0, 0.0], [7.0, 6.0, 8.0], [0.0, 0.0, 0.0]]]]> : tensor<2x2x3x3xf32>
  %e = tensor.empty() : tensor<1x2x2x2xf32>
  %init = linalg.fill ins(%zero : f32) outs(%e : tensor<1x2x2x2xf32>) -> tensor<1x2x2x2xf32>
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<2> : vector<2xi64>, strides = dense<2> : vector<2xi64>} ins(%x, %w : tensor<1x2x8x8xf32>, tensor<2x2x3x3xf32>) outs(%init : tensor<1x2x2x2xf32>) -> tensor<1x2x2x2xf32>
  return %y : tensor<1x2x2x2xf32>
}

// -----

// Four consecutive filters share kept channels and patterns: block_size records it.
// CHECK-LABEL: func.func @shared_group
// CHECK: "pconv.conv2d"
// CHECK-SAME: block_size = 4 : i64
// CHECK-SAME: kernel_patterns = dense<{{\[}}[0, 1], [0, 1], [0, 1], [0, 1]]> : tensor<4x2xi8>
func.func @shared_group(%x: tensor<1x2x6x6xf32>) -> tensor<1x4x4x4xf32> {
  %zero = arith.constant 0.000000e+00 : f32
  %w = arith.constant dense<[[[[0.0, 4.0, 0.0], [5.0, 7.0, 8.0], [0.0, 0.0, 0.0]], [[1.0, 2.0, 0.0], [0.0, 7.0, 0.0], [0.0, 8.0, 0.0]]], [[[0.0, 2.0, 0.0], [3.0, 7.0, 4.0], [0.0, 0.0, 0.0]], [[3.0, 7.0, 0.0], [0.0, 3.0, 0.0], [0.0, 4.0, 0.0]]], [[[0.0, 6.0, 0.0], [5.0, 1.0, 1.0], [0.0, 0.0, 0.0]], [[7.0, 7.0, 0.0], [0.0, 7.0, 0.0], [0.0, 5.0, 0.0]]], [[[0.0, 7.0, 0.0], [3.0, 4.0, 7.0], [0.0, 0.0, 0.0]], [[1.0, 3.0, 0.0], [0.0, 1.0, 0.0], [0.0, 4.0, 0.0]]]]> : tensor<4x2x3x3xf32>
  %e = tensor.empty() : tensor<1x4x4x4xf32>
  %init = linalg.fill ins(%zero : f32) outs(%e : tensor<1x4x4x4xf32>) -> tensor<1x4x4x4xf32>
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%x, %w : tensor<1x2x6x6xf32>, tensor<4x2x3x3xf32>) outs(%init : tensor<1x4x4x4xf32>) -> tensor<1x4x4x4xf32>
  return %y : tensor<1x4x4x4xf32>
}

// -----

// Depthwise (channel multiplier 1): raised with groups = channels, 4-D weights.
// CHECK-LABEL: func.func @depthwise
// CHECK: %[[DW:.*]] = arith.constant dense<{{.*}}> : tensor<2x1x3x3xf32>
// CHECK: "pconv.conv2d"(%{{[a-z0-9_]+}}, %[[DW]], %{{[a-z0-9_]+}})
// CHECK-SAME: groups = 2 : i64
// CHECK-SAME: kernel_patterns = dense<{{\[}}[0], [1]]> : tensor<2x1xi8>
// CHECK-SAME: padding = array<i64: 1, 1, 1, 1>
// CHECK-NOT: linalg.depthwise_conv_2d_nchw_chw
func.func @depthwise(%x: tensor<1x2x8x8xf32>, %b: tensor<2xf32>) -> tensor<1x2x8x8xf32> {
  %zero = arith.constant 0.000000e+00 : f32
  %w = arith.constant dense<[[[[7.0, 3.0, 0.0], [0.0, 1.0, 0.0], [0.0, 3.0, 0.0]]], [[[0.0, 4.0, 0.0], [7.0, 4.0, 1.0], [0.0, 0.0, 0.0]]]]> : tensor<2x1x3x3xf32>
  %c = tensor.collapse_shape %w [[0, 1], [2], [3]] : tensor<2x1x3x3xf32> into tensor<2x3x3xf32>
  %padded = tensor.pad %x low[0, 0, 1, 1] high[0, 0, 1, 1] {
  ^bb0(%i: index, %j: index, %k: index, %l: index):
    tensor.yield %zero : f32
  } : tensor<1x2x8x8xf32> to tensor<1x2x10x10xf32>
  %e = tensor.empty() : tensor<1x2x8x8xf32>
  %init = linalg.broadcast ins(%b : tensor<2xf32>) outs(%e : tensor<1x2x8x8xf32>) dimensions = [0, 2, 3]
  %y = linalg.depthwise_conv_2d_nchw_chw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%padded, %c : tensor<1x2x10x10xf32>, tensor<2x3x3xf32>) outs(%init : tensor<1x2x8x8xf32>) -> tensor<1x2x8x8xf32>
  return %y : tensor<1x2x8x8xf32>
}

// -----

// Weights as the FX importer emits them: a dense_resource blob.
// CHECK-LABEL: func.func @resource_weights
// CHECK: "pconv.conv2d"
// CHECK-SAME: kernel_patterns = dense<{{\[}}[0, -1], [-1, 1]]> : tensor<2x2xi8>
// CHECK-SAME: patterns = array<i64: 0, 1, 4, 7, 1, 3, 4, 5>
func.func @resource_weights(%x: tensor<1x2x8x8xf32>) -> tensor<1x2x6x6xf32> {
  %zero = arith.constant 0.000000e+00 : f32
  %w = arith.constant dense_resource<conv_w> : tensor<2x2x3x3xf32>
  %e = tensor.empty() : tensor<1x2x6x6xf32>
  %init = linalg.fill ins(%zero : f32) outs(%e : tensor<1x2x6x6xf32>) -> tensor<1x2x6x6xf32>
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%x, %w : tensor<1x2x8x8xf32>, tensor<2x2x3x3xf32>) outs(%init : tensor<1x2x6x6xf32>) -> tensor<1x2x6x6xf32>
  return %y : tensor<1x2x6x6xf32>
}
{-#
  dialect_resources: {
    builtin: {
      conv_w: "0x040000000000E0400000803F000000000000000000000040000000000000000000000040000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000040000000000000E0400000E0400000A040000000000000000000000000"
    }
  }
#-}

// -----

// Must not fire: dense weights (a kernel has 9 non-zeros).
// CHECK-LABEL: func.func @dense_weights
// CHECK-NOT: pconv.conv2d
// CHECK: linalg.conv_2d_nchw_fchw
func.func @dense_weights(%x: tensor<1x2x8x8xf32>) -> tensor<1x2x6x6xf32> {
  %zero = arith.constant 0.000000e+00 : f32
  %w = arith.constant dense<1.0> : tensor<2x2x3x3xf32>
  %e = tensor.empty() : tensor<1x2x6x6xf32>
  %init = linalg.fill ins(%zero : f32) outs(%e : tensor<1x2x6x6xf32>) -> tensor<1x2x6x6xf32>
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%x, %w : tensor<1x2x8x8xf32>, tensor<2x2x3x3xf32>) outs(%init : tensor<1x2x6x6xf32>) -> tensor<1x2x6x6xf32>
  return %y : tensor<1x2x6x6xf32>
}

// -----

// Must not fire: weights that are not a constant.
// CHECK-LABEL: func.func @runtime_weights
// CHECK-NOT: pconv.conv2d
// CHECK: linalg.conv_2d_nchw_fchw
func.func @runtime_weights(%x: tensor<1x2x8x8xf32>, %w: tensor<2x2x3x3xf32>) -> tensor<1x2x6x6xf32> {
  %zero = arith.constant 0.000000e+00 : f32
  %e = tensor.empty() : tensor<1x2x6x6xf32>
  %init = linalg.fill ins(%zero : f32) outs(%e : tensor<1x2x6x6xf32>) -> tensor<1x2x6x6xf32>
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%x, %w : tensor<1x2x8x8xf32>, tensor<2x2x3x3xf32>) outs(%init : tensor<1x2x6x6xf32>) -> tensor<1x2x6x6xf32>
  return %y : tensor<1x2x6x6xf32>
}

// -----

// Must not fire: a 1x1 convolution with too few input channels for blocks to pay.
// CHECK-LABEL: func.func @pointwise
// CHECK-NOT: pconv.
// CHECK: linalg.conv_2d_nchw_fchw
func.func @pointwise(%x: tensor<1x2x8x8xf32>) -> tensor<1x2x8x8xf32> {
  %zero = arith.constant 0.000000e+00 : f32
  %w = arith.constant dense<[[[[1.0]], [[0.0]]], [[[0.0]], [[2.0]]]]> : tensor<2x2x1x1xf32>
  %e = tensor.empty() : tensor<1x2x8x8xf32>
  %init = linalg.fill ins(%zero : f32) outs(%e : tensor<1x2x8x8xf32>) -> tensor<1x2x8x8xf32>
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%x, %w : tensor<1x2x8x8xf32>, tensor<2x2x1x1xf32>) outs(%init : tensor<1x2x8x8xf32>) -> tensor<1x2x8x8xf32>
  return %y : tensor<1x2x8x8xf32>
}

// -----

// A pad with a non-zero value is not absorbed: the conv is raised on the padded tensor.
// CHECK-LABEL: func.func @nonzero_pad
// CHECK: %[[P:.*]] = tensor.pad
// CHECK: "pconv.conv2d"(%[[P]],
// CHECK-SAME: padding = array<i64: 0, 0, 0, 0>
func.func @nonzero_pad(%x: tensor<1x2x8x8xf32>) -> tensor<1x2x8x8xf32> {
  %zero = arith.constant 0.000000e+00 : f32
  %one = arith.constant 1.000000e+00 : f32
  %w = arith.constant dense<[[[[0.0, 7.0, 0.0], [6.0, 5.0, 3.0], [0.0, 0.0, 0.0]], [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]], [[[3.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 1.0, 0.0]], [[0.0, 2.0, 0.0], [7.0, 6.0, 8.0], [0.0, 0.0, 0.0]]]]> : tensor<2x2x3x3xf32>
  %padded = tensor.pad %x low[0, 0, 1, 1] high[0, 0, 1, 1] {
  ^bb0(%i: index, %j: index, %k: index, %l: index):
    tensor.yield %one : f32
  } : tensor<1x2x8x8xf32> to tensor<1x2x10x10xf32>
  %e = tensor.empty() : tensor<1x2x8x8xf32>
  %init = linalg.fill ins(%zero : f32) outs(%e : tensor<1x2x8x8xf32>) -> tensor<1x2x8x8xf32>
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%padded, %w : tensor<1x2x10x10xf32>, tensor<2x2x3x3xf32>) outs(%init : tensor<1x2x8x8xf32>) -> tensor<1x2x8x8xf32>
  return %y : tensor<1x2x8x8xf32>
}

// -----

// A 1x1 conv whose filters, in blocks of 2, keep the same 16 of 32 input channels (5 filters:
// the last block is partial), stride 2 as a ResNet downsample: raised to pconv.block_conv2d, G
// read off the weights.
// CHECK-LABEL: func.func @pointwise_blocks
// CHECK: %[[W:.*]] = arith.constant dense<{{.*}}> : tensor<5x32x1x1xf32>
// CHECK: "pconv.block_conv2d"(%arg0, %[[W]], %arg1)
// CHECK-SAME: block_size = 2 : i64
// CHECK-SAME: padding = array<i64: 0, 0, 0, 0>, strides = array<i64: 2, 2>
// CHECK-SAME: -> tensor<1x5x4x4xf32>
// CHECK-NOT: linalg.conv_2d_nchw_fchw
func.func @pointwise_blocks(%x: tensor<1x32x8x8xf32>, %b: tensor<5xf32>) -> tensor<1x5x4x4xf32> {
  %w = arith.constant dense<[[[[1.0]], [[0.0]], [[7.0]], [[0.0]], [[5.0]], [[0.0]], [[3.0]], [[0.0]], [[1.0]], [[0.0]], [[7.0]], [[0.0]], [[5.0]], [[0.0]], [[3.0]], [[0.0]], [[1.0]], [[0.0]], [[7.0]], [[0.0]], [[5.0]], [[0.0]], [[3.0]], [[0.0]], [[1.0]], [[0.0]], [[7.0]], [[0.0]], [[5.0]], [[0.0]], [[3.0]], [[0.0]]], [[[6.0]], [[0.0]], [[4.0]], [[0.0]], [[2.0]], [[0.0]], [[8.0]], [[0.0]], [[6.0]], [[0.0]], [[4.0]], [[0.0]], [[2.0]], [[0.0]], [[8.0]], [[0.0]], [[6.0]], [[0.0]], [[4.0]], [[0.0]], [[2.0]], [[0.0]], [[8.0]], [[0.0]], [[6.0]], [[0.0]], [[4.0]], [[0.0]], [[2.0]], [[0.0]], [[8.0]], [[0.0]]], [[[0.0]], [[6.0]], [[0.0]], [[4.0]], [[0.0]], [[2.0]], [[0.0]], [[8.0]], [[0.0]], [[6.0]], [[0.0]], [[4.0]], [[0.0]], [[2.0]], [[0.0]], [[8.0]], [[0.0]], [[6.0]], [[0.0]], [[4.0]], [[0.0]], [[2.0]], [[0.0]], [[8.0]], [[0.0]], [[6.0]], [[0.0]], [[4.0]], [[0.0]], [[2.0]], [[0.0]], [[8.0]]], [[[0.0]], [[3.0]], [[0.0]], [[1.0]], [[0.0]], [[7.0]], [[0.0]], [[5.0]], [[0.0]], [[3.0]], [[0.0]], [[1.0]], [[0.0]], [[7.0]], [[0.0]], [[5.0]], [[0.0]], [[3.0]], [[0.0]], [[1.0]], [[0.0]], [[7.0]], [[0.0]], [[5.0]], [[0.0]], [[3.0]], [[0.0]], [[1.0]], [[0.0]], [[7.0]], [[0.0]], [[5.0]]], [[[5.0]], [[8.0]], [[3.0]], [[6.0]], [[1.0]], [[4.0]], [[7.0]], [[2.0]], [[5.0]], [[8.0]], [[3.0]], [[6.0]], [[1.0]], [[4.0]], [[7.0]], [[2.0]], [[0.0]], [[0.0]], [[0.0]], [[0.0]], [[0.0]], [[0.0]], [[0.0]], [[0.0]], [[0.0]], [[0.0]], [[0.0]], [[0.0]], [[0.0]], [[0.0]], [[0.0]], [[0.0]]]]> : tensor<5x32x1x1xf32>
  %e = tensor.empty() : tensor<1x5x4x4xf32>
  %init = linalg.broadcast ins(%b : tensor<5xf32>) outs(%e : tensor<1x5x4x4xf32>) dimensions = [0, 2, 3]
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>} ins(%x, %w : tensor<1x32x8x8xf32>, tensor<5x32x1x1xf32>) outs(%init : tensor<1x5x4x4xf32>) -> tensor<1x5x4x4xf32>
  return %y : tensor<1x5x4x4xf32>
}

// -----

// Must not fire: the same structure with 3 of 16 channels kept per block; block GEMMs that short
// run below the dense matmul's rate (cost_model.MIN_ROWS_1X1), so the conv stays dense.
// CHECK-LABEL: func.func @pointwise_blocks_short_rows
// CHECK-NOT: pconv.
// CHECK: linalg.conv_2d_nchw_fchw
func.func @pointwise_blocks_short_rows(%x: tensor<1x16x8x8xf32>, %b: tensor<5xf32>) -> tensor<1x5x4x4xf32> {
  %w = arith.constant dense<[[[[7.0]], [[0.0]], [[6.0]], [[0.0]], [[0.0]], [[5.0]], [[0.0]], [[0.0]], [[0.0]], [[0.0]], [[0.0]], [[0.0]], [[0.0]], [[0.0]], [[0.0]], [[0.0]]], [[[3.0]], [[0.0]], [[3.0]], [[0.0]], [[0.0]], [[1.0]], [[0.0]], [[0.0]], [[0.0]], [[0.0]], [[0.0]], [[0.0]], [[0.0]], [[0.0]], [[0.0]], [[0.0]]], [[[0.0]], [[1.0]], [[0.0]], [[0.0]], [[0.0]], [[0.0]], [[1.0]], [[0.0]], [[0.0]], [[2.0]], [[0.0]], [[0.0]], [[7.0]], [[0.0]], [[0.0]], [[0.0]]], [[[0.0]], [[6.0]], [[0.0]], [[0.0]], [[0.0]], [[0.0]], [[8.0]], [[0.0]], [[0.0]], [[5.0]], [[0.0]], [[0.0]], [[5.0]], [[0.0]], [[0.0]], [[0.0]]], [[[0.0]], [[0.0]], [[0.0]], [[8.0]], [[6.0]], [[0.0]], [[0.0]], [[0.0]], [[0.0]], [[0.0]], [[0.0]], [[0.0]], [[0.0]], [[0.0]], [[0.0]], [[0.0]]]]> : tensor<5x16x1x1xf32>
  %e = tensor.empty() : tensor<1x5x4x4xf32>
  %init = linalg.broadcast ins(%b : tensor<5xf32>) outs(%e : tensor<1x5x4x4xf32>) dimensions = [0, 2, 3]
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>} ins(%x, %w : tensor<1x16x8x8xf32>, tensor<5x16x1x1xf32>) outs(%init : tensor<1x5x4x4xf32>) -> tensor<1x5x4x4xf32>
  return %y : tensor<1x5x4x4xf32>
}

// -----

// Must not fire: a 1x1 conv whose zeros are scattered (consecutive filters keep different
// input channels) stays a dense conv.
// CHECK-LABEL: func.func @pointwise_scattered
// CHECK-NOT: pconv.
// CHECK: linalg.conv_2d_nchw_fchw
func.func @pointwise_scattered(%x: tensor<1x8x8x8xf32>) -> tensor<1x4x8x8xf32> {
  %zero = arith.constant 0.000000e+00 : f32
  %w = arith.constant dense<[[[[5.0]], [[0.0]], [[8.0]], [[6.0]], [[6.0]], [[0.0]], [[5.0]], [[0.0]]], [[[0.0]], [[5.0]], [[1.0]], [[7.0]], [[0.0]], [[0.0]], [[2.0]], [[1.0]]], [[[4.0]], [[4.0]], [[0.0]], [[0.0]], [[0.0]], [[1.0]], [[1.0]], [[6.0]]], [[[4.0]], [[4.0]], [[8.0]], [[0.0]], [[8.0]], [[0.0]], [[6.0]], [[0.0]]]]> : tensor<4x8x1x1xf32>
  %e = tensor.empty() : tensor<1x4x8x8xf32>
  %init = linalg.fill ins(%zero : f32) outs(%e : tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32>
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%x, %w : tensor<1x8x8x8xf32>, tensor<4x8x1x1xf32>) outs(%init : tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32>
  return %y : tensor<1x4x8x8xf32>
}

// -----

// Must not fire: a dynamic batch (pattern convs are built for static shapes); the conv stays dense.
// CHECK-LABEL: func.func @dynamic_batch
// CHECK-NOT: pconv.conv2d
// CHECK: linalg.conv_2d_nchw_fchw
func.func @dynamic_batch(%x: tensor<?x2x6x6xf32>) -> tensor<?x4x4x4xf32> {
  %zero = arith.constant 0.000000e+00 : f32
  %c0 = arith.constant 0 : index
  %n = tensor.dim %x, %c0 : tensor<?x2x6x6xf32>
  %w = arith.constant dense<[[[[0.0, 4.0, 0.0], [5.0, 7.0, 8.0], [0.0, 0.0, 0.0]], [[1.0, 2.0, 0.0], [0.0, 7.0, 0.0], [0.0, 8.0, 0.0]]], [[[0.0, 2.0, 0.0], [3.0, 7.0, 4.0], [0.0, 0.0, 0.0]], [[3.0, 7.0, 0.0], [0.0, 3.0, 0.0], [0.0, 4.0, 0.0]]], [[[0.0, 6.0, 0.0], [5.0, 1.0, 1.0], [0.0, 0.0, 0.0]], [[7.0, 7.0, 0.0], [0.0, 7.0, 0.0], [0.0, 5.0, 0.0]]], [[[0.0, 7.0, 0.0], [3.0, 4.0, 7.0], [0.0, 0.0, 0.0]], [[1.0, 3.0, 0.0], [0.0, 1.0, 0.0], [0.0, 4.0, 0.0]]]]> : tensor<4x2x3x3xf32>
  %e = tensor.empty(%n) : tensor<?x4x4x4xf32>
  %init = linalg.fill ins(%zero : f32) outs(%e : tensor<?x4x4x4xf32>) -> tensor<?x4x4x4xf32>
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%x, %w : tensor<?x2x6x6xf32>, tensor<4x2x3x3xf32>) outs(%init : tensor<?x4x4x4xf32>) -> tensor<?x4x4x4xf32>
  return %y : tensor<?x4x4x4xf32>
}
