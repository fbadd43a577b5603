// RUN: pconv-opt --split-input-file -p pconv-lower-to-linalg %s | filecheck %s

// A tuning file's choice (pconv.tuned_lowering, set by pconv_mlir/tuning/apply.py) overrides the
// cost model: this conv (one input channel) is kept dense untuned, the tuning measured the
// pattern lowering faster, with its own GEMM tiles.
// CHECK-LABEL: func.func @tuned_pattern
// CHECK: call @pconv_conv_1(%arg0, {{.*}} {pconv.lowering = "pattern (masked-rows, G=2), tuned tiles"
// CHECK: linalg.batch_matmul {pconv.tiles = "distribution = [1, 2, 32, 0], vector_common_parallel = [1, 8, 32, 0], vector_reduction = [0, 0, 0, 1]"}
func.func @tuned_pattern(%x: tensor<1x1x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %pw = arith.constant dense<[[[1.0, 2.0], [3.0, 4.0]]]> : tensor<1x2x2xf32>
  %b = arith.constant dense<[0.5, -0.5]> : tensor<2xf32>
  %y = "pconv.packed_conv2d"(%x, %pw, %b) {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, padding = array<i64: 1, 1, 1, 1>, groups = 1 : i64, block_size = 2 : i64, kernel_size = array<i64: 3, 3>, row_channels = dense<0> : tensor<1x2xi32>, row_taps = dense<[[4, 5]]> : tensor<1x2xi32>, pconv.tuned_lowering = "pattern", pconv.tuned_tiles = "distribution = [1, 2, 32, 0], vector_common_parallel = [1, 8, 32, 0], vector_reduction = [0, 0, 0, 1]"} : (tensor<1x1x4x4xf32>, tensor<1x2x2xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  return %y : tensor<1x2x4x4xf32>
}

// -----

// Tuned pattern with no tiles ("": IREE's own choice): the block GEMM carries no hint.
// CHECK-LABEL: func.func @tuned_iree_tiles
// CHECK: {pconv.lowering = "pattern (masked-rows, G=2), tuned tiles"
// CHECK-NOT: pconv.tiles
// CHECK: linalg.batch_matmul ins
func.func @tuned_iree_tiles(%x: tensor<1x1x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %pw = arith.constant dense<[[[1.0, 2.0], [3.0, 4.0]]]> : tensor<1x2x2xf32>
  %b = arith.constant dense<[0.5, -0.5]> : tensor<2xf32>
  %y = "pconv.packed_conv2d"(%x, %pw, %b) {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, padding = array<i64: 1, 1, 1, 1>, groups = 1 : i64, block_size = 2 : i64, kernel_size = array<i64: 3, 3>, row_channels = dense<0> : tensor<1x2xi32>, row_taps = dense<[[4, 5]]> : tensor<1x2xi32>, pconv.tuned_lowering = "pattern", pconv.tuned_tiles = ""} : (tensor<1x1x4x4xf32>, tensor<1x2x2xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  return %y : tensor<1x2x4x4xf32>
}

// -----

// Tuned dense: the dense lowering, whatever the cost model says.
// CHECK-LABEL: func.func @tuned_dense
// CHECK: {pconv.lowering = "dense (tuned: dense measured fastest)"
// CHECK: linalg.conv_2d_nchw_fchw
func.func @tuned_dense(%x: tensor<1x1x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %pw = arith.constant dense<[[[1.0, 2.0], [3.0, 4.0]]]> : tensor<1x2x2xf32>
  %b = arith.constant dense<[0.5, -0.5]> : tensor<2xf32>
  %y = "pconv.packed_conv2d"(%x, %pw, %b) {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, padding = array<i64: 1, 1, 1, 1>, groups = 1 : i64, block_size = 2 : i64, kernel_size = array<i64: 3, 3>, row_channels = dense<0> : tensor<1x2xi32>, row_taps = dense<[[4, 5]]> : tensor<1x2xi32>, pconv.tuned_lowering = "dense"} : (tensor<1x1x4x4xf32>, tensor<1x2x2xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  return %y : tensor<1x2x4x4xf32>
}

// -----

// Must not fire: no tuning attribute, the cost model decides (dense here) and nothing says tuned.
// CHECK-LABEL: func.func @untuned
// CHECK: {pconv.lowering = "dense (only 1 input channels
// CHECK-NOT: tuned
func.func @untuned(%x: tensor<1x1x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %pw = arith.constant dense<[[[1.0, 2.0], [3.0, 4.0]]]> : tensor<1x2x2xf32>
  %b = arith.constant dense<[0.5, -0.5]> : tensor<2xf32>
  %y = "pconv.packed_conv2d"(%x, %pw, %b) {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, padding = array<i64: 1, 1, 1, 1>, groups = 1 : i64, block_size = 2 : i64, kernel_size = array<i64: 3, 3>, row_channels = dense<0> : tensor<1x2xi32>, row_taps = dense<[[4, 5]]> : tensor<1x2xi32>} : (tensor<1x1x4x4xf32>, tensor<1x2x2xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  return %y : tensor<1x2x4x4xf32>
}
