// RUN: pconv-opt --split-input-file -p pconv-compact-weights %s | filecheck %s
// RUN: pconv-opt --split-input-file -p "pconv-compact-weights{min-mac-reduction=4.0}" %s | filecheck %s --check-prefix=STRICT

// Four filters sharing two kept channels: one group of 4, rows sorted by (tap, channel).
// CHECK-LABEL: func.func @shared_group
// CHECK: %[[PW:.*]] = arith.constant dense<{{.*}}> : tensor<1x4x8xf32>
// CHECK: "pconv.packed_conv2d"(%arg0, %[[PW]], %{{[a-z0-9_]+}})
// CHECK-SAME: block_size = 4 : i64
// CHECK-SAME: row_channels = dense<{{\[}}[1, 0, 1, 0, 0, 1, 0, 1]]> : tensor<1x8xi32>
// CHECK-SAME: row_taps = dense<{{\[}}[0, 1, 1, 3, 4, 4, 5, 7]]> : tensor<1x8xi32>
// CHECK-NOT: pconv.conv2d
// 4x2x9 = 72 dense MACs per pixel vs 32 packed: 2.25x, below the strict threshold.
// STRICT-LABEL: func.func @shared_group
// STRICT: "pconv.conv2d"
// STRICT-NOT: pconv.packed_conv2d
func.func @shared_group(%x: tensor<1x2x6x6xf32>) -> tensor<1x4x6x6xf32> {
  %w = arith.constant dense<[[[[0.0, 4.0, 0.0], [5.0, 7.0, 8.0], [0.0, 0.0, 0.0]], [[1.0, 2.0, 0.0], [0.0, 7.0, 0.0], [0.0, 8.0, 0.0]]], [[[0.0, 2.0, 0.0], [3.0, 7.0, 4.0], [0.0, 0.0, 0.0]], [[3.0, 7.0, 0.0], [0.0, 3.0, 0.0], [0.0, 4.0, 0.0]]], [[[0.0, 6.0, 0.0], [5.0, 1.0, 1.0], [0.0, 0.0, 0.0]], [[7.0, 7.0, 0.0], [0.0, 7.0, 0.0], [0.0, 5.0, 0.0]]], [[[0.0, 7.0, 0.0], [3.0, 4.0, 7.0], [0.0, 0.0, 0.0]], [[1.0, 3.0, 0.0], [0.0, 1.0, 0.0], [0.0, 4.0, 0.0]]]]> : tensor<4x2x3x3xf32>
  %b = arith.constant dense<0.0> : tensor<4xf32>
  %y = "pconv.conv2d"(%x, %w, %b) {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, padding = array<i64: 1, 1, 1, 1>, groups = 1 : i64, patterns = array<i64: 1, 3, 4, 5, 0, 1, 4, 7>, kernel_patterns = dense<[[0, 1], [0, 1], [0, 1], [0, 1]]> : tensor<4x2xi8>, block_size = 4 : i64} : (tensor<1x2x6x6xf32>, tensor<4x2x3x3xf32>, tensor<4xf32>) -> tensor<1x4x6x6xf32>
  return %y : tensor<1x4x6x6xf32>
}

// -----

// Must not fire: depthwise convs keep their own lowering.
// CHECK-LABEL: func.func @depthwise
// CHECK: "pconv.conv2d"
// CHECK-NOT: pconv.packed_conv2d
func.func @depthwise(%x: tensor<1x2x6x6xf32>) -> tensor<1x2x6x6xf32> {
  %w = arith.constant dense<1.0> : tensor<2x1x3x3xf32>
  %b = arith.constant dense<0.0> : tensor<2xf32>
  %y = "pconv.conv2d"(%x, %w, %b) {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, padding = array<i64: 1, 1, 1, 1>, groups = 2 : i64, patterns = array<i64: 1, 3, 4, 5>, kernel_patterns = dense<0> : tensor<2x1xi8>, block_size = 1 : i64} : (tensor<1x2x6x6xf32>, tensor<2x1x3x3xf32>, tensor<2xf32>) -> tensor<1x2x6x6xf32>
  return %y : tensor<1x2x6x6xf32>
}

// -----

// A 1x1 block conv (5 filters in blocks of 2, the last partial): each block's rows are its kept
// input channels at tap 0; the partial block is padded with a zero filter.
// CHECK-LABEL: func.func @block_conv
// CHECK: %[[PW:.*]] = arith.constant dense<{{.*}}> : tensor<3x2x3xf32>
// CHECK: "pconv.packed_conv2d"(%arg0, %[[PW]], %arg1)
// CHECK-SAME: block_size = 2 : i64
// CHECK-SAME: kernel_size = array<i64: 1, 1>
// CHECK-SAME: row_channels = dense<{{\[}}[0, 2, 5], [1, 6, 1], [3, 4, 3]]> : tensor<3x3xi32>
// CHECK-SAME: row_taps = dense<0> : tensor<3x3xi32>
// CHECK-SAME: strides = array<i64: 2, 2>
// CHECK-NOT: pconv.block_conv2d
// 5x8 = 40 dense MACs per pixel vs 3x2x3 = 18 packed: 2.2x, below the strict threshold.
// STRICT-LABEL: func.func @block_conv
// STRICT: "pconv.block_conv2d"
// STRICT-NOT: pconv.packed_conv2d
func.func @block_conv(%x: tensor<1x8x8x8xf32>, %b: tensor<5xf32>) -> tensor<1x5x4x4xf32> {
  %w = arith.constant dense<[[[[7.0]], [[0.0]], [[6.0]], [[0.0]], [[0.0]], [[5.0]], [[0.0]], [[0.0]]], [[[3.0]], [[0.0]], [[3.0]], [[0.0]], [[0.0]], [[1.0]], [[0.0]], [[0.0]]], [[[0.0]], [[1.0]], [[0.0]], [[0.0]], [[0.0]], [[0.0]], [[1.0]], [[0.0]]], [[[0.0]], [[2.0]], [[0.0]], [[0.0]], [[0.0]], [[0.0]], [[7.0]], [[0.0]]], [[[0.0]], [[0.0]], [[0.0]], [[6.0]], [[8.0]], [[0.0]], [[0.0]], [[0.0]]]]> : tensor<5x8x1x1xf32>
  %y = "pconv.block_conv2d"(%x, %w, %b) {strides = array<i64: 2, 2>, dilations = array<i64: 1, 1>, padding = array<i64: 0, 0, 0, 0>, groups = 1 : i64, block_size = 2 : i64} : (tensor<1x8x8x8xf32>, tensor<5x8x1x1xf32>, tensor<5xf32>) -> tensor<1x5x4x4xf32>
  return %y : tensor<1x5x4x4xf32>
}

// -----

// Must not fire: 1x1 blocks that keep nearly every channel (8 filters, one block keeping 7 of 8
// channels: 56 packed vs 64 dense MACs, 1.14x < the 1.25x bar for 1x1 blocks).
// CHECK-LABEL: func.func @block_conv_dense_enough
// CHECK: "pconv.block_conv2d"
// CHECK-NOT: pconv.packed_conv2d
func.func @block_conv_dense_enough(%x: tensor<1x8x4x4xf32>, %b: tensor<8xf32>) -> tensor<1x8x4x4xf32> {
  %w8 = arith.constant dense<[[[[1.0]], [[2.0]], [[3.0]], [[4.0]], [[5.0]], [[6.0]], [[7.0]], [[0.0]]], [[[1.0]], [[2.0]], [[3.0]], [[4.0]], [[5.0]], [[6.0]], [[7.0]], [[0.0]]], [[[1.0]], [[2.0]], [[3.0]], [[4.0]], [[5.0]], [[6.0]], [[7.0]], [[0.0]]], [[[1.0]], [[2.0]], [[3.0]], [[4.0]], [[5.0]], [[6.0]], [[7.0]], [[0.0]]], [[[1.0]], [[2.0]], [[3.0]], [[4.0]], [[5.0]], [[6.0]], [[7.0]], [[0.0]]], [[[1.0]], [[2.0]], [[3.0]], [[4.0]], [[5.0]], [[6.0]], [[7.0]], [[0.0]]], [[[1.0]], [[2.0]], [[3.0]], [[4.0]], [[5.0]], [[6.0]], [[7.0]], [[0.0]]], [[[1.0]], [[2.0]], [[3.0]], [[4.0]], [[5.0]], [[6.0]], [[7.0]], [[0.0]]]]> : tensor<8x8x1x1xf32>
  %y = "pconv.block_conv2d"(%x, %w8, %b) {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, padding = array<i64: 0, 0, 0, 0>, groups = 1 : i64, block_size = 8 : i64} : (tensor<1x8x4x4xf32>, tensor<8x8x1x1xf32>, tensor<8xf32>) -> tensor<1x8x4x4xf32>
  return %y : tensor<1x8x4x4xf32>
}
