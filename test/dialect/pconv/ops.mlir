// RUN: pconv-opt %s | pconv-opt | filecheck %s
// Round trip of every pconv op.

// CHECK-LABEL: func.func @conv2d
// CHECK: %[[Y:.*]] = "pconv.conv2d"(%arg0, %arg1, %arg2)
// CHECK-SAME: dilations = array<i64: 1, 1>, group_size = 1 : i64, groups = 1 : i64
// CHECK-SAME: kernel_patterns = dense<{{\[}}[0, -1]]> : tensor<1x2xi8>
// CHECK-SAME: padding = array<i64: 1, 1, 1, 1>, patterns = array<i64: 1, 3, 4, 5>, strides = array<i64: 1, 1>
// CHECK-SAME: (tensor<1x2x8x8xf32>, tensor<1x2x3x3xf32>, tensor<1xf32>) -> tensor<1x1x8x8xf32>
// CHECK: return %[[Y]]
func.func @conv2d(%x: tensor<1x2x8x8xf32>, %w: tensor<1x2x3x3xf32>, %b: tensor<1xf32>) -> tensor<1x1x8x8xf32> {
  %y = "pconv.conv2d"(%x, %w, %b) {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>,
         padding = array<i64: 1, 1, 1, 1>, groups = 1 : i64, patterns = array<i64: 1, 3, 4, 5>,
         kernel_patterns = dense<[[0, -1]]> : tensor<1x2xi8>, group_size = 1 : i64}
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
         kernel_patterns = dense<[[1], [0]]> : tensor<2x1xi8>, group_size = 1 : i64}
       : (tensor<1x2x7x9xf32>, tensor<2x1x3x3xf32>, tensor<2xf32>) -> tensor<1x2x3x7xf32>
  return %y : tensor<1x2x3x7xf32>
}

// CHECK-LABEL: func.func @packed_conv2d
// CHECK: %[[P:.*]] = "pconv.packed_conv2d"(%arg0, %arg1, %arg2)
// CHECK-SAME: group_size = 2 : i64
// CHECK-SAME: row_channels = dense<{{\[}}[0, 0, 1, 1]]> : tensor<1x4xi32>
// CHECK-SAME: row_taps = dense<{{\[}}[1, 4, 4, 5]]> : tensor<1x4xi32>
// CHECK-SAME: (tensor<1x2x8x8xf32>, tensor<1x2x4xf32>, tensor<2xf32>) -> tensor<1x2x8x8xf32>
// CHECK: "pconv.permute_channels"(%[[P]]) {permutation = array<i64: 1, 0>}
func.func @packed_conv2d(%x: tensor<1x2x8x8xf32>, %pw: tensor<1x2x4xf32>, %b: tensor<2xf32>) -> tensor<1x2x8x8xf32> {
  %y = "pconv.packed_conv2d"(%x, %pw, %b) {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>,
         padding = array<i64: 1, 1, 1, 1>, groups = 1 : i64, group_size = 2 : i64,
         row_channels = dense<[[0, 0, 1, 1]]> : tensor<1x4xi32>, row_taps = dense<[[1, 4, 4, 5]]> : tensor<1x4xi32>}
       : (tensor<1x2x8x8xf32>, tensor<1x2x4xf32>, tensor<2xf32>) -> tensor<1x2x8x8xf32>
  %z = "pconv.permute_channels"(%y) {permutation = array<i64: 1, 0>} : (tensor<1x2x8x8xf32>) -> tensor<1x2x8x8xf32>
  return %z : tensor<1x2x8x8xf32>
}
