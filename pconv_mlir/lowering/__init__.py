"""Lowerings of one convolution to linalg/tensor/arith MLIR text.

``plan`` (filter blocks and their rows, the one packing), ``cost_model`` (every policy
threshold), ``rows`` (where a row lives per formulation), ``pattern_conv`` (gather + batched
GEMM, from ``templates/``), ``depthwise``, ``dense`` and ``im2col`` (the dense forms).
"""

from .dense import emit_dense_conv
from .pattern_conv import emit_packed_conv, emit_pattern_conv, pattern_refusal
from .plan import plan_from_packed, plan_from_weights
from .spec import ConvSpec, LoweredConv, PatternConvRefused

__all__ = ["ConvSpec", "LoweredConv", "PatternConvRefused", "emit_dense_conv", "emit_packed_conv",
           "emit_pattern_conv", "pattern_refusal", "plan_from_packed", "plan_from_weights"]
