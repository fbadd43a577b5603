"""Numerics of the pattern-conv lowering (pconv_mlir.lowering) vs torch, on IREE llvm-cpu."""

from __future__ import annotations

import re

import numpy as np
import pytest

from pconv_mlir.lowering import ConvSpec, PatternConvRefused, cost_model, emit_dense_conv, emit_pattern_conv
from pconv_mlir.numerics import FP16_TOLERANCE, TOLERANCE, rel_err
from pconv_mlir.testing.harness import compile_text, conv_ref, run_vmfb, wrap_module
from pconv_mlir.testing.sparse_gen import random_pattern_weight


def _check(spec, w, bias, G, layout="nchw", tolerance=TOLERANCE, **kw):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((spec.N, spec.C, spec.H, spec.W)).astype(np.float32)
    low = emit_pattern_conv(spec, w, bias, G, "pconv", force=True, layout=layout, **kw)
    assert "tensor<" in low.mlir and len(low.constants) == len(low.arg_types)
    ref = conv_ref(spec, x, w, bias)
    if layout == "nhwc":  # channels-last in and out
        x, ref = x.transpose(0, 2, 3, 1).copy(), ref.transpose(0, 2, 3, 1)
    y = run_vmfb(compile_text(wrap_module(low)), x)
    assert y.shape == ref.shape
    err = rel_err(y, ref)
    assert err <= tolerance, (low.formulation, err)
    return low


CASES = [
    # id, spec kwargs, G, bias, formulation
    ("s1p1_hw_bias_G4", dict(N=1, C=8, H=7, W=9, K=12), 4, True, "auto"),
    ("s2_asym_pad_lastgroup_small", dict(N=1, C=8, H=9, W=8, K=12, stride=2, padding=(0, 1, 1, 2)), 8, False, "auto"),
    ("dil2_pad2_batch2_G1_gather", dict(N=2, C=6, H=8, W=8, K=5, padding=2, dilation=2), 1, True, "gather"),
    ("groups2_order_gather", dict(N=1, C=8, H=6, W=6, K=12, groups=2), 4, True, "auto"),
    ("pad0_batch2_rows", dict(N=2, C=6, H=6, W=7, K=8, padding=0), 4, False, "rows"),
    ("gather_formulation_s1", dict(N=1, C=6, H=6, W=7, K=8, padding=(2, 1, 0, 1)), 4, True, "gather"),
    ("s2_dil2_groups2_N2", dict(N=2, C=8, H=11, W=10, K=8, stride=(2, 1), padding=(1, 2, 2, 1), dilation=(2, 1),
                                groups=2), 2, True, "auto"),
    ("strided_G1", dict(N=1, C=4, H=9, W=9, K=6, stride=2, padding=1), 1, False, "auto"),
]


MASKED_ROWS_CASES = [
    # id, spec kwargs, G: stride-1 convs whose output is as wide as the input
    ("pad1_bias", dict(N=1, C=8, H=7, W=9, K=12), 4),
    ("asym_pad_0_2", dict(N=1, C=8, H=6, W=5, K=8, padding=(0, 0, 2, 2)), 4),
    ("dil2_pad2_batch2", dict(N=2, C=8, H=8, W=7, K=6, padding=2, dilation=2), 2),
    ("width1", dict(N=1, C=8, H=5, W=1, K=8), 8),
    ("tall_dilation", dict(N=1, C=8, H=9, W=4, K=8, padding=(2, 1, 2, 1), dilation=(2, 1)), 4),
]


@pytest.mark.parametrize("name,kw,G", MASKED_ROWS_CASES, ids=[c[0] for c in MASKED_ROWS_CASES])
def test_masked_rows_exact_width(name, kw, G):
    spec = ConvSpec(**kw)
    w = random_pattern_weight(spec.K, spec.Cg, G, keep=0.5, seed=11)
    b = np.random.default_rng(2).standard_normal(spec.K).astype(np.float32)
    low = _check(spec, w, b, G)
    assert low.formulation == "masked-rows"
    # The GEMM runs over the output pixels only: no padded-width columns.
    stats = low.stats
    assert stats["macs"] == stats["blocks"] * stats["G"] * stats["rows_per_block"] * spec.N * spec.OH * spec.OW


def test_masked_rows_in_pixel_chunks():
    spec = ConvSpec(N=2, C=8, H=9, W=6, K=10)
    w = random_pattern_weight(10, 8, 4, keep=0.5, seed=4)
    low = _check(spec, w, np.ones(10, np.float32), 4, chunk_bytes=1024, chunk_above_bytes=0)
    assert low.formulation == "masked-rows" and low.stats["pixel_chunks"] > 1


def test_pixel_chunks():
    spec = ConvSpec(N=2, C=8, H=40, W=30, K=10, padding=(1, 0, 2, 1), dilation=(1, 2))
    w = random_pattern_weight(10, 8, 4, keep=0.5, seed=4)
    low = _check(spec, w, np.ones(10, np.float32), 4, chunk_bytes=1 << 17, chunk_above_bytes=0)
    assert low.stats["pixel_chunks"] > 1 and low.stats["chunked_by"] == "pixels"


def test_block_chunks_where_pixel_chunks_would_be_narrow():
    # 3x3 output: a pixel chunk would hold 9 pixels or fewer, so the filter blocks are cut instead.
    spec = ConvSpec(N=1, C=16, H=3, W=3, K=40)
    w = random_pattern_weight(40, 16, 4, keep=0.5, seed=8)
    low = _check(spec, w, np.arange(40, dtype=np.float32), 4, chunk_bytes=256, chunk_above_bytes=0)
    assert low.formulation == "masked-rows"
    assert low.stats["pixel_chunks"] > 1 and low.stats["chunked_by"] == "blocks"


@pytest.mark.parametrize("name,kw,G,has_bias,form", CASES, ids=[c[0] for c in CASES])
def test_pattern_conv_matches_torch(name, kw, G, has_bias, form):
    spec = ConvSpec(**kw)
    w = random_pattern_weight(spec.K, spec.Cg, G, keep=0.5, groups=spec.groups, seed=3)
    b = np.random.default_rng(1).standard_normal(spec.K).astype(np.float32) if has_bias else None
    _check(spec, w, b, G, formulation=form)


@pytest.mark.parametrize("stride,mult", [(1, 1), (2, 2)])
def test_depthwise(stride, mult):
    C = 8
    spec = ConvSpec(N=2, C=C, H=9, W=7, K=C * mult, stride=stride, padding=(1, 1, 2, 0), groups=C)
    w = random_pattern_weight(spec.K, 1, 1, keep=1.0, groups=C, seed=5)
    b = np.arange(spec.K, dtype=np.float32)
    low = _check(spec, w, b, 1)
    assert low.formulation == "depthwise"


@pytest.mark.parametrize("N,H,W,mult,dil", [(1, 7, 9, 1, 1), (2, 6, 5, 2, 1), (1, 9, 8, 1, 2)])
def test_depthwise_masked_rows(N, H, W, mult, dil):
    C = 8
    spec = ConvSpec(N=N, C=C, H=H, W=W, K=C * mult, padding=dil, dilation=dil, groups=C)
    w = random_pattern_weight(spec.K, 1, 1, keep=1.0, groups=C, seed=6)
    low = _check(spec, w, np.arange(spec.K, dtype=np.float32), 1)
    assert low.formulation == "depthwise, masked rows"
    assert low.stats["macs"] == spec.K * 4 * N * spec.OH * spec.OW


def test_empty_blocks_and_dead_filters():
    spec = ConvSpec(N=1, C=8, H=5, W=5, K=8)
    w = random_pattern_weight(8, 8, 4, keep=0.5, seed=2)
    w[:4] = 0.0  # first block entirely pruned
    w[6] = 0.0   # one dead filter in the second block
    _check(spec, w, np.ones(8, np.float32), 4)


def test_not_pattern_sparse_still_exact():
    # Dense weights: the union-of-rows construction stays exact (just not faster).
    spec = ConvSpec(N=1, C=3, H=5, W=6, K=4)
    w = np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32)
    _check(spec, w, None, 2)


def test_refuses_unprofitable_and_unsupported():
    spec = ConvSpec(N=1, C=256, H=8, W=8, K=256)
    w = random_pattern_weight(256, 256, 1, seed=0)
    with pytest.raises(PatternConvRefused):
        emit_pattern_conv(spec, w, None, 1, "f")
    with pytest.raises(PatternConvRefused):
        emit_pattern_conv(ConvSpec(N=1, C=4, H=5, W=5, K=4), np.ones((4, 4, 5, 5), np.float32), None, 4, "f")
    # G=32 on a big layer is accepted.
    low = emit_pattern_conv(spec, random_pattern_weight(256, 256, 32, seed=0), None, 32, "f")
    assert low.stats["macs"] * 4 < spec.dense_macs


def test_dense_reference_emitter():
    spec = ConvSpec(N=2, C=6, H=7, W=8, K=4, stride=2, padding=(0, 1, 2, 1), groups=2)
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    x = rng.standard_normal((2, 6, 7, 8)).astype(np.float32)
    y = run_vmfb(compile_text(wrap_module(emit_dense_conv(spec, w, b, "d"))), x)
    assert rel_err(y, conv_ref(spec, x, w, b)) <= TOLERANCE


NHWC_CASES = [
    # id, spec kwargs, G, bias, chunking: every formulation with NHWC input and result
    ("masked_rows", dict(N=1, C=8, H=7, W=9, K=12), 4, True, {}),
    ("padded_rows_batch2", dict(N=2, C=6, H=6, W=7, K=8, padding=0), 4, False, {}),
    ("gather_strided", dict(N=1, C=8, H=9, W=8, K=12, stride=2, padding=(0, 1, 1, 2)), 8, True, {}),
    ("pixel_chunks", dict(N=2, C=8, H=9, W=6, K=10), 4, True, dict(chunk_bytes=1024, chunk_above_bytes=0)),
    ("block_chunks", dict(N=1, C=16, H=3, W=3, K=40), 4, True, dict(chunk_bytes=256, chunk_above_bytes=0)),
    ("groups2_order", dict(N=1, C=8, H=6, W=6, K=12, groups=2), 4, True, {}),
]


@pytest.mark.parametrize("name,kw,G,has_bias,chunking", NHWC_CASES, ids=[c[0] for c in NHWC_CASES])
def test_pattern_conv_nhwc(name, kw, G, has_bias, chunking):
    spec = ConvSpec(**kw)
    w = random_pattern_weight(spec.K, spec.Cg, G, keep=0.5, groups=spec.groups, seed=9)
    b = np.random.default_rng(3).standard_normal(spec.K).astype(np.float32) if has_bias else None
    low = _check(spec, w, b, G, layout="nhwc", **chunking)
    assert low.mlir.count("linalg.transpose") == (1 if spec.groups == 1 else 2)  # the input's; the order gather's


def test_matmul_attrs_reach_every_gemm():
    spec = ConvSpec(N=1, C=8, H=9, W=6, K=10)
    w = random_pattern_weight(10, 8, 4, keep=0.5, seed=4)
    low = _check(spec, w, None, 4, chunk_bytes=1024, chunk_above_bytes=0, matmul_attrs='{pconv.hint = "x"}')
    assert low.mlir.count('linalg.batch_matmul {pconv.hint = "x"}') == low.stats["pixel_chunks"] > 1


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
@pytest.mark.parametrize("kw", [dict(N=1, C=6, H=7, W=8, K=4, stride=2, padding=(0, 1, 2, 1)),
                                dict(N=2, C=6, H=7, W=8, K=6, groups=6),
                                dict(N=1, C=6, H=5, W=5, K=4, groups=2),
                                # 1x1 outputs that read fewer rows than the padded input holds
                                # (MobileNet-V2 at 32x32; IREE's unit-dim folding broke on them)
                                dict(N=1, C=6, H=2, W=2, K=6, groups=6, stride=2, padding=1),
                                dict(N=1, C=6, H=4, W=4, K=6, groups=6, stride=2, padding=0),
                                dict(N=1, C=6, H=2, W=2, K=4, stride=2, padding=1)],
                         ids=["conv", "depthwise", "grouped", "depthwise-s2-pad-unread",
                              "depthwise-s2-rows-unread", "conv-s2-pad-unread"])
def test_dense_emitter(kw, layout):
    spec = ConvSpec(**kw)
    rng = np.random.default_rng(0)
    w = rng.standard_normal((spec.K, spec.Cg, 3, 3)).astype(np.float32)
    b = rng.standard_normal(spec.K).astype(np.float32)
    x = rng.standard_normal((spec.N, spec.C, spec.H, spec.W)).astype(np.float32)
    want = conv_ref(spec, x, w, b)
    low = emit_dense_conv(spec, w, b, "d", layout=layout)
    if layout == "nhwc":
        x, want = x.transpose(0, 2, 3, 1).copy(), want.transpose(0, 2, 3, 1)
    assert rel_err(run_vmfb(compile_text(wrap_module(low)), x), want) <= TOLERANCE


def _block_weight(k: int, c: int, g: int, keep: float, seed: int) -> np.ndarray:
    """(K, C, 1, 1): blocks of g consecutive filters keep the same input channels."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((k, c)).astype(np.float32)
    for s in range(0, k, g):
        dropped = np.setdiff1d(np.arange(c), rng.choice(c, max(1, round(c * keep)), replace=False))
        w[s:s + g, dropped] = 0
    return w.reshape(k, c, 1, 1)


BLOCK_CASES = [
    # id, spec kwargs (1x1), G, keep, layout
    ("s1_partial_block", dict(N=1, C=16, H=5, W=7, K=20, padding=0), 8, 0.5, "nchw"),
    ("s2_downsample_N2", dict(N=2, C=24, H=9, W=8, K=16, stride=2, padding=0), 4, 0.25, "nchw"),
    ("s1_pad1", dict(N=1, C=8, H=4, W=4, K=8, padding=1), 2, 0.5, "nchw"),
    ("s1_nhwc", dict(N=1, C=16, H=6, W=6, K=32, padding=0), 16, 0.25, "nhwc"),
    ("s2_nhwc", dict(N=1, C=16, H=7, W=7, K=8, stride=2, padding=0), 8, 0.5, "nhwc"),
]


@pytest.mark.parametrize("name,kw,G,keep,layout", BLOCK_CASES, ids=[c[0] for c in BLOCK_CASES])
def test_block_conv_1x1_matches_torch(name, kw, G, keep, layout):
    """1x1 block convs: a gather of the kept input-channel planes + a batched GEMM (rows with
    Wp = W for stride 1, the exact-pixel gather for stride 2), exact for any block structure."""
    spec = ConvSpec(**kw, KH=1, KW=1)
    w = _block_weight(spec.K, spec.C, G, keep, seed=len(name))
    bias = np.linspace(-1, 1, spec.K).astype(np.float32)
    low = _check(spec, w, bias, G, layout=layout)
    assert low.formulation == ("gather" if spec.stride != (1, 1) else "rows"), low.formulation
    assert low.stats["blocks"] == -(-spec.K // G)


PIXEL_GATHER_CASES = [
    # id, spec kwargs (1x1), G, keep, extra emitter kwargs
    ("s1_partial_block_N2", dict(N=2, C=32, H=5, W=7, K=20, padding=0), 8, 0.5, {}),
    ("s2_downsample", dict(N=1, C=24, H=9, W=8, K=16, stride=2, padding=0), 4, 0.25, {}),
    ("chunked", dict(N=1, C=16, H=12, W=8, K=32, padding=0), 8, 0.5, dict(chunk_bytes=2048, chunk_above_bytes=0)),
    ("fp16_storage", dict(N=1, C=16, H=6, W=6, K=16, padding=0), 8, 0.5,
     dict(precision="fp16-storage", tolerance=FP16_TOLERANCE)),
    ("fp16", dict(N=1, C=16, H=6, W=6, K=16, padding=0), 8, 0.5, dict(precision="fp16", tolerance=FP16_TOLERANCE)),
]


@pytest.mark.parametrize("name,kw,G,keep,extra", PIXEL_GATHER_CASES, ids=[c[0] for c in PIXEL_GATHER_CASES])
def test_pixel_gather_block_conv_matches_torch(name, kw, G, keep, extra):
    """A 1x1 block conv channels-last gathers each pixel's kept channels from the NHWC input
    (no transpose) and writes NHWC, the GEMM carrying the attributes it was given."""
    spec = ConvSpec(**kw, KH=1, KW=1)
    w = _block_weight(spec.K, spec.C, G, keep, seed=len(name))
    bias = np.linspace(-1, 1, spec.K).astype(np.float32)
    seen = []

    def attrs(pixels, g, rows):
        seen.append((pixels, g, rows))
        return f'{{pconv.tiles = "{cost_model.pixel_gather_tiles(pixels, g, rows)}"}}'

    low = _check(spec, w, bias, G, layout="nhwc", pixel_gemm_attrs=attrs, **extra)
    assert low.formulation == "pixel gather", low.formulation
    assert "linalg.transpose" not in low.mlir and "pconv.tiles" in low.mlir
    assert seen == [(spec.N * spec.OH * spec.OW, G, low.stats["rows_per_block"])]
    if "chunk_bytes" in extra:
        assert low.stats["pixel_chunks"] > 1


def test_pixel_gather_needs_an_unpadded_1x1_conv_channels_last():
    """Must not fire: NCHW, or a padded 1x1 conv, keeps the rows form."""
    attrs = lambda *dims: ""  # noqa: E731
    padded = ConvSpec(N=1, C=8, H=4, W=4, K=8, padding=1, KH=1, KW=1)
    low = emit_pattern_conv(padded, _block_weight(8, 8, 2, 0.5, 3), None, 2, "f", force=True, layout="nhwc",
                            pixel_gemm_attrs=attrs)
    assert low.formulation == "rows"
    plain = ConvSpec(N=1, C=16, H=4, W=4, K=8, padding=0, KH=1, KW=1)
    low = emit_pattern_conv(plain, _block_weight(8, 16, 4, 0.5, 4), None, 4, "f", force=True, layout="nchw",
                            pixel_gemm_attrs=attrs)
    assert low.formulation == "rows"


def test_block_conv_refusals():
    """The cost model keeps a 1x1 conv a dense matmul when the blocks gather too much of the
    input again (many blocks) or keep most of the MACs."""
    many = ConvSpec(N=1, C=64, H=8, W=8, K=256, padding=0, KH=1, KW=1)
    with pytest.raises(PatternConvRefused, match="gather"):
        emit_pattern_conv(many, _block_weight(256, 64, 8, 0.5, 1), None, 8, "f")
    dense_enough = ConvSpec(N=1, C=64, H=8, W=8, K=64, padding=0, KH=1, KW=1)
    with pytest.raises(PatternConvRefused, match="most of the dense MACs"):
        emit_pattern_conv(dense_enough, _block_weight(64, 64, 32, 0.9, 2), None, 32, "f")


@pytest.mark.parametrize("pixels,filters,channels", [(12544, 96, 16), (3136, 24, 144), (196, 576, 96),
                                                     (49, 160, 960), (72, 7, 96), (1, 10, 3), (169, 40, 17)])
def test_pointwise_tiles_fit_the_matmul(pixels, filters, channels):
    tiles = cost_model.pointwise_tiles(pixels, filters, channels)
    dm, dn, mv, nv, kr = map(int, re.fullmatch(
        r"distribution = \[(\d+), (\d+), 0\], vector_common_parallel = \[(\d+), (\d+), 0\], "
        r"vector_reduction = \[0, 0, (\d+)\]", tiles).groups())
    assert dm % mv == 0 and mv <= max(pixels, 8) and nv == 16
    assert pixels % dm == 0 or dm == 64
    assert filters % dn == 0 or dn == 64
    assert channels % kr == 0 or kr == 16


def test_pointwise_tiles_leave_wide_small_maps_to_data_tiling():
    assert cost_model.pointwise_tiles(196, 1024, 256) is None  # ResNet-50 14x14 256->1024
    assert cost_model.pointwise_tiles(49, 2048, 512) is None
    assert cost_model.pointwise_tiles(49, 2048, 512, always=True) is not None
    assert cost_model.pointwise_tiles(784, 512, 128) is not None  # 28x28: the tiles win there
