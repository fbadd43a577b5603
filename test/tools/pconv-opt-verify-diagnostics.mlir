// --verify-diagnostics fails when an expected diagnostic is missing or an unexpected one appears.
// RUN: not pconv-opt %s --split-input-file --verify-diagnostics 2>&1 | filecheck %s

// CHECK: error: expected error "this message is never emitted" was not produced
func.func @f(%x: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  // expected-error @+1 {{this message is never emitted}}
  %y = "pconv.permute_channels"(%x) {permutation = array<i64: 1, 0>} : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  return %y : tensor<1x2x4x4xf32>
}

// -----

// CHECK: unexpected error: 'pconv.permute_channels' op 'permutation' must be a permutation
func.func @g(%x: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %y = "pconv.permute_channels"(%x) {permutation = array<i64: 1, 1>} : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  return %y : tensor<1x2x4x4xf32>
}
