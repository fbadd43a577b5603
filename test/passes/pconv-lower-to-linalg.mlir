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
// pixels for a 2x2 output, extra columns sliced off), no mask. So few pixels (<= 8) go on the GEMM's
// rows and the filters on its vector lanes, with (R, G) weights, and the product is transposed back;
// the larger maps of the other cases keep the pixels on the lanes.
// CHECK-LABEL: func.func @valid_conv
// CHECK: call @pconv_conv_1(%arg0, {{.*}} {pconv.lowering = "pattern (rows, G=2)", pconv.storage = {{.*}}}
// CHECK: func.func private @pconv_conv_1({{.*}}: tensor<1x8x2xf32>
// CHECK-NOT: tensor<3x
// CHECK: linalg.batch_matmul indexing_maps = {{.*}} ins({{.*}} : tensor<1x8x8xf32>, tensor<1x8x2xf32>) {{.*}} -> tensor<1x8x2xf32>
// CHECK: linalg.transpose {{.*}} permutation = [0, 2, 1]
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
// takes it without force (4x fewer MACs, the gathers read a quarter of the input).
// CHECK-LABEL: func.func @block_conv
// CHECK: call @pconv_conv_1(%arg0, {{.*}} {pconv.lowering = "blocks (rows, G=2, 2 blocks x 16 channels, 4.00x fewer MACs)", pconv.storage = {{.*}}}
// CHECK: func.func private @pconv_conv_1
// CHECK-NOT: tensor.pad
// CHECK: tensor.collapse_shape {{.*}} into tensor<1x64x16xf32>
// CHECK: linalg.batch_matmul {pconv.tiles = {{.*}}} {{.*}} -> tensor<2x2x16xf32>
// COST-LABEL: func.func @block_conv
// COST: pconv.lowering = "blocks (rows, G=2
func.func @block_conv(%x: tensor<1x64x4x4xf32>) -> tensor<1x4x4x4xf32> {
  %pw = arith.constant dense<[[[-4.0, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0, -4.0, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0], [-1.0, 0.0, 1.0, 2.0, 3.0, 4.0, -4.0, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0, -4.0]], [[3.0, 4.0, -4.0, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0, -4.0, -3.0, -2.0, -1.0, 0.0], [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0, -4.0, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0]]]> : tensor<2x2x16xf32>
  %b = arith.constant dense<[0.5, -0.5, 1.0, 2.0]> : tensor<4xf32>
  %y = "pconv.packed_conv2d"(%x, %pw, %b) {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, padding = array<i64: 0, 0, 0, 0>, groups = 1 : i64, block_size = 2 : i64, kernel_size = array<i64: 1, 1>, row_channels = dense<[[0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44, 48, 52, 56, 60], [1, 5, 9, 13, 17, 21, 25, 29, 33, 37, 41, 45, 49, 53, 57, 61]]> : tensor<2x16xi32>, row_taps = dense<0> : tensor<2x16xi32>} : (tensor<1x64x4x4xf32>, tensor<2x2x16xf32>, tensor<4xf32>) -> tensor<1x4x4x4xf32>
  return %y : tensor<1x4x4x4xf32>
}

// -----

// The same block conv between the transposes pconv-convert-to-nhwc leaves: it reads and writes
// channels-last itself. Each pixel's kept channels are gathered pixel-major, the batched GEMM is
// [blocks, pixels, rows] . [blocks, rows, G] with the dense 1x1 conv's tiles per block, and the
// bias add writes NHWC; no transpose is left.
// CHECK-LABEL: func.func @block_conv_nhwc
// CHECK: call @pconv_conv_1(%arg0, {{.*}} {pconv.lowering = "blocks (pixel gather, G=2, 2 blocks x 16 channels, 4.00x fewer MACs), NHWC"
// CHECK-NOT: linalg.transpose
// CHECK: func.func private @pconv_conv_1(%arg0: tensor<1x4x4x64xf32>
// CHECK: tensor.extract %arg0[{{.*}}] : tensor<1x4x4x64xf32>
// CHECK: linalg.batch_matmul {pconv.tiles = "distribution = [1, 16, 2, 0], vector_common_parallel = [1, 8, 2, 0], vector_reduction = [0, 0, 0, 16]"} {{.*}} -> tensor<2x16x2xf32>
// CHECK-NOT: linalg.transpose
// CHECK: return {{.*}} : tensor<1x4x4x4xf32>
func.func @block_conv_nhwc(%x: tensor<1x4x4x64xf32>) -> tensor<1x4x4x4xf32> {
  %pw = arith.constant dense<[[[-4.0, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0, -4.0, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0], [-1.0, 0.0, 1.0, 2.0, 3.0, 4.0, -4.0, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0, -4.0]], [[3.0, 4.0, -4.0, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0, -4.0, -3.0, -2.0, -1.0, 0.0], [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0, -4.0, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0]]]> : tensor<2x2x16xf32>
  %b = arith.constant dense<[0.5, -0.5, 1.0, 2.0]> : tensor<4xf32>
  %xe = tensor.empty() : tensor<1x64x4x4xf32>
  %xn = linalg.transpose ins(%x : tensor<1x4x4x64xf32>) outs(%xe : tensor<1x64x4x4xf32>) permutation = [0, 3, 1, 2]
  %y = "pconv.packed_conv2d"(%xn, %pw, %b) {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, padding = array<i64: 0, 0, 0, 0>, groups = 1 : i64, block_size = 2 : i64, kernel_size = array<i64: 1, 1>, row_channels = dense<[[0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44, 48, 52, 56, 60], [1, 5, 9, 13, 17, 21, 25, 29, 33, 37, 41, 45, 49, 53, 57, 61]]> : tensor<2x16xi32>, row_taps = dense<0> : tensor<2x16xi32>} : (tensor<1x64x4x4xf32>, tensor<2x2x16xf32>, tensor<4xf32>) -> tensor<1x4x4x4xf32>
  %ye = tensor.empty() : tensor<1x4x4x4xf32>
  %yt = linalg.transpose ins(%y : tensor<1x4x4x4xf32>) outs(%ye : tensor<1x4x4x4xf32>) permutation = [0, 2, 3, 1]
  return %yt : tensor<1x4x4x4xf32>
}

// -----

// Must not fire without force: each block keeps 4 of 16 channels, packed as 8 rows, so the block
// GEMM would reduce over 8; the cost model keeps the conv a dense one and says why.
// COST-LABEL: func.func @block_conv_short_rows
// COST: pconv.lowering = "dense (each block keeps only 8 input channels (< 16)
// COST: linalg.conv_2d_nchw_fchw
// COST-NOT: linalg.batch_matmul
// With force it is lowered as blocks all the same:
// CHECK-LABEL: func.func @block_conv_short_rows
// CHECK: call @pconv_conv_1(%arg0, {{.*}} {pconv.lowering = "blocks (rows, G=2, 2 blocks x 8 channels, 2.00x fewer MACs)", pconv.storage = {{.*}}}
// CHECK: func.func private @pconv_conv_1
// CHECK-NOT: tensor.pad
// CHECK: tensor.collapse_shape {{.*}} into tensor<1x16x16xf32>
// CHECK: linalg.batch_matmul {pconv.tiles = {{.*}}} {{.*}} -> tensor<2x2x16xf32>
func.func @block_conv_short_rows(%x: tensor<1x16x4x4xf32>) -> tensor<1x4x4x4xf32> {
  %pw = arith.constant dense<[[[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]], [[-1.0, -2.0, -3.0, -4.0], [-5.0, -6.0, -7.0, -8.0]]]> : tensor<2x2x4xf32>
  %b = arith.constant dense<[0.5, -0.5, 1.0, 2.0]> : tensor<4xf32>
  %y = "pconv.packed_conv2d"(%x, %pw, %b) {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, padding = array<i64: 0, 0, 0, 0>, groups = 1 : i64, block_size = 2 : i64, kernel_size = array<i64: 1, 1>, row_channels = dense<[[0, 3, 5, 9], [1, 2, 12, 15]]> : tensor<2x4xi32>, row_taps = dense<0> : tensor<2x4xi32>} : (tensor<1x16x4x4xf32>, tensor<2x2x4xf32>, tensor<4xf32>) -> tensor<1x4x4x4xf32>
  return %y : tensor<1x4x4x4xf32>
}

// -----

// A stride-2 1x1 block conv (a ResNet downsample) takes the exact-pixel gather; its 4 output pixels
// go on the GEMM's rows.
// CHECK-LABEL: func.func @block_conv_strided
// CHECK: pconv.lowering = "blocks (gather, G=2
// CHECK: linalg.batch_matmul indexing_maps = {{.*}} -> tensor<2x4x2xf32>
func.func @block_conv_strided(%x: tensor<1x16x4x4xf32>) -> tensor<1x4x2x2xf32> {
  %pw = arith.constant dense<[[[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]], [[-1.0, -2.0, -3.0, -4.0], [-5.0, -6.0, -7.0, -8.0]]]> : tensor<2x2x4xf32>
  %b = arith.constant dense<0.0> : tensor<4xf32>
  %y = "pconv.packed_conv2d"(%x, %pw, %b) {strides = array<i64: 2, 2>, dilations = array<i64: 1, 1>, padding = array<i64: 0, 0, 0, 0>, groups = 1 : i64, block_size = 2 : i64, kernel_size = array<i64: 1, 1>, row_channels = dense<[[0, 3, 5, 9], [1, 2, 12, 15]]> : tensor<2x4xi32>, row_taps = dense<0> : tensor<2x4xi32>} : (tensor<1x16x4x4xf32>, tensor<2x2x4xf32>, tensor<4xf32>) -> tensor<1x4x2x2xf32>
  return %y : tensor<1x4x2x2xf32>
}
