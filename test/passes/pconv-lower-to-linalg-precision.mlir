// RUN: pconv-opt --split-input-file -p "pconv-lower-to-linalg{force=true precision=fp16-storage}" %s | filecheck %s --check-prefix=STORE
// RUN: pconv-opt --split-input-file -p "pconv-lower-to-linalg{force=true precision=fp16}" %s | filecheck %s --check-prefix=HALF
// RUN: not pconv-opt -p "pconv-lower-to-linalg{precision=fp8}" %s 2>&1 | filecheck %s --check-prefix=BAD

// fp16-storage: the packed weights are f16 (half the bytes; rows padded to 8), widened by the GEMM; rows and the
// accumulator stay f32.
// STORE-LABEL: func.func @packed
// STORE: pconv.precision = "fp16-storage", pconv.storage = {dense_bytes = 72 : i64, index_bytes = 16 : i64, nonzero_bytes = 8 : i64, packed_bytes = 8 : i64}
// STORE: func.func private @pconv_conv_1({{.*}}%arg1: tensor<1x2x8xf16>
// STORE: linalg.batch_matmul {{.*}}ins({{.*}} : tensor<1x2x8xf16>, tensor<1x8x16xf32>) outs({{.*}} : tensor<1x2x16xf32>)
// fp16: rows narrowed in the gather, f16 accumulation, the bias epilogue widens to f32.
// HALF-LABEL: func.func @packed
// HALF: pconv.precision = "fp16"
// HALF: arith.truncf {{.*}} : f32 to f16
// HALF: linalg.batch_matmul {{.*}}ins({{.*}} : tensor<1x2x8xf16>, tensor<1x8x16xf16>) outs({{.*}} : tensor<1x2x16xf16>)
// HALF: arith.extf {{.*}} : f16 to f32
// HALF: return {{.*}} : tensor<1x2x4x4xf32>
// BAD: precision must be one of fp32, fp16-storage, fp16, got 'fp8'
func.func @packed(%x: tensor<1x1x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %pw = arith.constant dense<[[[1.0, 2.0], [3.0, 4.0]]]> : tensor<1x2x2xf32>
  %b = arith.constant dense<[0.5, -0.5]> : tensor<2xf32>
  %y = "pconv.packed_conv2d"(%x, %pw, %b) {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, padding = array<i64: 1, 1, 1, 1>, groups = 1 : i64, block_size = 2 : i64, kernel_size = array<i64: 3, 3>, row_channels = dense<0> : tensor<1x2xi32>, row_taps = dense<[[4, 5]]> : tensor<1x2xi32>} : (tensor<1x1x4x4xf32>, tensor<1x2x2xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  return %y : tensor<1x2x4x4xf32>
}

// -----

// Must not fire: a depthwise conv gets the fp32 depthwise lowering whatever the precision (no
// f16 anywhere, no precision tag).
// STORE-LABEL: func.func @depthwise
// STORE-NOT: f16
// STORE-NOT: pconv.precision
// STORE: return
// HALF-LABEL: func.func @depthwise
// HALF-NOT: f16
// HALF: return
func.func @depthwise(%x: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %w = arith.constant dense<[[[[0.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]], [[[0.0, 2.0, 0.0], [2.0, 2.0, 0.0], [0.0, 2.0, 0.0]]]]> : tensor<2x1x3x3xf32>
  %b = arith.constant dense<[0.5, -0.5]> : tensor<2xf32>
  %y = "pconv.conv2d"(%x, %w, %b) {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, padding = array<i64: 1, 1, 1, 1>, groups = 2 : i64, patterns = array<i64: 1, 3, 4, 5, 1, 3, 4, 7>, kernel_patterns = dense<[[0], [1]]> : tensor<2x1xi8>, block_size = 1 : i64} : (tensor<1x2x4x4xf32>, tensor<2x1x3x3xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  return %y : tensor<1x2x4x4xf32>
}
