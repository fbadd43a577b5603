// RUN: pconv-opt --split-input-file -p pconv-eliminate-dead-channels %s | filecheck %s

// An inverted residual whose projection reads channels 1, 2, 5, 6 of 8: the expansion keeps
// those 4 filters, the per-channel scale its 4 entries, the clamp, the pad and the depthwise
// conv run on 4 channels, and the projection's weights drop their zero columns.
// CHECK-LABEL: func.func @inverted_residual
// CHECK: %[[A:.*]] = linalg.conv_2d_nchw_fchw {{.*}}pconv.dead_channels = "4 of its 8 filters fed no weight of the next conv: cut"{{.*}} tensor<4x4x1x1xf32>) outs({{.*}} : tensor<1x4x5x5xf32>)
// CHECK: linalg.generic {{.*}} ins(%[[A]], %{{.*}} : tensor<1x4x5x5xf32>, tensor<4x1x1xf32>)
// CHECK: linalg.generic {{.*}} ins(%{{.*}}, %{{.*}} : tensor<f32>, tensor<1x4x5x5xf32>)
// CHECK: tensor.pad %{{.*}} low[0, 0, 1, 1] high[0, 0, 1, 1]
// CHECK: } : tensor<1x4x5x5xf32> to tensor<1x4x7x7xf32>
// CHECK: linalg.depthwise_conv_2d_nchw_chw {{.*}} tensor<1x4x7x7xf32>, tensor<4x3x3xf32>)
// CHECK: linalg.conv_2d_nchw_fchw {{.*}}pconv.dead_channels = "4 of 8 input channels had no weight: cut, with the ops that made them"{{.*}} tensor<1x4x5x5xf32>, tensor<4x4x1x1xf32>)
// CHECK-NOT: tensor<8x
func.func @inverted_residual(%x: tensor<1x4x5x5xf32>) -> tensor<1x4x5x5xf32> {
  %z = arith.constant 0.0 : f32
  %six = arith.constant dense<6.0> : tensor<f32>
  %w1 = arith.constant dense<"0xB81E053EB81E05BE0AD7233FCDCCCC3D713D0ABFEC51B83E6666A63F3333733F333333BF5C8FA2BF52B81EBF0AD7233DB81E15C0AE4761BE0000A0BF48E13ABF713D0ABF0AD7A3BE85EBD13EB81E853FB81E05BE295CAF3F1F852BBF3333B33E6666663FEC51B83DA4703DBF1F856BBF1F85EBBEAE47613EAE4781BF3D0A57BE"> : tensor<8x4x1x1xf32>
  %sc = arith.constant dense<"0x0AD723BE713D0A3F3D0A573EEC51B83E666626BFB81E05BE14AE473F52B8BE3F"> : tensor<8xf32>
  %wd4 = arith.constant dense<"0xAE47A1BFAE47C13FCDCCAC3F14AE473FB81E853E52B89EBE48E1BA3F48E1FA3F6666E63FC3F5A83FEC51B83E48E19ABF00000080C3F5283FB81EA5BFCDCCCC3EF628DC3E3333333F3D0A97BFC3F528BFAE47E1BE8FC295BF52B8DE3F000000BFC3F5A83EB81E85BE713DCA3FC3F5A83FAE47213FCDCC0CC0CDCC4C3D7B142E3F0000803F52B81EBFC3F5E83FC3F5A8BFC3F528BFD7A3703FCDCC4C3D000000405C8F423EAE4721BF5C8FC2BE1F858BBF0AD7A3BFAE47213FE17A143FB81EA53F000040BFEC51D83FE17A94BEC3F5C83FF628DCBEA4703DBF0000803E0AD7833F0AD7233E3D0A17BF1F85ABBF3333B3BF0000003FA4707D3F0AD723BEC3F588BF52B85E3F0AD7A3BF8FC235BF52B81E3F000010C014AEC73EE17A14BFAE47E13D"> : tensor<8x1x3x3xf32>
  %w2 = arith.constant dense<"0x00000000CDCC4C3ED7A3303F000000000000000048E13A3F3D0A573F00000000000000003D0A573F0AD7A33D0000000000000000B81E45BF8FC2B5BF00000000000000000AD783BFB81E85BF0000000000000000C3F5A83F0AD723BC00000000000000003333933F14AE17C000000000000000003D0AD73EA470BD3E00000000"> : tensor<4x8x1x1xf32>
  %e = tensor.empty() : tensor<1x8x5x5xf32>
  %f = linalg.fill ins(%z : f32) outs(%e : tensor<1x8x5x5xf32>) -> tensor<1x8x5x5xf32>
  %a = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%x, %w1 : tensor<1x4x5x5xf32>, tensor<8x4x1x1xf32>) outs(%f : tensor<1x8x5x5xf32>) -> tensor<1x8x5x5xf32>
  %sce = tensor.expand_shape %sc [[0, 1, 2]] output_shape [8, 1, 1] : tensor<8xf32> into tensor<8x1x1xf32>
  %b = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d1, 0, 0)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%a, %sce : tensor<1x8x5x5xf32>, tensor<8x1x1xf32>) outs(%e : tensor<1x8x5x5xf32>) {
  ^bb0(%in: f32, %s: f32, %out: f32):
    %m = arith.mulf %in, %s : f32
    linalg.yield %m : f32
  } -> tensor<1x8x5x5xf32>
  %c = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> ()>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%six, %b : tensor<f32>, tensor<1x8x5x5xf32>) outs(%e : tensor<1x8x5x5xf32>) {
  ^bb0(%s: f32, %in: f32, %out: f32):
    %m = arith.minimumf %in, %s : f32
    linalg.yield %m : f32
  } -> tensor<1x8x5x5xf32>
  %p = tensor.pad %c low[0, 0, 1, 1] high[0, 0, 1, 1] {
  ^bb0(%i0: index, %i1: index, %i2: index, %i3: index):
    tensor.yield %z : f32
  } : tensor<1x8x5x5xf32> to tensor<1x8x7x7xf32>
  %wd = tensor.collapse_shape %wd4 [[0, 1], [2], [3]] : tensor<8x1x3x3xf32> into tensor<8x3x3xf32>
  %d = linalg.depthwise_conv_2d_nchw_chw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%p, %wd : tensor<1x8x7x7xf32>, tensor<8x3x3xf32>) outs(%f : tensor<1x8x5x5xf32>) -> tensor<1x8x5x5xf32>
  %e2 = tensor.empty() : tensor<1x4x5x5xf32>
  %f2 = linalg.fill ins(%z : f32) outs(%e2 : tensor<1x4x5x5xf32>) -> tensor<1x4x5x5xf32>
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%d, %w2 : tensor<1x8x5x5xf32>, tensor<4x8x1x1xf32>) outs(%f2 : tensor<1x4x5x5xf32>) -> tensor<1x4x5x5xf32>
  return %y : tensor<1x4x5x5xf32>
}

// -----

// Must not fire: the depthwise output also feeds a residual add, which reads every channel.
// CHECK-LABEL: func.func @shared_channels
// CHECK-NOT: pconv.dead_channels
// CHECK: linalg.conv_2d_nchw_fchw {{.*}} tensor<1x8x5x5xf32>, tensor<4x8x1x1xf32>)
func.func @shared_channels(%x: tensor<1x4x5x5xf32>) -> (tensor<1x4x5x5xf32>, tensor<1x8x5x5xf32>) {
  %z = arith.constant 0.0 : f32
  %six = arith.constant dense<6.0> : tensor<f32>
  %w1 = arith.constant dense<"0xB81E053EB81E05BE0AD7233FCDCCCC3D713D0ABFEC51B83E6666A63F3333733F333333BF5C8FA2BF52B81EBF0AD7233DB81E15C0AE4761BE0000A0BF48E13ABF713D0ABF0AD7A3BE85EBD13EB81E853FB81E05BE295CAF3F1F852BBF3333B33E6666663FEC51B83DA4703DBF1F856BBF1F85EBBEAE47613EAE4781BF3D0A57BE"> : tensor<8x4x1x1xf32>
  %sc = arith.constant dense<"0x0AD723BE713D0A3F3D0A573EEC51B83E666626BFB81E05BE14AE473F52B8BE3F"> : tensor<8xf32>
  %wd4 = arith.constant dense<"0xAE47A1BFAE47C13FCDCCAC3F14AE473FB81E853E52B89EBE48E1BA3F48E1FA3F6666E63FC3F5A83FEC51B83E48E19ABF00000080C3F5283FB81EA5BFCDCCCC3EF628DC3E3333333F3D0A97BFC3F528BFAE47E1BE8FC295BF52B8DE3F000000BFC3F5A83EB81E85BE713DCA3FC3F5A83FAE47213FCDCC0CC0CDCC4C3D7B142E3F0000803F52B81EBFC3F5E83FC3F5A8BFC3F528BFD7A3703FCDCC4C3D000000405C8F423EAE4721BF5C8FC2BE1F858BBF0AD7A3BFAE47213FE17A143FB81EA53F000040BFEC51D83FE17A94BEC3F5C83FF628DCBEA4703DBF0000803E0AD7833F0AD7233E3D0A17BF1F85ABBF3333B3BF0000003FA4707D3F0AD723BEC3F588BF52B85E3F0AD7A3BF8FC235BF52B81E3F000010C014AEC73EE17A14BFAE47E13D"> : tensor<8x1x3x3xf32>
  %w2 = arith.constant dense<"0x00000000CDCC4C3ED7A3303F000000000000000048E13A3F3D0A573F00000000000000003D0A573F0AD7A33D0000000000000000B81E45BF8FC2B5BF00000000000000000AD783BFB81E85BF0000000000000000C3F5A83F0AD723BC00000000000000003333933F14AE17C000000000000000003D0AD73EA470BD3E00000000"> : tensor<4x8x1x1xf32>
  %e = tensor.empty() : tensor<1x8x5x5xf32>
  %f = linalg.fill ins(%z : f32) outs(%e : tensor<1x8x5x5xf32>) -> tensor<1x8x5x5xf32>
  %a = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%x, %w1 : tensor<1x4x5x5xf32>, tensor<8x4x1x1xf32>) outs(%f : tensor<1x8x5x5xf32>) -> tensor<1x8x5x5xf32>
  %sce = tensor.expand_shape %sc [[0, 1, 2]] output_shape [8, 1, 1] : tensor<8xf32> into tensor<8x1x1xf32>
  %b = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d1, 0, 0)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%a, %sce : tensor<1x8x5x5xf32>, tensor<8x1x1xf32>) outs(%e : tensor<1x8x5x5xf32>) {
  ^bb0(%in: f32, %s: f32, %out: f32):
    %m = arith.mulf %in, %s : f32
    linalg.yield %m : f32
  } -> tensor<1x8x5x5xf32>
  %c = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> ()>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%six, %b : tensor<f32>, tensor<1x8x5x5xf32>) outs(%e : tensor<1x8x5x5xf32>) {
  ^bb0(%s: f32, %in: f32, %out: f32):
    %m = arith.minimumf %in, %s : f32
    linalg.yield %m : f32
  } -> tensor<1x8x5x5xf32>
  %p = tensor.pad %c low[0, 0, 1, 1] high[0, 0, 1, 1] {
  ^bb0(%i0: index, %i1: index, %i2: index, %i3: index):
    tensor.yield %z : f32
  } : tensor<1x8x5x5xf32> to tensor<1x8x7x7xf32>
  %wd = tensor.collapse_shape %wd4 [[0, 1], [2], [3]] : tensor<8x1x3x3xf32> into tensor<8x3x3xf32>
  %d = linalg.depthwise_conv_2d_nchw_chw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%p, %wd : tensor<1x8x7x7xf32>, tensor<8x3x3xf32>) outs(%f : tensor<1x8x5x5xf32>) -> tensor<1x8x5x5xf32>
  %e2 = tensor.empty() : tensor<1x4x5x5xf32>
  %f2 = linalg.fill ins(%z : f32) outs(%e2 : tensor<1x4x5x5xf32>) -> tensor<1x4x5x5xf32>
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%d, %w2 : tensor<1x8x5x5xf32>, tensor<4x8x1x1xf32>) outs(%f2 : tensor<1x4x5x5xf32>) -> tensor<1x4x5x5xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%d : tensor<1x8x5x5xf32>) outs(%e : tensor<1x8x5x5xf32>) {
  ^bb0(%in: f32, %out: f32):
    %m = arith.addf %in, %in : f32
    linalg.yield %m : f32
  } -> tensor<1x8x5x5xf32>
  return %y, %r : tensor<1x4x5x5xf32>, tensor<1x8x5x5xf32>
}

// -----

// Must not fire: one dead channel of 8 is below the quarter that pays for the cut.
// CHECK-LABEL: func.func @few_dead
// CHECK-NOT: pconv.dead_channels
// CHECK: linalg.conv_2d_nchw_fchw {{.*}} tensor<1x8x5x5xf32>, tensor<4x8x1x1xf32>)
func.func @few_dead(%x: tensor<1x4x5x5xf32>) -> tensor<1x4x5x5xf32> {
  %z = arith.constant 0.0 : f32
  %six = arith.constant dense<6.0> : tensor<f32>
  %w1 = arith.constant dense<"0xB81E053EB81E05BE0AD7233FCDCCCC3D713D0ABFEC51B83E6666A63F3333733F333333BF5C8FA2BF52B81EBF0AD7233DB81E15C0AE4761BE0000A0BF48E13ABF713D0ABF0AD7A3BE85EBD13EB81E853FB81E05BE295CAF3F1F852BBF3333B33E6666663FEC51B83DA4703DBF1F856BBF1F85EBBEAE47613EAE4781BF3D0A57BE"> : tensor<8x4x1x1xf32>
  %sc = arith.constant dense<"0x0AD723BE713D0A3F3D0A573EEC51B83E666626BFB81E05BE14AE473F52B8BE3F"> : tensor<8xf32>
  %wd4 = arith.constant dense<"0xAE47A1BFAE47C13FCDCCAC3F14AE473FB81E853E52B89EBE48E1BA3F48E1FA3F6666E63FC3F5A83FEC51B83E48E19ABF00000080C3F5283FB81EA5BFCDCCCC3EF628DC3E3333333F3D0A97BFC3F528BFAE47E1BE8FC295BF52B8DE3F000000BFC3F5A83EB81E85BE713DCA3FC3F5A83FAE47213FCDCC0CC0CDCC4C3D7B142E3F0000803F52B81EBFC3F5E83FC3F5A8BFC3F528BFD7A3703FCDCC4C3D000000405C8F423EAE4721BF5C8FC2BE1F858BBF0AD7A3BFAE47213FE17A143FB81EA53F000040BFEC51D83FE17A94BEC3F5C83FF628DCBEA4703DBF0000803E0AD7833F0AD7233E3D0A17BF1F85ABBF3333B3BF0000003FA4707D3F0AD723BEC3F588BF52B85E3F0AD7A3BF8FC235BF52B81E3F000010C014AEC73EE17A14BFAE47E13D"> : tensor<8x1x3x3xf32>
  %w2 = arith.constant dense<"0x00000000EC51B8BE3333F3BFAE47E1BDCDCC4CBF713D8A3FE17A94BE0AD7A33D000000005C8F02BF0AD723BC52B8BEBF9A99993EAE47E1BDEC5198BF9A9919C0000000009A9999BE14AE07BF8FC275BEC3F5E83FCDCC4CBDEC51B83D52B8BEBF000000001F856B3FC3F5883FCDCC4C3D1F856B3FA470BD3EF6281C3F9A9919BE"> : tensor<4x8x1x1xf32>
  %e = tensor.empty() : tensor<1x8x5x5xf32>
  %f = linalg.fill ins(%z : f32) outs(%e : tensor<1x8x5x5xf32>) -> tensor<1x8x5x5xf32>
  %a = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%x, %w1 : tensor<1x4x5x5xf32>, tensor<8x4x1x1xf32>) outs(%f : tensor<1x8x5x5xf32>) -> tensor<1x8x5x5xf32>
  %sce = tensor.expand_shape %sc [[0, 1, 2]] output_shape [8, 1, 1] : tensor<8xf32> into tensor<8x1x1xf32>
  %b = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d1, 0, 0)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%a, %sce : tensor<1x8x5x5xf32>, tensor<8x1x1xf32>) outs(%e : tensor<1x8x5x5xf32>) {
  ^bb0(%in: f32, %s: f32, %out: f32):
    %m = arith.mulf %in, %s : f32
    linalg.yield %m : f32
  } -> tensor<1x8x5x5xf32>
  %c = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> ()>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%six, %b : tensor<f32>, tensor<1x8x5x5xf32>) outs(%e : tensor<1x8x5x5xf32>) {
  ^bb0(%s: f32, %in: f32, %out: f32):
    %m = arith.minimumf %in, %s : f32
    linalg.yield %m : f32
  } -> tensor<1x8x5x5xf32>
  %p = tensor.pad %c low[0, 0, 1, 1] high[0, 0, 1, 1] {
  ^bb0(%i0: index, %i1: index, %i2: index, %i3: index):
    tensor.yield %z : f32
  } : tensor<1x8x5x5xf32> to tensor<1x8x7x7xf32>
  %wd = tensor.collapse_shape %wd4 [[0, 1], [2], [3]] : tensor<8x1x3x3xf32> into tensor<8x3x3xf32>
  %d = linalg.depthwise_conv_2d_nchw_chw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%p, %wd : tensor<1x8x7x7xf32>, tensor<8x3x3xf32>) outs(%f : tensor<1x8x5x5xf32>) -> tensor<1x8x5x5xf32>
  %e2 = tensor.empty() : tensor<1x4x5x5xf32>
  %f2 = linalg.fill ins(%z : f32) outs(%e2 : tensor<1x4x5x5xf32>) -> tensor<1x4x5x5xf32>
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%d, %w2 : tensor<1x8x5x5xf32>, tensor<4x8x1x1xf32>) outs(%f2 : tensor<1x4x5x5xf32>) -> tensor<1x4x5x5xf32>
  return %y : tensor<1x4x5x5xf32>
}

// -----

// Must not fire: the producer is a 3x3 pattern conv in blocks of 2 filters sharing one structure
// (filters 0-1 keep channels 0-1, filters 2-3 channels 2-3); keeping filters 0 and 2 would leave
// no two neighbours alike, and the pattern conv would fall back to dense.
// CHECK-LABEL: func.func @pattern_producer_blocks
// CHECK-NOT: pconv.dead_channels
// CHECK: linalg.conv_2d_nchw_fchw {{.*}} tensor<1x4x5x5xf32>, tensor<2x4x1x1xf32>)
func.func @pattern_producer_blocks(%x: tensor<1x4x5x5xf32>) -> tensor<1x2x5x5xf32> {
  %z = arith.constant 0.0 : f32
  %w = arith.constant dense<"0x00000000333323C000000000E17A14BF1F85EBBE1F856BBE000000000000000000000000000000003D0A57BE00000000B81EC53F713D0A3F000000BF000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000AD7833F00000000E17AD4BFE17A943ED7A3303F00000000000000000000000000000000713D4ABF0000000052B81EC03333333F8FC2F53E000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000B81E85BF3333B33F8FC2F5BC0000000048E1DABF0000000000000000000000000000000085EB113F52B89EBF52B8DEBF000000009A99993F0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000052B8BE3F333303C0C3F5A8BE00000000713D0A3F000000000000000000000000000000000000403F7B14AE3F1F858BBF00000000CDCC4CBF00000000"> : tensor<4x4x3x3xf32>
  %w2 = arith.constant dense<"0x1F85CB3F000000003333B33E00000000E17AB43F00000000A470BDBE00000000"> : tensor<2x4x1x1xf32>
  %p = tensor.pad %x low[0, 0, 1, 1] high[0, 0, 1, 1] {
  ^bb0(%i0: index, %i1: index, %i2: index, %i3: index):
    tensor.yield %z : f32
  } : tensor<1x4x5x5xf32> to tensor<1x4x7x7xf32>
  %e = tensor.empty() : tensor<1x4x5x5xf32>
  %f = linalg.fill ins(%z : f32) outs(%e : tensor<1x4x5x5xf32>) -> tensor<1x4x5x5xf32>
  %a = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%p, %w : tensor<1x4x7x7xf32>, tensor<4x4x3x3xf32>) outs(%f : tensor<1x4x5x5xf32>) -> tensor<1x4x5x5xf32>
  %e2 = tensor.empty() : tensor<1x2x5x5xf32>
  %f2 = linalg.fill ins(%z : f32) outs(%e2 : tensor<1x2x5x5xf32>) -> tensor<1x2x5x5xf32>
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%a, %w2 : tensor<1x4x5x5xf32>, tensor<2x4x1x1xf32>) outs(%f2 : tensor<1x2x5x5xf32>) -> tensor<1x2x5x5xf32>
  return %y : tensor<1x2x5x5xf32>
}

// -----

// A producer with a bias (torch-mlir broadcasts it into the init): the bias loses the same channels.
// CHECK-LABEL: func.func @biased_producer
// CHECK: %[[B:.*]] = linalg.broadcast ins(%{{.*}} : tensor<4xf32>) outs(%{{.*}} : tensor<1x4x5x5xf32>) dimensions = [0, 2, 3]
// CHECK: linalg.conv_2d_nchw_fchw {{.*}} tensor<4x4x1x1xf32>) outs(%[[B]] : tensor<1x4x5x5xf32>)
// CHECK: linalg.conv_2d_nchw_fchw {{.*}} tensor<1x4x5x5xf32>, tensor<4x4x1x1xf32>)
func.func @biased_producer(%x: tensor<1x4x5x5xf32>) -> tensor<1x4x5x5xf32> {
  %z = arith.constant 0.0 : f32
  %bias = arith.constant dense<[0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0]> : tensor<8xf32>
  %w1 = arith.constant dense<"0xB81E053EB81E05BE0AD7233FCDCCCC3D713D0ABFEC51B83E6666A63F3333733F333333BF5C8FA2BF52B81EBF0AD7233DB81E15C0AE4761BE0000A0BF48E13ABF713D0ABF0AD7A3BE85EBD13EB81E853FB81E05BE295CAF3F1F852BBF3333B33E6666663FEC51B83DA4703DBF1F856BBF1F85EBBEAE47613EAE4781BF3D0A57BE"> : tensor<8x4x1x1xf32>
  %w2 = arith.constant dense<"0x00000000CDCC4C3ED7A3303F000000000000000048E13A3F3D0A573F00000000000000003D0A573F0AD7A33D0000000000000000B81E45BF8FC2B5BF00000000000000000AD783BFB81E85BF0000000000000000C3F5A83F0AD723BC00000000000000003333933F14AE17C000000000000000003D0AD73EA470BD3E00000000"> : tensor<4x8x1x1xf32>
  %e = tensor.empty() : tensor<1x8x5x5xf32>
  %b = linalg.broadcast ins(%bias : tensor<8xf32>) outs(%e : tensor<1x8x5x5xf32>) dimensions = [0, 2, 3]
  %a = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%x, %w1 : tensor<1x4x5x5xf32>, tensor<8x4x1x1xf32>) outs(%b : tensor<1x8x5x5xf32>) -> tensor<1x8x5x5xf32>
  %e2 = tensor.empty() : tensor<1x4x5x5xf32>
  %f2 = linalg.fill ins(%z : f32) outs(%e2 : tensor<1x4x5x5xf32>) -> tensor<1x4x5x5xf32>
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%a, %w2 : tensor<1x8x5x5xf32>, tensor<4x8x1x1xf32>) outs(%f2 : tensor<1x4x5x5xf32>) -> tensor<1x4x5x5xf32>
  return %y : tensor<1x4x5x5xf32>
}
