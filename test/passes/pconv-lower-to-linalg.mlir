// RUN: pconv-opt --split-input-file -p "pconv-lower-to-linalg{force=true}" %s | filecheck %s
// RUN: pconv-opt --split-input-file -p pconv-lower-to-linalg %s | filecheck %s --check-prefix=COST

// A packed conv becomes a call to a private function of linalg ops; no pconv op is left.
// CHECK-LABEL: func.func @packed
// CHECK: call @pconv_conv_1(%arg0, {{.*}} {pconv.lowering = "pattern (masked-rows, G=2)", pconv.storage = {dense_bytes = 72 : i64, index_bytes = 16 : i64, nonzero_bytes = 16 : i64, packed_bytes = 16 : i64}}
// CHECK-NOT: pconv.packed_conv2d
// CHECK: func.func private @pconv_conv_1
// A stride-1 conv as wide as its input: padded in H only, one more zero row above and below;
// rows over exactly the 16 output pixels, the wrapped row edges masked by a [dx, pixel] table.
// CHECK: tensor.pad %{{.*}} low[0, 0, 2, 0] high[0, 0, 2, 0]
// CHECK: tensor.collapse_shape {{.*}} into tensor<1x1x32xf32>
// CHECK: tensor.extract %{{.*}} : tensor<3x16xi32>
// CHECK: arith.select
// The block GEMM carries its measured CPU tiles (the handoff to IREE uses or drops them).
// CHECK: linalg.batch_matmul {pconv.tiles = "distribution = [1, 2, 64, 0], vector_common_parallel = [1, 8, 32, 0], vector_reduction = [0, 0, 0, 1]"} {{.*}} -> tensor<1x2x16xf32>
// Without force, a conv this small (one input channel) is kept dense by the cost model.
// COST-LABEL: func.func @packed
// COST: call @pconv_conv_1(%arg0, {{.*}} {pconv.lowering = "dense (
// COST: func.func private @pconv_conv_1
// COST: linalg.conv_2d_nchw_fchw
func.func @packed(%x: tensor<1x1x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %pw = arith.constant dense<[[[1.0, 2.0], [3.0, 4.0]]]> : tensor<1x2x2xf32>
  %b = arith.constant dense<[0.5, -0.5]> : tensor<2xf32>
  %y = "pconv.packed_conv2d"(%x, %pw, %b) {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, padding = array<i64: 1, 1, 1, 1>, groups = 1 : i64, block_size = 2 : i64, kernel_size = array<i64: 3, 3>, row_channels = dense<0> : tensor<1x2xi32>, row_taps = dense<[[4, 5]]> : tensor<1x2xi32>} : (tensor<1x1x4x4xf32>, tensor<1x2x2xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  return %y : tensor<1x2x4x4xf32>
}

// -----

// Without padding the output is narrower than the input: rows over the input width (2 rows of 4
// pixels for a 2x2 output, extra columns sliced off), no mask.
// CHECK-LABEL: func.func @valid_conv
// CHECK: call @pconv_conv_1(%arg0, {{.*}} {pconv.lowering = "pattern (rows, G=2)", pconv.storage = {{.*}}}
// CHECK: func.func private @pconv_conv_1
// CHECK-NOT: tensor<3x
// CHECK: linalg.batch_matmul {{.*}} -> tensor<1x2x8xf32>
// CHECK: tensor.extract_slice {{.*}} to tensor<2x1x2x2xf32>
func.func @valid_conv(%x: tensor<1x1x4x4xf32>) -> tensor<1x2x2x2xf32> {
  %pw = arith.constant dense<[[[1.0, 2.0], [3.0, 4.0]]]> : tensor<1x2x2xf32>
  %b = arith.constant dense<[0.5, -0.5]> : tensor<2xf32>
  %y = "pconv.packed_conv2d"(%x, %pw, %b) {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, padding = array<i64: 0, 0, 0, 0>, groups = 1 : i64, block_size = 2 : i64, kernel_size = array<i64: 3, 3>, row_channels = dense<0> : tensor<1x2xi32>, row_taps = dense<[[4, 5]]> : tensor<1x2xi32>} : (tensor<1x1x4x4xf32>, tensor<1x2x2xf32>, tensor<2xf32>) -> tensor<1x2x2x2xf32>
  return %y : tensor<1x2x2x2xf32>
}

// -----

// A leftover permutation becomes a gather generic.
// CHECK-LABEL: func.func @permute
// CHECK: call @pconv_permute_1(%arg0) {pconv.lowering = "gather"}
// CHECK: func.func private @pconv_permute_1
// CHECK: tensor.extract
func.func @permute(%x: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %y = "pconv.permute_channels"(%x) {permutation = array<i64: 1, 0>} : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  return %y : tensor<1x2x4x4xf32>
}

// -----

// Must not fire: nothing of pconv in the input.
// CHECK-LABEL: func.func @plain
// CHECK-NEXT: arith.addf
// CHECK-NOT: call
func.func @plain(%a: f32) -> f32 {
  %0 = arith.addf %a, %a : f32
  return %0 : f32
}

// -----

// A packed 1x1 block conv: each block gathers its kept input-channel planes (rows over the
// input width, no padding and no mask), then one batched GEMM over the blocks; the cost model
// takes it without force (4x fewer MACs, the gathers read the input once).
// CHECK-LABEL: func.func @block_conv
// CHECK: call @pconv_conv_1(%arg0, {{.*}} {pconv.lowering = "blocks (rows, G=2, 2 blocks x 8 channels, 2.00x fewer MACs)", pconv.storage = {{.*}}}
// CHECK: func.func private @pconv_conv_1
// CHECK-NOT: tensor.pad
// CHECK: tensor.collapse_shape {{.*}} into tensor<1x16x16xf32>
// CHECK: linalg.batch_matmul {pconv.tiles = {{.*}}} {{.*}} -> tensor<2x2x16xf32>
// COST-LABEL: func.func @block_conv
// COST: pconv.lowering = "blocks (rows, G=2
func.func @block_conv(%x: tensor<1x16x4x4xf32>) -> tensor<1x4x4x4xf32> {
  %pw = arith.constant dense<[[[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]], [[-1.0, -2.0, -3.0, -4.0], [-5.0, -6.0, -7.0, -8.0]]]> : tensor<2x2x4xf32>
  %b = arith.constant dense<[0.5, -0.5, 1.0, 2.0]> : tensor<4xf32>
  %y = "pconv.packed_conv2d"(%x, %pw, %b) {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, padding = array<i64: 0, 0, 0, 0>, groups = 1 : i64, block_size = 2 : i64, kernel_size = array<i64: 1, 1>, row_channels = dense<[[0, 3, 5, 9], [1, 2, 12, 15]]> : tensor<2x4xi32>, row_taps = dense<0> : tensor<2x4xi32>} : (tensor<1x16x4x4xf32>, tensor<2x2x4xf32>, tensor<4xf32>) -> tensor<1x4x4x4xf32>
  return %y : tensor<1x4x4x4xf32>
}

// -----

// A stride-2 1x1 block conv (a ResNet downsample) takes the exact-pixel gather.
// CHECK-LABEL: func.func @block_conv_strided
// CHECK: pconv.lowering = "blocks (gather, G=2
// CHECK: linalg.batch_matmul {{.*}} -> tensor<2x2x4xf32>
func.func @block_conv_strided(%x: tensor<1x16x4x4xf32>) -> tensor<1x4x2x2xf32> {
  %pw = arith.constant dense<[[[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]], [[-1.0, -2.0, -3.0, -4.0], [-5.0, -6.0, -7.0, -8.0]]]> : tensor<2x2x4xf32>
  %b = arith.constant dense<0.0> : tensor<4xf32>
  %y = "pconv.packed_conv2d"(%x, %pw, %b) {strides = array<i64: 2, 2>, dilations = array<i64: 1, 1>, padding = array<i64: 0, 0, 0, 0>, groups = 1 : i64, block_size = 2 : i64, kernel_size = array<i64: 1, 1>, row_channels = dense<[[0, 3, 5, 9], [1, 2, 12, 15]]> : tensor<2x4xi32>, row_taps = dense<0> : tensor<2x4xi32>} : (tensor<1x16x4x4xf32>, tensor<2x2x4xf32>, tensor<4xf32>) -> tensor<1x4x2x2xf32>
  return %y : tensor<1x4x2x2xf32>
}
