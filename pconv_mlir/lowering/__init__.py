"""Lowerings of one convolution to linalg/tensor/arith MLIR text (see pattern_conv.py)."""

from .dense import emit_dense_conv
from .pattern_conv import emit_packed_conv, emit_pattern_conv, plan_packed, plan_pattern_conv, predict_speedup
from .spec import ConvSpec, LoweredConv, PatternConvRefused

__all__ = ["ConvSpec", "LoweredConv", "PatternConvRefused", "emit_dense_conv", "emit_packed_conv",
           "emit_pattern_conv", "plan_packed", "plan_pattern_conv", "predict_speedup"]
