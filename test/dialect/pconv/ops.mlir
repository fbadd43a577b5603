// RUN: pconv-opt %s | pconv-opt | filecheck %s
// Round trip of every pconv op.

// CHECK-LABEL: func.func @conv2d
// CHECK: %[[Y:.*]] = "pconv.conv2d"(%arg0, %arg1, %arg2)
// CHECK-SAME: block_size = 1 : i64, dilations = array<i64: 1, 1>, groups = 1 : i64
// CHECK-SAME: kernel_patterns = dense<{{\[}}[0, -1]]> : tensor<1x2xi8>
// CHECK-SAME: padding = array<i64: 1, 1, 1, 1>, patterns = array<i64: 1, 3, 4, 5>, strides = array<i64: 1, 1>
// CHECK-SAME: (tensor<1x2x8x8xf32>, tensor<1x2x3x3xf32>, tensor<1xf32>) -> tensor<1x1x8x8xf32>
// CHECK: return %[[Y]]
func.func @conv2d(%x: tensor<1x2x8x8xf32>, %w: tensor<1x2x3x3xf32>, %b: tensor<1xf32>) -> tensor<1x1x8x8xf32> {
  %y = "pconv.conv2d"(%x, %w, %b) {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>,
         padding = array<i64: 1, 1, 1, 1>, groups = 1 : i64, patterns = array<i64: 1, 3, 4, 5>,
         kernel_patterns = dense<[[0, -1]]> : tensor<1x2xi8>, block_size = 1 : i64}
       : (tensor<1x2x8x8xf32>, tensor<1x2x3x3xf32>, tensor<1xf32>) -> tensor<1x1x8x8xf32>
  return %y : tensor<1x1x8x8xf32>
}

// CHECK-LABEL: func.func @depthwise_strided
// CHECK: "pconv.conv2d"
// CHECK-SAME: dilations = array<i64: 2, 2>
// CHECK-SAME: groups = 2 : i64
// CHECK-SAME: padding = array<i64: 0, 1, 2, 1>
// CHECK-SAME: strides = array<i64: 2, 1>
// CHECK-SAME: -> tensor<1x2x3x7xf32>
func.func @depthwise_strided(%x: tensor<1x2x7x9xf32>, %w: tensor<2x1x3x3xf32>, %b: tensor<2xf32>) -> tensor<1x2x3x7xf32> {
  %y = "pconv.conv2d"(%x, %w, %b) {strides = array<i64: 2, 1>, dilations = array<i64: 2, 2>,
         padding = array<i64: 0, 1, 2, 1>, groups = 2 : i64, patterns = array<i64: 0, 1, 4, 7, 1, 3, 4, 5>,
         kernel_patterns = dense<[[1], [0]]> : tensor<2x1xi8>, block_size = 1 : i64}
       : (tensor<1x2x7x9xf32>, tensor<2x1x3x3xf32>, tensor<2xf32>) -> tensor<1x2x3x7xf32>
  return %y : tensor<1x2x3x7xf32>
}

// CHECK-LABEL: func.func @packed_conv2d
// CHECK: %[[P:.*]] = "pconv.packed_conv2d"(%arg0, %arg1, %arg2)
// CHECK-SAME: block_size = 2 : i64
// CHECK-SAME: kernel_size = array<i64: 3, 3>
// CHECK-SAME: row_channels = dense<{{\[}}[0, 0, 1, 1]]> : tensor<1x4xi32>
// CHECK-SAME: row_taps = dense<{{\[}}[1, 4, 4, 5]]> : tensor<1x4xi32>
// CHECK-SAME: (tensor<1x2x8x8xf32>, tensor<1x2x4xf32>, tensor<2xf32>) -> tensor<1x2x8x8xf32>
// CHECK: "pconv.permute_channels"(%[[P]]) {permutation = array<i64: 1, 0>}
func.func @packed_conv2d(%x: tensor<1x2x8x8xf32>, %pw: tensor<1x2x4xf32>, %b: tensor<2xf32>) -> tensor<1x2x8x8xf32> {
  %y = "pconv.packed_conv2d"(%x, %pw, %b) {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>,
         padding = array<i64: 1, 1, 1, 1>, groups = 1 : i64, block_size = 2 : i64, kernel_size = array<i64: 3, 3>,
         row_channels = dense<[[0, 0, 1, 1]]> : tensor<1x4xi32>, row_taps = dense<[[1, 4, 4, 5]]> : tensor<1x4xi32>}
       : (tensor<1x2x8x8xf32>, tensor<1x2x4xf32>, tensor<2xf32>) -> tensor<1x2x8x8xf32>
  %z = "pconv.permute_channels"(%y) {permutation = array<i64: 1, 0>} : (tensor<1x2x8x8xf32>) -> tensor<1x2x8x8xf32>
  return %z : tensor<1x2x8x8xf32>
}

// A 1x1 block conv (stride 2, as a ResNet downsample) and its packed form: rows are channels at tap 0.
// CHECK-LABEL: func.func @block_conv2d
// CHECK: %[[B:.*]] = "pconv.block_conv2d"(%arg0, %arg1, %arg2)
// CHECK-SAME: block_size = 2 : i64, dilations = array<i64: 1, 1>, groups = 1 : i64
// CHECK-SAME: padding = array<i64: 0, 0, 0, 0>, strides = array<i64: 2, 2>
// CHECK-SAME: (tensor<1x4x8x8xf32>, tensor<3x4x1x1xf32>, tensor<3xf32>) -> tensor<1x3x4x4xf32>
// CHECK: "pconv.packed_conv2d"(%arg0, %arg3, %arg2)
// CHECK-SAME: kernel_size = array<i64: 1, 1>
// CHECK-SAME: row_channels = dense<{{\[}}[0, 2], [1, 3]]> : tensor<2x2xi32>
// CHECK-SAME: row_taps = dense<0> : tensor<2x2xi32>
func.func @block_conv2d(%x: tensor<1x4x8x8xf32>, %w: tensor<3x4x1x1xf32>, %b: tensor<3xf32>, %pw: tensor<2x2x2xf32>) -> (tensor<1x3x4x4xf32>, tensor<1x3x4x4xf32>) {
  %y = "pconv.block_conv2d"(%x, %w, %b) {strides = array<i64: 2, 2>, dilations = array<i64: 1, 1>,
         padding = array<i64: 0, 0, 0, 0>, groups = 1 : i64, block_size = 2 : i64}
       : (tensor<1x4x8x8xf32>, tensor<3x4x1x1xf32>, tensor<3xf32>) -> tensor<1x3x4x4xf32>
  %z = "pconv.packed_conv2d"(%x, %pw, %b) {strides = array<i64: 2, 2>, dilations = array<i64: 1, 1>,
         padding = array<i64: 0, 0, 0, 0>, groups = 1 : i64, block_size = 2 : i64, kernel_size = array<i64: 1, 1>,
         row_channels = dense<[[0, 2], [1, 3]]> : tensor<2x2xi32>, row_taps = dense<0> : tensor<2x2xi32>}
       : (tensor<1x4x8x8xf32>, tensor<2x2x2xf32>, tensor<3xf32>) -> tensor<1x3x4x4xf32>
  return %y, %z : tensor<1x3x4x4xf32>, tensor<1x3x4x4xf32>
}
