// RUN: pconv-opt --split-input-file -p pconv-reorder-kernels %s | filecheck %s

// Filters alternate between two structures: sorted so equal ones are adjacent (G becomes 2);
// the restoring permutation sinks below the ReLU.
// CHECK-LABEL: func.func @alternating
// CHECK: %[[Y:.*]] = "pconv.conv2d"
// CHECK-SAME: block_size = 2 : i64
// CHECK-SAME: kernel_patterns = dense<{{\[}}[-1, 1], [-1, 1], [0, -1], [0, -1]]>
// CHECK: %[[R:.*]] = linalg.generic {{.*}} ins(%[[Y]] :
// CHECK: %[[P:.*]] = "pconv.permute_channels"(%[[R]]) {permutation = array<i64: 2, 0, 3, 1>}
// CHECK: return %[[P]]
func.func @alternating(%x: tensor<1x2x4x4xf32>) -> tensor<1x4x4x4xf32> {
  %w = arith.constant dense<[[[[0.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]], [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]], [[[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]], [[2.0, 2.0, 0.0], [0.0, 2.0, 0.0], [0.0, 2.0, 0.0]]], [[[0.0, 3.0, 0.0], [3.0, 3.0, 3.0], [0.0, 0.0, 0.0]], [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]], [[[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]], [[4.0, 4.0, 0.0], [0.0, 4.0, 0.0], [0.0, 4.0, 0.0]]]]> : tensor<4x2x3x3xf32>
  %b = arith.constant dense<[1.0, 2.0, 3.0, 4.0]> : tensor<4xf32>
  %y = "pconv.conv2d"(%x, %w, %b) {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, padding = array<i64: 1, 1, 1, 1>, groups = 1 : i64, patterns = array<i64: 1, 3, 4, 5, 0, 1, 4, 7>, kernel_patterns = dense<[[0, -1], [-1, 1], [0, -1], [-1, 1]]> : tensor<4x2xi8>, block_size = 1 : i64} : (tensor<1x2x4x4xf32>, tensor<4x2x3x3xf32>, tensor<4xf32>) -> tensor<1x4x4x4xf32>
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x4x4x4xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%y : tensor<1x4x4x4xf32>) outs(%e : tensor<1x4x4x4xf32>) {
  ^bb0(%in: f32, %out: f32):
    %m = arith.maximumf %in, %zero : f32
    linalg.yield %m : f32
  } -> tensor<1x4x4x4xf32>
  return %r : tensor<1x4x4x4xf32>
}

// -----

// A consuming pattern conv absorbs the permutation into its input channels: none is left.
// CHECK-LABEL: func.func @folds_into_consumer
// CHECK: %[[Y:.*]] = "pconv.conv2d"(%arg0
// CHECK: "pconv.conv2d"(%[[Y]],
// CHECK-NOT: pconv.permute_channels
func.func @folds_into_consumer(%x: tensor<1x2x4x4xf32>) -> tensor<1x4x4x4xf32> {
  %w = arith.constant dense<[[[[0.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]], [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]], [[[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]], [[2.0, 2.0, 0.0], [0.0, 2.0, 0.0], [0.0, 2.0, 0.0]]], [[[0.0, 3.0, 0.0], [3.0, 3.0, 3.0], [0.0, 0.0, 0.0]], [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]], [[[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]], [[4.0, 4.0, 0.0], [0.0, 4.0, 0.0], [0.0, 4.0, 0.0]]]]> : tensor<4x2x3x3xf32>
  %b = arith.constant dense<[1.0, 2.0, 3.0, 4.0]> : tensor<4xf32>
  %w2 = arith.constant dense<1.0> : tensor<4x4x3x3xf32>
  %y = "pconv.conv2d"(%x, %w, %b) {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, padding = array<i64: 1, 1, 1, 1>, groups = 1 : i64, patterns = array<i64: 1, 3, 4, 5, 0, 1, 4, 7>, kernel_patterns = dense<[[0, -1], [-1, 1], [0, -1], [-1, 1]]> : tensor<4x2xi8>, block_size = 1 : i64} : (tensor<1x2x4x4xf32>, tensor<4x2x3x3xf32>, tensor<4xf32>) -> tensor<1x4x4x4xf32>
  %z = "pconv.conv2d"(%y, %w2, %b) {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, padding = array<i64: 1, 1, 1, 1>, groups = 1 : i64, patterns = array<i64: 1, 3, 4, 5>, kernel_patterns = dense<0> : tensor<4x4xi8>, block_size = 4 : i64} : (tensor<1x4x4x4xf32>, tensor<4x4x3x3xf32>, tensor<4xf32>) -> tensor<1x4x4x4xf32>
  return %z : tensor<1x4x4x4xf32>
}

// -----

// Must not fire: the filters already share structure in groups (block_size > 1).
// CHECK-LABEL: func.func @already_grouped
// CHECK-NOT: pconv.permute_channels
// CHECK: block_size = 4 : i64
func.func @already_grouped(%x: tensor<1x2x6x6xf32>) -> tensor<1x4x6x6xf32> {
  %w = arith.constant dense<[[[[0.0, 4.0, 0.0], [5.0, 7.0, 8.0], [0.0, 0.0, 0.0]], [[1.0, 2.0, 0.0], [0.0, 7.0, 0.0], [0.0, 8.0, 0.0]]], [[[0.0, 2.0, 0.0], [3.0, 7.0, 4.0], [0.0, 0.0, 0.0]], [[3.0, 7.0, 0.0], [0.0, 3.0, 0.0], [0.0, 4.0, 0.0]]], [[[0.0, 6.0, 0.0], [5.0, 1.0, 1.0], [0.0, 0.0, 0.0]], [[7.0, 7.0, 0.0], [0.0, 7.0, 0.0], [0.0, 5.0, 0.0]]], [[[0.0, 7.0, 0.0], [3.0, 4.0, 7.0], [0.0, 0.0, 0.0]], [[1.0, 3.0, 0.0], [0.0, 1.0, 0.0], [0.0, 4.0, 0.0]]]]> : tensor<4x2x3x3xf32>
  %b = arith.constant dense<0.0> : tensor<4xf32>
  %y = "pconv.conv2d"(%x, %w, %b) {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, padding = array<i64: 1, 1, 1, 1>, groups = 1 : i64, patterns = array<i64: 1, 3, 4, 5, 0, 1, 4, 7>, kernel_patterns = dense<[[0, 1], [0, 1], [0, 1], [0, 1]]> : tensor<4x2xi8>, block_size = 4 : i64} : (tensor<1x2x6x6xf32>, tensor<4x2x3x3xf32>, tensor<4xf32>) -> tensor<1x4x6x6xf32>
  return %y : tensor<1x4x6x6xf32>
}

// -----

// A consuming 1x1 block conv, or a dense linalg conv with constant weights, absorbs the
// permutation too: their weight columns are permuted (1x1: [w0 w1 w2 w3] read in the order
// 2, 0, 3, 1 becomes [w1 w3 w0 w2]); none is left.
// CHECK-LABEL: func.func @folds_into_block_and_dense_convs
// CHECK-DAG: %[[WB:.*]] = arith.constant dense<{{\[\[\[\[}}2.000000e+00]], {{\[\[}}4.000000e+00]], {{\[\[}}1.000000e+00]], {{\[\[}}3.000000e+00]]]]> : tensor<1x4x1x1xf32>
// CHECK-DAG: %[[Y:.*]] = "pconv.conv2d"(%arg0
// CHECK-DAG: "pconv.block_conv2d"(%[[Y]], %[[WB]],
// CHECK-DAG: linalg.conv_2d_nchw_fchw {{.*}} ins(%[[Y]], %{{.*}} :
// CHECK-NOT: pconv.permute_channels
func.func @folds_into_block_and_dense_convs(%x: tensor<1x2x4x4xf32>) -> (tensor<1x1x4x4xf32>, tensor<1x1x4x4xf32>) {
  %w = arith.constant dense<[[[[0.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]], [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]], [[[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]], [[2.0, 2.0, 0.0], [0.0, 2.0, 0.0], [0.0, 2.0, 0.0]]], [[[0.0, 3.0, 0.0], [3.0, 3.0, 3.0], [0.0, 0.0, 0.0]], [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]], [[[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]], [[4.0, 4.0, 0.0], [0.0, 4.0, 0.0], [0.0, 4.0, 0.0]]]]> : tensor<4x2x3x3xf32>
  %b = arith.constant dense<[1.0, 2.0, 3.0, 4.0]> : tensor<4xf32>
  %y = "pconv.conv2d"(%x, %w, %b) {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, padding = array<i64: 1, 1, 1, 1>, groups = 1 : i64, patterns = array<i64: 1, 3, 4, 5, 0, 1, 4, 7>, kernel_patterns = dense<[[0, -1], [-1, 1], [0, -1], [-1, 1]]> : tensor<4x2xi8>, block_size = 1 : i64} : (tensor<1x2x4x4xf32>, tensor<4x2x3x3xf32>, tensor<4xf32>) -> tensor<1x4x4x4xf32>
  %w1 = arith.constant dense<[[[[1.0]], [[2.0]], [[3.0]], [[4.0]]]]> : tensor<1x4x1x1xf32>
  %b1 = arith.constant dense<0.0> : tensor<1xf32>
  %z = "pconv.block_conv2d"(%y, %w1, %b1) {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, padding = array<i64: 0, 0, 0, 0>, groups = 1 : i64, block_size = 1 : i64} : (tensor<1x4x4x4xf32>, tensor<1x4x1x1xf32>, tensor<1xf32>) -> tensor<1x1x4x4xf32>
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x1x4x4xf32>
  %init = linalg.fill ins(%zero : f32) outs(%e : tensor<1x1x4x4xf32>) -> tensor<1x1x4x4xf32>
  %d = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%y, %w1 : tensor<1x4x4x4xf32>, tensor<1x4x1x1xf32>) outs(%init : tensor<1x1x4x4xf32>) -> tensor<1x1x4x4xf32>
  return %z, %d : tensor<1x1x4x4xf32>, tensor<1x1x4x4xf32>
}
