// RUN: pconv-opt %s --split-input-file --verify-diagnostics
// Every verifier error of the pconv ops, one case per split.

func.func @f(%x: tensor<1x2x8x8xf32>, %w: tensor<1x2x3x3xf32>, %b: tensor<1xf32>) -> tensor<1x1x8x8xf32> {
  // expected-error @+1 {{pattern 0: a pattern must contain the centre tap 4}}
  %y = "pconv.conv2d"(%x, %w, %b) {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, padding = array<i64: 1, 1, 1, 1>, groups = 1 : i64, patterns = array<i64: 0, 1, 2, 3>, kernel_patterns = dense<[[0, -1]]> : tensor<1x2xi8>, block_size = 1 : i64} : (tensor<1x2x8x8xf32>, tensor<1x2x3x3xf32>, tensor<1xf32>) -> tensor<1x1x8x8xf32>
  return %y : tensor<1x1x8x8xf32>
}

// -----

func.func @f(%x: tensor<1x2x8x8xf32>, %w: tensor<1x2x3x3xf32>, %b: tensor<1xf32>) -> tensor<1x1x8x8xf32> {
  // expected-error @+1 {{'patterns' must hold 4 taps per pattern, got 6 entries}}
  %y = "pconv.conv2d"(%x, %w, %b) {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, padding = array<i64: 1, 1, 1, 1>, groups = 1 : i64, patterns = array<i64: 1, 3, 4, 5, 4, 5>, kernel_patterns = dense<[[0, -1]]> : tensor<1x2xi8>, block_size = 1 : i64} : (tensor<1x2x8x8xf32>, tensor<1x2x3x3xf32>, tensor<1xf32>) -> tensor<1x1x8x8xf32>
  return %y : tensor<1x1x8x8xf32>
}

// -----

func.func @f(%x: tensor<1x2x8x8xf32>, %w: tensor<1x2x3x3xf32>, %b: tensor<1xf32>) -> tensor<1x1x8x8xf32> {
  // expected-error @+1 {{pattern 0: taps must be distinct}}
  %y = "pconv.conv2d"(%x, %w, %b) {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, padding = array<i64: 1, 1, 1, 1>, groups = 1 : i64, patterns = array<i64: 4, 4, 5, 7>, kernel_patterns = dense<[[0, -1]]> : tensor<1x2xi8>, block_size = 1 : i64} : (tensor<1x2x8x8xf32>, tensor<1x2x3x3xf32>, tensor<1xf32>) -> tensor<1x1x8x8xf32>
  return %y : tensor<1x1x8x8xf32>
}

// -----

func.func @f(%x: tensor<1x2x8x8xf32>, %w: tensor<1x2x3x3xf32>, %b: tensor<1xf32>) -> tensor<1x1x8x8xf32> {
  // expected-error @+1 {{pattern 0: taps must lie in [0, 9)}}
  %y = "pconv.conv2d"(%x, %w, %b) {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, padding = array<i64: 1, 1, 1, 1>, groups = 1 : i64, patterns = array<i64: 4, 5, 7, 9>, kernel_patterns = dense<[[0, -1]]> : tensor<1x2xi8>, block_size = 1 : i64} : (tensor<1x2x8x8xf32>, tensor<1x2x3x3xf32>, tensor<1xf32>) -> tensor<1x1x8x8xf32>
  return %y : tensor<1x1x8x8xf32>
}

// -----

func.func @f(%x: tensor<1x2x8x8xf32>, %w: tensor<1x2x3x3xf32>, %b: tensor<1xf32>) -> tensor<1x1x8x8xf32> {
  // expected-error @+1 {{pattern ids must lie in [-1, 1)}}
  %y = "pconv.conv2d"(%x, %w, %b) {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, padding = array<i64: 1, 1, 1, 1>, groups = 1 : i64, patterns = array<i64: 1, 3, 4, 5>, kernel_patterns = dense<[[0, 1]]> : tensor<1x2xi8>, block_size = 1 : i64} : (tensor<1x2x8x8xf32>, tensor<1x2x3x3xf32>, tensor<1xf32>) -> tensor<1x1x8x8xf32>
  return %y : tensor<1x1x8x8xf32>
}

// -----

func.func @f(%x: tensor<1x2x8x8xf32>, %w: tensor<1x2x3x3xf32>, %b: tensor<1xf32>) -> tensor<1x1x8x8xf32> {
  // expected-error @+1 {{pattern ids must lie in [-1, 1)}}
  %y = "pconv.conv2d"(%x, %w, %b) {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, padding = array<i64: 1, 1, 1, 1>, groups = 1 : i64, patterns = array<i64: 1, 3, 4, 5>, kernel_patterns = dense<[[0, -2]]> : tensor<1x2xi8>, block_size = 1 : i64} : (tensor<1x2x8x8xf32>, tensor<1x2x3x3xf32>, tensor<1xf32>) -> tensor<1x1x8x8xf32>
  return %y : tensor<1x1x8x8xf32>
}

// -----

func.func @f(%x: tensor<1x2x8x8xf32>, %w: tensor<1x2x3x3xf32>, %b: tensor<1xf32>) -> tensor<1x1x8x8xf32> {
  // expected-error @+1 {{'kernel_patterns' shape [2, 2] does not match the weight's kernels [1, 2]}}
  %y = "pconv.conv2d"(%x, %w, %b) {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, padding = array<i64: 1, 1, 1, 1>, groups = 1 : i64, patterns = array<i64: 1, 3, 4, 5>, kernel_patterns = dense<0> : tensor<2x2xi8>, block_size = 1 : i64} : (tensor<1x2x8x8xf32>, tensor<1x2x3x3xf32>, tensor<1xf32>) -> tensor<1x1x8x8xf32>
  return %y : tensor<1x1x8x8xf32>
}

// -----

func.func @f(%x: tensor<1x3x8x8xf32>, %w: tensor<1x2x3x3xf32>, %b: tensor<1xf32>) -> tensor<1x1x8x8xf32> {
  // expected-error @+1 {{input has 3 channels but weights expect 2 per group x 1 groups}}
  %y = "pconv.conv2d"(%x, %w, %b) {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, padding = array<i64: 1, 1, 1, 1>, groups = 1 : i64, patterns = array<i64: 1, 3, 4, 5>, kernel_patterns = dense<[[0, -1]]> : tensor<1x2xi8>, block_size = 1 : i64} : (tensor<1x3x8x8xf32>, tensor<1x2x3x3xf32>, tensor<1xf32>) -> tensor<1x1x8x8xf32>
  return %y : tensor<1x1x8x8xf32>
}

// -----

func.func @f(%x: tensor<1x2x8x8xf32>, %w: tensor<1x2x5x5xf32>, %b: tensor<1xf32>) -> tensor<1x1x8x8xf32> {
  // expected-error @+1 {{weight must hold 3x3 kernels, got 5x5}}
  %y = "pconv.conv2d"(%x, %w, %b) {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, padding = array<i64: 1, 1, 1, 1>, groups = 1 : i64, patterns = array<i64: 1, 3, 4, 5>, kernel_patterns = dense<[[0, -1]]> : tensor<1x2xi8>, block_size = 1 : i64} : (tensor<1x2x8x8xf32>, tensor<1x2x5x5xf32>, tensor<1xf32>) -> tensor<1x1x8x8xf32>
  return %y : tensor<1x1x8x8xf32>
}

// -----

func.func @f(%x: tensor<1x2x8x8xf32>, %w: tensor<1x2x3x3xf32>, %b: tensor<1xf32>) -> tensor<1x1x8x8xf32> {
  // expected-error @+1 {{result shape [1, 1, 8, 8] does not match the convolution's [1, 1, 4, 4]}}
  %y = "pconv.conv2d"(%x, %w, %b) {strides = array<i64: 2, 2>, dilations = array<i64: 1, 1>, padding = array<i64: 1, 1, 1, 1>, groups = 1 : i64, patterns = array<i64: 1, 3, 4, 5>, kernel_patterns = dense<[[0, -1]]> : tensor<1x2xi8>, block_size = 1 : i64} : (tensor<1x2x8x8xf32>, tensor<1x2x3x3xf32>, tensor<1xf32>) -> tensor<1x1x8x8xf32>
  return %y : tensor<1x1x8x8xf32>
}

// -----

func.func @f(%x: tensor<1x2x8x8xf32>, %w: tensor<1x2x3x3xf32>, %b: tensor<1xf32>) -> tensor<1x1x8x8xf32> {
  // expected-error @+1 {{strides must be positive}}
  %y = "pconv.conv2d"(%x, %w, %b) {strides = array<i64: 0, 1>, dilations = array<i64: 1, 1>, padding = array<i64: 1, 1, 1, 1>, groups = 1 : i64, patterns = array<i64: 1, 3, 4, 5>, kernel_patterns = dense<[[0, -1]]> : tensor<1x2xi8>, block_size = 1 : i64} : (tensor<1x2x8x8xf32>, tensor<1x2x3x3xf32>, tensor<1xf32>) -> tensor<1x1x8x8xf32>
  return %y : tensor<1x1x8x8xf32>
}

// -----

func.func @f(%x: tensor<1x2x8x8xf32>, %w: tensor<1x2x3x3xf32>, %b: tensor<1xf32>) -> tensor<1x1x8x8xf32> {
  // expected-error @+1 {{'strides' must have 2 entries, got 1}}
  %y = "pconv.conv2d"(%x, %w, %b) {strides = array<i64: 1>, dilations = array<i64: 1, 1>, padding = array<i64: 1, 1, 1, 1>, groups = 1 : i64, patterns = array<i64: 1, 3, 4, 5>, kernel_patterns = dense<[[0, -1]]> : tensor<1x2xi8>, block_size = 1 : i64} : (tensor<1x2x8x8xf32>, tensor<1x2x3x3xf32>, tensor<1xf32>) -> tensor<1x1x8x8xf32>
  return %y : tensor<1x1x8x8xf32>
}

// -----

func.func @f(%x: tensor<1x2x8x8xf32>, %w: tensor<1x2x3x3xf32>, %b: tensor<1xf32>) -> tensor<1x1x8x8xf32> {
  // expected-error @+1 {{padding (top, left, bottom, right) must be non-negative}}
  %y = "pconv.conv2d"(%x, %w, %b) {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, padding = array<i64: -1, 1, 1, 1>, groups = 1 : i64, patterns = array<i64: 1, 3, 4, 5>, kernel_patterns = dense<[[0, -1]]> : tensor<1x2xi8>, block_size = 1 : i64} : (tensor<1x2x8x8xf32>, tensor<1x2x3x3xf32>, tensor<1xf32>) -> tensor<1x1x8x8xf32>
  return %y : tensor<1x1x8x8xf32>
}

// -----

func.func @f(%x: tensor<1x2x8x8xf32>, %w: tensor<1x2x3x3xf32>, %b: tensor<1xf32>) -> tensor<1x1x8x8xf32> {
  // expected-error @+1 {{the dilated 3x3 window (dilation 5) does not fit the padded input extent 10}}
  %y = "pconv.conv2d"(%x, %w, %b) {strides = array<i64: 1, 1>, dilations = array<i64: 5, 5>, padding = array<i64: 1, 1, 1, 1>, groups = 1 : i64, patterns = array<i64: 1, 3, 4, 5>, kernel_patterns = dense<[[0, -1]]> : tensor<1x2xi8>, block_size = 1 : i64} : (tensor<1x2x8x8xf32>, tensor<1x2x3x3xf32>, tensor<1xf32>) -> tensor<1x1x8x8xf32>
  return %y : tensor<1x1x8x8xf32>
}

// -----

func.func @f(%x: tensor<1x2x8x8xf32>, %w: tensor<1x2x3x3xf32>, %b: tensor<2xf32>) -> tensor<1x1x8x8xf32> {
  // expected-error @+1 {{bias has 2 entries, expected 1}}
  %y = "pconv.conv2d"(%x, %w, %b) {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, padding = array<i64: 1, 1, 1, 1>, groups = 1 : i64, patterns = array<i64: 1, 3, 4, 5>, kernel_patterns = dense<[[0, -1]]> : tensor<1x2xi8>, block_size = 1 : i64} : (tensor<1x2x8x8xf32>, tensor<1x2x3x3xf32>, tensor<2xf32>) -> tensor<1x1x8x8xf32>
  return %y : tensor<1x1x8x8xf32>
}

// -----

func.func @f(%x: tensor<1x2x8x8xf32>, %w: tensor<1x2x3x3xf32>, %b: tensor<1xf32>) -> tensor<1x1x8x8xf32> {
  // expected-error @+1 {{'kernel_patterns' must be a dense integer elements attribute}}
  %y = "pconv.conv2d"(%x, %w, %b) {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, padding = array<i64: 1, 1, 1, 1>, groups = 1 : i64, patterns = array<i64: 1, 3, 4, 5>, kernel_patterns = "zero", block_size = 1 : i64} : (tensor<1x2x8x8xf32>, tensor<1x2x3x3xf32>, tensor<1xf32>) -> tensor<1x1x8x8xf32>
  return %y : tensor<1x1x8x8xf32>
}

// -----

func.func @f(%x: tensor<1x2x8x8xf32>, %w: tensor<3x1x3x3xf32>, %b: tensor<3xf32>) -> tensor<1x3x8x8xf32> {
  // expected-error @+1 {{3 output channels are not divisible by groups = 2}}
  %y = "pconv.conv2d"(%x, %w, %b) {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, padding = array<i64: 1, 1, 1, 1>, groups = 2 : i64, patterns = array<i64: 1, 3, 4, 5>, kernel_patterns = dense<0> : tensor<3x1xi8>, block_size = 1 : i64} : (tensor<1x2x8x8xf32>, tensor<3x1x3x3xf32>, tensor<3xf32>) -> tensor<1x3x8x8xf32>
  return %y : tensor<1x3x8x8xf32>
}

// -----

func.func @f(%x: tensor<1x2x8x8xf32>, %pw: tensor<1x2x4xf32>, %b: tensor<2xf32>) -> tensor<1x2x8x8xf32> {
  // expected-error @+1 {{'row_taps' entries must lie in [0, 9), got [1, 9]}}
  %y = "pconv.packed_conv2d"(%x, %pw, %b) {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, padding = array<i64: 1, 1, 1, 1>, groups = 1 : i64, block_size = 2 : i64, kernel_size = array<i64: 3, 3>, row_channels = dense<[[0, 0, 1, 1]]> : tensor<1x4xi32>, row_taps = dense<[[1, 4, 4, 9]]> : tensor<1x4xi32>} : (tensor<1x2x8x8xf32>, tensor<1x2x4xf32>, tensor<2xf32>) -> tensor<1x2x8x8xf32>
  return %y : tensor<1x2x8x8xf32>
}

// -----

func.func @f(%x: tensor<1x2x8x8xf32>, %pw: tensor<1x2x4xf32>, %b: tensor<2xf32>) -> tensor<1x2x8x8xf32> {
  // expected-error @+1 {{'row_channels' entries must lie in [0, 2), got [0, 2]}}
  %y = "pconv.packed_conv2d"(%x, %pw, %b) {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, padding = array<i64: 1, 1, 1, 1>, groups = 1 : i64, block_size = 2 : i64, kernel_size = array<i64: 3, 3>, row_channels = dense<[[0, 0, 1, 2]]> : tensor<1x4xi32>, row_taps = dense<[[1, 4, 4, 5]]> : tensor<1x4xi32>} : (tensor<1x2x8x8xf32>, tensor<1x2x4xf32>, tensor<2xf32>) -> tensor<1x2x8x8xf32>
  return %y : tensor<1x2x8x8xf32>
}

// -----

func.func @f(%x: tensor<1x2x8x8xf32>, %pw: tensor<1x2x4xf32>, %b: tensor<2xf32>) -> tensor<1x2x8x8xf32> {
  // expected-error @+1 {{'row_channels' shape [1, 3] does not match packed_weights' [1, 4]}}
  %y = "pconv.packed_conv2d"(%x, %pw, %b) {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, padding = array<i64: 1, 1, 1, 1>, groups = 1 : i64, block_size = 2 : i64, kernel_size = array<i64: 3, 3>, row_channels = dense<0> : tensor<1x3xi32>, row_taps = dense<[[1, 4, 4, 5]]> : tensor<1x4xi32>} : (tensor<1x2x8x8xf32>, tensor<1x2x4xf32>, tensor<2xf32>) -> tensor<1x2x8x8xf32>
  return %y : tensor<1x2x8x8xf32>
}

// -----

func.func @f(%x: tensor<1x2x8x8xf32>, %pw: tensor<1x2x4xf32>, %b: tensor<2xf32>) -> tensor<1x2x8x8xf32> {
  // expected-error @+1 {{block_size attribute does not match packed_weights' block dimension 2}}
  %y = "pconv.packed_conv2d"(%x, %pw, %b) {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, padding = array<i64: 1, 1, 1, 1>, groups = 1 : i64, block_size = 4 : i64, kernel_size = array<i64: 3, 3>, row_channels = dense<[[0, 0, 1, 1]]> : tensor<1x4xi32>, row_taps = dense<[[1, 4, 4, 5]]> : tensor<1x4xi32>} : (tensor<1x2x8x8xf32>, tensor<1x2x4xf32>, tensor<2xf32>) -> tensor<1x2x8x8xf32>
  return %y : tensor<1x2x8x8xf32>
}

// -----

func.func @f(%x: tensor<1x2x8x8xf32>, %pw: tensor<1x1x4xf32>, %b: tensor<2xf32>) -> tensor<1x2x8x8xf32> {
  // expected-error @+1 {{2 output channels in blocks of 1 need 2 blocks, packed_weights has 1}}
  %y = "pconv.packed_conv2d"(%x, %pw, %b) {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, padding = array<i64: 1, 1, 1, 1>, groups = 1 : i64, block_size = 1 : i64, kernel_size = array<i64: 3, 3>, row_channels = dense<[[0, 0, 1, 1]]> : tensor<1x4xi32>, row_taps = dense<[[1, 4, 4, 5]]> : tensor<1x4xi32>} : (tensor<1x2x8x8xf32>, tensor<1x1x4xf32>, tensor<2xf32>) -> tensor<1x2x8x8xf32>
  return %y : tensor<1x2x8x8xf32>
}

// -----

func.func @f(%x: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  // expected-error @+1 {{'permutation' must be a permutation of the 2 channels, got [0, 0]}}
  %y = "pconv.permute_channels"(%x) {permutation = array<i64: 0, 0>} : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  return %y : tensor<1x2x4x4xf32>
}

// -----

func.func @f(%x: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  // expected-error @+1 {{is missing a required attribute}}
  %y = "pconv.permute_channels"(%x) : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  return %y : tensor<1x2x4x4xf32>
}

// -----

func.func @f(%x: tensor<1x4x8x8xf32>, %w: tensor<4x4x3x3xf32>, %b: tensor<4xf32>) -> tensor<1x4x8x8xf32> {
  // expected-error @+1 {{weight must hold 1x1 kernels, got 3x3}}
  %y = "pconv.block_conv2d"(%x, %w, %b) {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, padding = array<i64: 1, 1, 1, 1>, groups = 1 : i64, block_size = 2 : i64} : (tensor<1x4x8x8xf32>, tensor<4x4x3x3xf32>, tensor<4xf32>) -> tensor<1x4x8x8xf32>
  return %y : tensor<1x4x8x8xf32>
}

// -----

func.func @f(%x: tensor<1x4x8x8xf32>, %w: tensor<4x2x1x1xf32>, %b: tensor<4xf32>) -> tensor<1x4x8x8xf32> {
  // expected-error @+1 {{block convs cover groups = 1 only, got 2}}
  %y = "pconv.block_conv2d"(%x, %w, %b) {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, padding = array<i64: 0, 0, 0, 0>, groups = 2 : i64, block_size = 2 : i64} : (tensor<1x4x8x8xf32>, tensor<4x2x1x1xf32>, tensor<4xf32>) -> tensor<1x4x8x8xf32>
  return %y : tensor<1x4x8x8xf32>
}

// -----

func.func @f(%x: tensor<1x4x8x8xf32>, %w: tensor<4x4x1x1xf32>, %b: tensor<4xf32>) -> tensor<1x4x8x8xf32> {
  // expected-error @+1 {{block_size must be positive}}
  %y = "pconv.block_conv2d"(%x, %w, %b) {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, padding = array<i64: 0, 0, 0, 0>, groups = 1 : i64, block_size = 0 : i64} : (tensor<1x4x8x8xf32>, tensor<4x4x1x1xf32>, tensor<4xf32>) -> tensor<1x4x8x8xf32>
  return %y : tensor<1x4x8x8xf32>
}

// -----

func.func @f(%x: tensor<1x4x8x8xf32>, %w: tensor<4x4x1x1xf32>, %b: tensor<4xf32>) -> tensor<1x4x8x8xf32> {
  // expected-error @+1 {{result shape [1, 4, 8, 8] does not match the convolution's [1, 4, 4, 4]}}
  %y = "pconv.block_conv2d"(%x, %w, %b) {strides = array<i64: 2, 2>, dilations = array<i64: 1, 1>, padding = array<i64: 0, 0, 0, 0>, groups = 1 : i64, block_size = 2 : i64} : (tensor<1x4x8x8xf32>, tensor<4x4x1x1xf32>, tensor<4xf32>) -> tensor<1x4x8x8xf32>
  return %y : tensor<1x4x8x8xf32>
}

// -----

func.func @f(%x: tensor<1x4x8x8xf32>, %pw: tensor<2x2x2xf32>, %b: tensor<4xf32>) -> tensor<1x4x8x8xf32> {
  // expected-error @+1 {{'row_taps' entries must lie in [0, 1), got [0, 4]}}
  %y = "pconv.packed_conv2d"(%x, %pw, %b) {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, padding = array<i64: 0, 0, 0, 0>, groups = 1 : i64, block_size = 2 : i64, kernel_size = array<i64: 1, 1>, row_channels = dense<[[0, 2], [1, 3]]> : tensor<2x2xi32>, row_taps = dense<[[0, 4], [0, 0]]> : tensor<2x2xi32>} : (tensor<1x4x8x8xf32>, tensor<2x2x2xf32>, tensor<4xf32>) -> tensor<1x4x8x8xf32>
  return %y : tensor<1x4x8x8xf32>
}

// -----

func.func @f(%x: tensor<1x4x8x8xf32>, %pw: tensor<2x2x2xf32>, %b: tensor<4xf32>) -> tensor<1x4x6x6xf32> {
  // expected-error @+1 {{kernel_size must be [3, 3] (patterns) or [1, 1] (blocks), got [3, 1]}}
  %y = "pconv.packed_conv2d"(%x, %pw, %b) {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, padding = array<i64: 0, 0, 0, 0>, groups = 1 : i64, block_size = 2 : i64, kernel_size = array<i64: 3, 1>, row_channels = dense<[[0, 2], [1, 3]]> : tensor<2x2xi32>, row_taps = dense<0> : tensor<2x2xi32>} : (tensor<1x4x8x8xf32>, tensor<2x2x2xf32>, tensor<4xf32>) -> tensor<1x4x6x6xf32>
  return %y : tensor<1x4x6x6xf32>
}
