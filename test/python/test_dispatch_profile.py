"""The dispatch profiler's reading of IREE dispatch names (MACs and kind per dispatch)."""

import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_PATH = os.path.join(ROOT, "benchmarks", "dispatch_profile.py")
_spec = importlib.util.spec_from_file_location("dispatch_profile", _PATH)
dp = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dp)


def test_contractions_and_direct_convs_count_macs():
    assert dp.dispatch_macs("matmul_196x256x2304_f32") == 196 * 256 * 2304
    assert dp.dispatch_macs("batch_matmul_16x32x4x648_f32") == 16 * 32 * 4 * 648
    assert dp.dispatch_macs("conv_14x14x256x3x3x256_f32") == 14 * 14 * 256 * 9 * 256
    assert dp.dispatch_kind("conv_14x14x256x3x3x256_f32") == "dense conv (direct)"


def test_depthwise_pooling_and_glue_have_no_macs():
    for name in ("conv_56x56x96x3x3_f32", "conv_16x16x64x2x2_f32", "generic_56x56x3x3x64_f32",
                 "elementwise_broadcast_10368x4_i32xf32", "slow_memcpy"):
        assert dp.dispatch_macs(name) is None, name
    assert dp.dispatch_kind("conv_56x56x96x3x3_f32") == "pooling / depthwise conv"
    assert dp.dispatch_kind("elementwise_broadcast_10368x4_i32xf32") == "row gather"
