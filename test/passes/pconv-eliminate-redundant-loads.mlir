// RUN: pconv-opt --split-input-file -p pconv-eliminate-redundant-loads %s | filecheck %s

// Two groups gathering the same rows: merged, the rows are loaded once for both filters.
// CHECK-LABEL: func.func @same_rows
// CHECK: %[[PW:.*]] = arith.constant dense<{{\[\[\[}}1.000000e+00, 2.000000e+00], [3.000000e+00, 4.000000e+00]]]> : tensor<1x2x2xf32>
// CHECK: "pconv.packed_conv2d"(%arg0, %[[PW]],
// CHECK-SAME: block_size = 2 : i64
// CHECK-SAME: row_channels = dense<0> : tensor<1x2xi32>
// CHECK-SAME: row_taps = dense<{{\[}}[4, 5]]> : tensor<1x2xi32>
func.func @same_rows(%x: tensor<1x1x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %pw = arith.constant dense<[[[1.0, 2.0]], [[3.0, 4.0]]]> : tensor<2x1x2xf32>
  %b = arith.constant dense<0.0> : tensor<2xf32>
  %y = "pconv.packed_conv2d"(%x, %pw, %b) {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, padding = array<i64: 1, 1, 1, 1>, groups = 1 : i64, block_size = 1 : i64, kernel_size = array<i64: 3, 3>, row_channels = dense<[[0, 0], [0, 0]]> : tensor<2x2xi32>, row_taps = dense<[[4, 5], [4, 5]]> : tensor<2x2xi32>} : (tensor<1x1x4x4xf32>, tensor<2x1x2xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  return %y : tensor<1x2x4x4xf32>
}

// -----

// Must not fire: the groups read disjoint rows, merging would only add zero MACs.
// CHECK-LABEL: func.func @disjoint_rows
// CHECK: "pconv.packed_conv2d"
// CHECK-SAME: block_size = 1 : i64
// CHECK-SAME: row_taps = dense<{{\[}}[4, 5], [0, 1]]>
func.func @disjoint_rows(%x: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %pw = arith.constant dense<[[[1.0, 2.0]], [[3.0, 4.0]]]> : tensor<2x1x2xf32>
  %b = arith.constant dense<0.0> : tensor<2xf32>
  %y = "pconv.packed_conv2d"(%x, %pw, %b) {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, padding = array<i64: 1, 1, 1, 1>, groups = 1 : i64, block_size = 1 : i64, kernel_size = array<i64: 3, 3>, row_channels = dense<[[0, 0], [1, 1]]> : tensor<2x2xi32>, row_taps = dense<[[4, 5], [0, 1]]> : tensor<2x2xi32>} : (tensor<1x2x4x4xf32>, tensor<2x1x2xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  return %y : tensor<1x2x4x4xf32>
}

// -----

// Must not fire: 1x1 blocks, even with the same rows (their G came from pruning and their rows
// are whole input-channel planes).
// CHECK-LABEL: func.func @pointwise_blocks
// CHECK: "pconv.packed_conv2d"
// CHECK-SAME: block_size = 1 : i64
func.func @pointwise_blocks(%x: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %pw = arith.constant dense<[[[1.0]], [[3.0]]]> : tensor<2x1x1xf32>
  %b = arith.constant dense<0.0> : tensor<2xf32>
  %y = "pconv.packed_conv2d"(%x, %pw, %b) {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, padding = array<i64: 0, 0, 0, 0>, groups = 1 : i64, block_size = 1 : i64, kernel_size = array<i64: 1, 1>, row_channels = dense<0> : tensor<2x1xi32>, row_taps = dense<0> : tensor<2x1xi32>} : (tensor<1x2x4x4xf32>, tensor<2x1x1xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  return %y : tensor<1x2x4x4xf32>
}
