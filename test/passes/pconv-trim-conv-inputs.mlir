// RUN: pconv-opt --split-input-file -p pconv-trim-conv-inputs %s | filecheck %s

// 5x5 stride 2 on 10x6 reads rows 0..8 and columns 0..4 only: the input is sliced to 9x5.
// CHECK-LABEL: func.func @leftover
// CHECK: %[[T:.*]] = tensor.extract_slice %arg0[0, 0, 0, 0] [1, 13, 9, 5] [1, 1, 1, 1] : tensor<1x13x10x6xf32> to tensor<1x13x9x5xf32>
// CHECK: linalg.conv_2d_nchw_fchw {{.*}} ins(%[[T]], %arg1 : tensor<1x13x9x5xf32>, tensor<7x13x5x5xf32>)
func.func @leftover(%x: tensor<1x13x10x6xf32>, %w: tensor<7x13x5x5xf32>) -> tensor<1x7x3x1xf32> {
  %z = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x7x3x1xf32>
  %o = linalg.fill ins(%z : f32) outs(%e : tensor<1x7x3x1xf32>) -> tensor<1x7x3x1xf32>
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>} ins(%x, %w : tensor<1x13x10x6xf32>, tensor<7x13x5x5xf32>) outs(%o : tensor<1x7x3x1xf32>) -> tensor<1x7x3x1xf32>
  return %y : tensor<1x7x3x1xf32>
}

// -----

// Depthwise, dilation 2, stride 2: the span is 5, 4 outputs read 2*3+5 = 11 of 12 rows.
// CHECK-LABEL: func.func @depthwise_dilated
// CHECK: tensor.extract_slice %arg0[0, 0, 0, 0] [1, 4, 11, 11] [1, 1, 1, 1]
func.func @depthwise_dilated(%x: tensor<1x4x12x12xf32>, %w: tensor<4x3x3xf32>) -> tensor<1x4x4x4xf32> {
  %z = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x4x4x4xf32>
  %o = linalg.fill ins(%z : f32) outs(%e : tensor<1x4x4x4xf32>) -> tensor<1x4x4x4xf32>
  %y = linalg.depthwise_conv_2d_nchw_chw {dilations = dense<2> : vector<2xi64>, strides = dense<2> : vector<2xi64>} ins(%x, %w : tensor<1x4x12x12xf32>, tensor<4x3x3xf32>) outs(%o : tensor<1x4x4x4xf32>) -> tensor<1x4x4x4xf32>
  return %y : tensor<1x4x4x4xf32>
}

// -----

// Must not fire: stride 2 on 9x9 with a 3x3 window reads every row and column.
// CHECK-LABEL: func.func @exact
// CHECK-NOT: tensor.extract_slice
// CHECK: linalg.conv_2d_nchw_fchw {{.*}} ins(%arg0, %arg1
func.func @exact(%x: tensor<1x2x9x9xf32>, %w: tensor<3x2x3x3xf32>) -> tensor<1x3x4x4xf32> {
  %z = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x3x4x4xf32>
  %o = linalg.fill ins(%z : f32) outs(%e : tensor<1x3x4x4xf32>) -> tensor<1x3x4x4xf32>
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>} ins(%x, %w : tensor<1x2x9x9xf32>, tensor<3x2x3x3xf32>) outs(%o : tensor<1x3x4x4xf32>) -> tensor<1x3x4x4xf32>
  return %y : tensor<1x3x4x4xf32>
}

// -----

// Must not fire: a dynamic input shape.
// CHECK-LABEL: func.func @dynamic
// CHECK-NOT: tensor.extract_slice
func.func @dynamic(%x: tensor<?x2x10x10xf32>, %w: tensor<3x2x3x3xf32>, %o: tensor<?x3x4x4xf32>) -> tensor<?x3x4x4xf32> {
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>} ins(%x, %w : tensor<?x2x10x10xf32>, tensor<3x2x3x3xf32>) outs(%o : tensor<?x3x4x4xf32>) -> tensor<?x3x4x4xf32>
  return %y : tensor<?x3x4x4xf32>
}

// -----

// A 2x2 stride-2 max pool of a 3x6 map reads rows 0..1 only (IREE 3.13 rejects the unsliced form).
// CHECK-LABEL: func.func @pool_leftover
// CHECK: %[[T:.*]] = tensor.extract_slice %arg0[0, 0, 0, 0] [1, 5, 2, 6] [1, 1, 1, 1] : tensor<1x5x3x6xf32> to tensor<1x5x2x6xf32>
// CHECK: linalg.pooling_nchw_max {{.*}} ins(%[[T]], %{{.*}} : tensor<1x5x2x6xf32>, tensor<2x2xf32>)
func.func @pool_leftover(%x: tensor<1x5x3x6xf32>) -> tensor<1x5x1x3xf32> {
  %ninf = arith.constant 0xFF800000 : f32
  %win = tensor.empty() : tensor<2x2xf32>
  %e = tensor.empty() : tensor<1x5x1x3xf32>
  %o = linalg.fill ins(%ninf : f32) outs(%e : tensor<1x5x1x3xf32>) -> tensor<1x5x1x3xf32>
  %y = linalg.pooling_nchw_max {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>} ins(%x, %win : tensor<1x5x3x6xf32>, tensor<2x2xf32>) outs(%o : tensor<1x5x1x3xf32>) -> tensor<1x5x1x3xf32>
  return %y : tensor<1x5x1x3xf32>
}
