// RUN: pconv-opt --split-input-file -p pconv-convert-to-nhwc,canonicalize,cse %s | filecheck %s
// RUN: pconv-opt --split-input-file -p 'pconv-convert-to-nhwc{pointwise-tiles=never}' %s | filecheck %s --check-prefix=IREE

// A padded depthwise conv and the ReLU after it run channels-last: one transpose in, one out,
// the filter transposed at compile time (CHW -> HWC), the conv a generic (IREE's im2col
// rewrite would make the named op 50x slower).
// CHECK-LABEL: func.func @depthwise_relu
// CHECK: %[[XT:.*]] = linalg.transpose ins(%arg0 : tensor<1x8x6x6xf32>) {{.*}} permutation = [0, 2, 3, 1]
// CHECK: %[[P:.*]] = tensor.pad %[[XT]] low[0, 1, 1, 0] high[0, 1, 1, 0]
// CHECK: } : tensor<1x6x6x8xf32> to tensor<1x8x8x8xf32>
// CHECK: %[[D:.*]] = linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction", "reduction"]} ins(%[[P]], %{{.*}} : tensor<1x8x8x8xf32>, tensor<3x3x8xf32>) outs(%{{.*}} : tensor<1x6x6x8xf32>)
// CHECK: %[[R:.*]] = linalg.generic {{.*}} ins(%[[D]] : tensor<1x6x6x8xf32>)
// CHECK: %[[Y:.*]] = linalg.transpose ins(%[[R]] : tensor<1x6x6x8xf32>) {{.*}} permutation = [0, 3, 1, 2]
// CHECK: return %[[Y]] : tensor<1x8x6x6xf32>
// CHECK-NOT: linalg.transpose
func.func @depthwise_relu(%x: tensor<1x8x6x6xf32>) -> tensor<1x8x6x6xf32> {
  %z = arith.constant 0.0 : f32
  %w = arith.constant dense<0.5> : tensor<8x3x3xf32>
  %p = tensor.pad %x low[0, 0, 1, 1] high[0, 0, 1, 1] {
  ^bb0(%a: index, %b: index, %c: index, %d: index):
    tensor.yield %z : f32
  } : tensor<1x8x6x6xf32> to tensor<1x8x8x8xf32>
  %e = tensor.empty() : tensor<1x8x6x6xf32>
  %o = linalg.fill ins(%z : f32) outs(%e : tensor<1x8x6x6xf32>) -> tensor<1x8x6x6xf32>
  %y = linalg.depthwise_conv_2d_nchw_chw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%p, %w : tensor<1x8x8x8xf32>, tensor<8x3x3xf32>) outs(%o : tensor<1x8x6x6xf32>) -> tensor<1x8x6x6xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(a, b, c, d) -> (a, b, c, d)>, affine_map<(a, b, c, d) -> (a, b, c, d)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%y : tensor<1x8x6x6xf32>) outs(%e : tensor<1x8x6x6xf32>) {
  ^bb0(%v: f32, %out: f32):
    %m = arith.maximumf %v, %z : f32
    linalg.yield %m : f32
  } -> tensor<1x8x6x6xf32>
  return %r : tensor<1x8x6x6xf32>
}

// -----

// A 1x1 conv with a bias init becomes a matmul over pixels with the (C, F) weights as its B
// operand and the cost model's tiles as a hint; a per-channel (BN-style) operand keeps its map,
// composed. With pointwise-tiles=never the (F, C) weights are its transposed B and IREE tiles it.
// CHECK-LABEL: func.func @pointwise_bias_scale
// CHECK: %[[W:.*]] = arith.constant dense<{{\[}}[1.000000e+00, 3.000000e+00, 5.000000e+00, 7.000000e+00], [2.000000e+00, 4.000000e+00, 6.000000e+00, 8.000000e+00]]> : tensor<2x4xf32>
// CHECK: %[[XT:.*]] = linalg.transpose ins(%arg0
// CHECK: %[[B:.*]] = linalg.broadcast ins(%{{.*}} : tensor<4xf32>) outs(%{{.*}} : tensor<1x3x3x4xf32>) dimensions = [0, 1, 2]
// CHECK: %[[X2:.*]] = tensor.collapse_shape %[[XT]] {{\[}}[0, 1, 2], [3]] : tensor<1x3x3x2xf32> into tensor<9x2xf32>
// CHECK: %[[B2:.*]] = tensor.collapse_shape %[[B]]
// CHECK: %[[M:.*]] = linalg.matmul {pconv.tiles = "distribution = [64, 4, 0], vector_common_parallel = [8, 16, 0], vector_reduction = [0, 0, 2]"} ins(%[[X2]], %[[W]] : tensor<9x2xf32>, tensor<2x4xf32>) outs(%[[B2]] : tensor<9x4xf32>)
// CHECK: %[[E:.*]] = tensor.expand_shape %[[M]]
// CHECK: linalg.generic {indexing_maps = [#{{.*}}, #[[MAPC:.*]], #{{.*}}], {{.*}} ins(%[[E]], %arg1 : tensor<1x3x3x4xf32>, tensor<4x1x1xf32>)
// CHECK: linalg.transpose
// CHECK-SAME: permutation = [0, 3, 1, 2]
// IREE-LABEL: func.func @pointwise_bias_scale
// IREE: linalg.matmul indexing_maps = [#{{.*}}, #{{.*}}, #{{.*}}] ins(%{{.*}}, %{{.*}} : tensor<9x2xf32>, tensor<4x2xf32>) outs(%{{.*}} : tensor<9x4xf32>)
// IREE-NOT: pconv.tiles
func.func @pointwise_bias_scale(%x: tensor<1x2x3x3xf32>, %s: tensor<4x1x1xf32>) -> tensor<1x4x3x3xf32> {
  %w = arith.constant dense<[[[[1.0]], [[2.0]]], [[[3.0]], [[4.0]]], [[[5.0]], [[6.0]]], [[[7.0]], [[8.0]]]]> : tensor<4x2x1x1xf32>
  %bias = arith.constant dense<[1.0, 2.0, 3.0, 4.0]> : tensor<4xf32>
  %e = tensor.empty() : tensor<1x4x3x3xf32>
  %b = linalg.broadcast ins(%bias : tensor<4xf32>) outs(%e : tensor<1x4x3x3xf32>) dimensions = [0, 2, 3]
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%x, %w : tensor<1x2x3x3xf32>, tensor<4x2x1x1xf32>) outs(%b : tensor<1x4x3x3xf32>) -> tensor<1x4x3x3xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(a, b, c, d) -> (a, b, c, d)>, affine_map<(a, b, c, d) -> (b, 0, 0)>, affine_map<(a, b, c, d) -> (a, b, c, d)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%y, %s : tensor<1x4x3x3xf32>, tensor<4x1x1xf32>) outs(%e : tensor<1x4x3x3xf32>) {
  ^bb0(%v: f32, %sc: f32, %out: f32):
    %m = arith.mulf %v, %sc : f32
    linalg.yield %m : f32
  } -> tensor<1x4x3x3xf32>
  return %r : tensor<1x4x3x3xf32>
}

// -----

// A stride-2 1x1 conv (ResNet's downsample) reads every other pixel through a strided slice.
// CHECK-LABEL: func.func @pointwise_strided
// CHECK: tensor.extract_slice %{{.*}}[0, 0, 0, 0] [1, 2, 2, 3] [1, 2, 2, 1] : tensor<1x4x4x3xf32> to tensor<1x2x2x3xf32>
// CHECK: linalg.matmul {pconv.tiles = {{.*}}} ins(%{{.*}}, %{{.*}} : tensor<4x3xf32>, tensor<3x5xf32>)
func.func @pointwise_strided(%x: tensor<1x3x4x4xf32>) -> tensor<1x5x2x2xf32> {
  %z = arith.constant 0.0 : f32
  %w = arith.constant dense<0.25> : tensor<5x3x1x1xf32>
  %e = tensor.empty() : tensor<1x5x2x2xf32>
  %o = linalg.fill ins(%z : f32) outs(%e : tensor<1x5x2x2xf32>) -> tensor<1x5x2x2xf32>
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>} ins(%x, %w : tensor<1x3x4x4xf32>, tensor<5x3x1x1xf32>) outs(%o : tensor<1x5x2x2xf32>) -> tensor<1x5x2x2xf32>
  return %y : tensor<1x5x2x2xf32>
}

// -----

// Must not take pconv's tiles: 512 filters on a 2x2 map, where IREE's data tiling measured
// faster (weight rows 2 KiB apart); the (F, C) weights stay its transposed B operand.
// CHECK-LABEL: func.func @pointwise_left_to_data_tiling
// CHECK: linalg.matmul indexing_maps = [#{{.*}}, #{{.*}}, #{{.*}}] ins(%{{.*}}, %{{.*}} : tensor<4x3xf32>, tensor<512x3xf32>)
// CHECK-NOT: pconv.tiles
func.func @pointwise_left_to_data_tiling(%x: tensor<1x3x2x2xf32>) -> tensor<1x512x2x2xf32> {
  %z = arith.constant 0.0 : f32
  %w = arith.constant dense<0.5> : tensor<512x3x1x1xf32>
  %e = tensor.empty() : tensor<1x512x2x2xf32>
  %o = linalg.fill ins(%z : f32) outs(%e : tensor<1x512x2x2xf32>) -> tensor<1x512x2x2xf32>
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%x, %w : tensor<1x3x2x2xf32>, tensor<512x3x1x1xf32>) outs(%o : tensor<1x512x2x2xf32>) -> tensor<1x512x2x2xf32>
  return %y : tensor<1x512x2x2xf32>
}

// -----

// A 3x3 conv followed by a max pool: both channels-last, no transpose between them.
// CHECK-LABEL: func.func @conv_pool
// CHECK: linalg.conv_2d_nhwc_hwcf {{.*}} tensor<3x3x2x4xf32>
// CHECK-NOT: linalg.transpose
// CHECK: linalg.pooling_nhwc_max
// CHECK: linalg.transpose
func.func @conv_pool(%x: tensor<1x2x6x6xf32>) -> tensor<1x4x2x2xf32> {
  %z = arith.constant 0.0 : f32
  %ninf = arith.constant 0xFF800000 : f32
  %w = arith.constant dense<0.125> : tensor<4x2x3x3xf32>
  %e = tensor.empty() : tensor<1x4x4x4xf32>
  %o = linalg.fill ins(%z : f32) outs(%e : tensor<1x4x4x4xf32>) -> tensor<1x4x4x4xf32>
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%x, %w : tensor<1x2x6x6xf32>, tensor<4x2x3x3xf32>) outs(%o : tensor<1x4x4x4xf32>) -> tensor<1x4x4x4xf32>
  %win = tensor.empty() : tensor<2x2xf32>
  %pe = tensor.empty() : tensor<1x4x2x2xf32>
  %pf = linalg.fill ins(%ninf : f32) outs(%pe : tensor<1x4x2x2xf32>) -> tensor<1x4x2x2xf32>
  %p = linalg.pooling_nchw_max {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>} ins(%y, %win : tensor<1x4x4x4xf32>, tensor<2x2xf32>) outs(%pf : tensor<1x4x2x2xf32>) -> tensor<1x4x2x2xf32>
  return %p : tensor<1x4x2x2xf32>
}

// -----

// A value read inside another op's region (a gather's tensor.extract) keeps NCHW indices: it
// gets the converted value transposed back.
// CHECK-LABEL: func.func @captured_use
// CHECK: %[[D:.*]] = linalg.generic {{.*}} outs(%{{.*}} : tensor<1x2x2x4xf32>)
// CHECK: %[[B:.*]] = linalg.transpose ins(%[[D]] : tensor<1x2x2x4xf32>) {{.*}} permutation = [0, 3, 1, 2]
// CHECK: linalg.generic
// CHECK: tensor.extract %[[B]]
func.func @captured_use(%x: tensor<1x4x2x2xf32>) -> tensor<4xf32> {
  %z = arith.constant 0.0 : f32
  %w = arith.constant dense<1.0> : tensor<4x1x1xf32>
  %e = tensor.empty() : tensor<1x4x2x2xf32>
  %o = linalg.fill ins(%z : f32) outs(%e : tensor<1x4x2x2xf32>) -> tensor<1x4x2x2xf32>
  %y = linalg.depthwise_conv_2d_nchw_chw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%x, %w : tensor<1x4x2x2xf32>, tensor<4x1x1xf32>) outs(%o : tensor<1x4x2x2xf32>) -> tensor<1x4x2x2xf32>
  %e1 = tensor.empty() : tensor<4xf32>
  %g = linalg.generic {indexing_maps = [affine_map<(c) -> (c)>], iterator_types = ["parallel"]} outs(%e1 : tensor<4xf32>) {
  ^bb0(%out: f32):
    %c = linalg.index 0 : index
    %i0 = arith.constant 0 : index
    %v = tensor.extract %y[%i0, %c, %i0, %i0] : tensor<1x4x2x2xf32>
    linalg.yield %v : f32
  } -> tensor<4xf32>
  return %g : tensor<4xf32>
}

// -----

// Must not fire: a grouped (non-depthwise) conv, a filter computed at run time, a dynamic batch.
// CHECK-LABEL: func.func @not_converted
// CHECK-NOT: linalg.transpose
// CHECK: linalg.conv_2d_ngchw_gfchw
// CHECK: linalg.conv_2d_nchw_fchw
// CHECK: linalg.conv_2d_nchw_fchw
// CHECK-NOT: nhwc
func.func @not_converted(%x: tensor<1x2x2x4x4xf32>, %wg: tensor<2x3x2x3x3xf32>, %x2: tensor<1x2x4x4xf32>, %w2: tensor<3x2x3x3xf32>,
                         %x3: tensor<?x2x4x4xf32>, %o3: tensor<?x3x2x2xf32>) -> (tensor<1x2x3x2x2xf32>, tensor<1x3x2x2xf32>, tensor<?x3x2x2xf32>) {
  %z = arith.constant 0.0 : f32
  %eg = tensor.empty() : tensor<1x2x3x2x2xf32>
  %og = linalg.fill ins(%z : f32) outs(%eg : tensor<1x2x3x2x2xf32>) -> tensor<1x2x3x2x2xf32>
  %yg = linalg.conv_2d_ngchw_gfchw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>} ins(%x, %wg : tensor<1x2x2x4x4xf32>, tensor<2x3x2x3x3xf32>) outs(%og : tensor<1x2x3x2x2xf32>) -> tensor<1x2x3x2x2xf32>
  %e2 = tensor.empty() : tensor<1x3x2x2xf32>
  %o2 = linalg.fill ins(%z : f32) outs(%e2 : tensor<1x3x2x2xf32>) -> tensor<1x3x2x2xf32>
  %y2 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%x2, %w2 : tensor<1x2x4x4xf32>, tensor<3x2x3x3xf32>) outs(%o2 : tensor<1x3x2x2xf32>) -> tensor<1x3x2x2xf32>
  %w3 = arith.constant dense<0.5> : tensor<3x2x3x3xf32>
  %y3 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%x3, %w3 : tensor<?x2x4x4xf32>, tensor<3x2x3x3xf32>) outs(%o3 : tensor<?x3x2x2xf32>) -> tensor<?x3x2x2xf32>
  return %yg, %y2, %y3 : tensor<1x2x3x2x2xf32>, tensor<1x3x2x2xf32>, tensor<?x3x2x2xf32>
}

// -----

// A pconv op (here a 1x1 block conv) stays NCHW between transposes its lowering absorbs.
// CHECK-LABEL: func.func @block_conv_sandwich
// CHECK: %[[T:.*]] = linalg.transpose {{.*}} permutation = [0, 3, 1, 2]
// CHECK: %[[B:.*]] = "pconv.block_conv2d"(%[[T]],
// CHECK: linalg.transpose ins(%[[B]] {{.*}} permutation = [0, 2, 3, 1]
func.func @block_conv_sandwich(%x: tensor<1x8x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %z = arith.constant 0.0 : f32
  %w0 = arith.constant dense<0.5> : tensor<8x8x1x1xf32>
  %e0 = tensor.empty() : tensor<1x8x4x4xf32>
  %o0 = linalg.fill ins(%z : f32) outs(%e0 : tensor<1x8x4x4xf32>) -> tensor<1x8x4x4xf32>
  %y0 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%x, %w0 : tensor<1x8x4x4xf32>, tensor<8x8x1x1xf32>) outs(%o0 : tensor<1x8x4x4xf32>) -> tensor<1x8x4x4xf32>
  %w = arith.constant dense<[[[[1.0]], [[0.0]], [[2.0]], [[0.0]], [[3.0]], [[0.0]], [[4.0]], [[0.0]]], [[[5.0]], [[0.0]], [[6.0]], [[0.0]], [[7.0]], [[0.0]], [[8.0]], [[0.0]]]]> : tensor<2x8x1x1xf32>
  %b = arith.constant dense<0.0> : tensor<2xf32>
  %y = "pconv.block_conv2d"(%y0, %w, %b) {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, padding = array<i64: 0, 0, 0, 0>, groups = 1 : i64, block_size = 2 : i64} : (tensor<1x8x4x4xf32>, tensor<2x8x1x1xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  %e1 = tensor.empty() : tensor<1x2x4x4xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%y : tensor<1x2x4x4xf32>) outs(%e1 : tensor<1x2x4x4xf32>) {
  ^bb0(%in: f32, %out: f32):
    %m = arith.maximumf %in, %z : f32
    linalg.yield %m : f32
  } -> tensor<1x2x4x4xf32>
  return %r : tensor<1x2x4x4xf32>
}
