"""Which convs the compiler lowers to pattern convs or 1x1 blocks: a static rule on shapes,
G and (for 1x1 blocks) the keep rate alone.

This mirrors the compiler's cost model (``pconv_mlir/lowering/cost_model.py``: the minimum
input channels, the batch-matmul rates by block size and, for 1x1 blocks, ``block_refusal``
itself; ``passes/raise_pattern_conv.py``: 2-D NCHW convs with groups 1 or depthwise) in the
simplest form that agrees with it on the models measured
(``results/model_bench.md``: G=8 and G=32 VGG-16 lowered 12 of 13 convs, the 3-channel stem
dense; G=1 none). It ignores weights and maps, so it is a prediction, not the verdict: the
compile report (``CompiledModel.report``) is. The pruner uses it to skip convs whose shape
alone keeps them dense and to say in its summary what the compiler will do; the compiler
side may import it to keep both in step. Plain ints in, so it needs no ``nn.Module``.
"""

from __future__ import annotations

__all__ = [
    "MIN_GROUP_SIZE",
    "MIN_INPUT_CHANNELS_PER_GROUP",
    "conv_shape_reason",
    "is_depthwise",
    "pattern_lowering_reason",
]

#: Fewer input channels per group than this: a few rows per filter block, so the gather and
#: a small matmul cost more than dense (the compiler measured 0.15-0.9x on 3->64@32).
MIN_INPUT_CHANNELS_PER_GROUP = 8
#: Smaller filter blocks than this: the batched GEMM over blocks runs too far below the dense
#: GEMM's rate to win (the cost model's rate at G=8 is 15 vs 11.5 GMAC/s dense; G=1: 2).
MIN_GROUP_SIZE = 8


def is_depthwise(in_channels: int, out_channels: int, groups: int) -> bool:
    """One input and one output channel per conv group (channel multiplier 1)."""
    return groups > 1 and groups == in_channels == out_channels


def conv_shape_reason(kernel_size: tuple[int, int], in_channels: int, out_channels: int, groups: int) -> str | None:
    """Why the compiler keeps a conv of this shape dense *whatever its weights and G*, or None
    when pruning can make it a pattern conv or 1x1 blocks (1x1 convs: None unless grouped;
    whether their blocks pay depends on G and the keep rate, see :func:`pattern_lowering_reason`)."""
    if groups > 1 and not is_depthwise(in_channels, out_channels, groups):
        return f"grouped conv (groups={groups}, not depthwise): pattern convs cover groups 1 or depthwise"
    if tuple(kernel_size) == (3, 3) and groups == 1 and in_channels < MIN_INPUT_CHANNELS_PER_GROUP:
        return f"{in_channels} input channel{'s' if in_channels > 1 else ''} (< {MIN_INPUT_CHANNELS_PER_GROUP})"
    return None


def pattern_lowering_reason(
    kernel_size: tuple[int, int], in_channels: int, out_channels: int, groups: int, group_size: int,
    keep: float | None = None,
) -> str | None:
    """None when a conv pruned to patterns (or, 1x1, to blocks keeping ``keep`` of the input
    channels) with filter blocks of ``group_size`` is lowered as a pattern conv (or as 1x1
    blocks); otherwise why the compiler keeps it dense.

    The rule: a 3x3 kernel; groups 1 or depthwise; >= 8 input channels per group (depthwise
    convs have 1 and are lowered anyway, by their own 4-tap emitter); G >= 8 filters per block
    as applied (``min(group_size, out_channels // groups)``; depthwise convs need no G). A 1x1
    conv: the cost model's :func:`~pconv_mlir.lowering.cost_model.block_refusal` on the blocks
    the keep rate gives (no keep rate: not block-pruned, dense).
    """
    kernel = tuple(kernel_size)
    shape = conv_shape_reason(kernel, in_channels, out_channels, groups)
    if shape:
        return shape
    if kernel == (1, 1):
        if keep is None or keep >= 1:
            return "1x1 conv without block connectivity: a dense matmul"
        from pconv_mlir.lowering.cost_model import block_refusal

        g = max(1, min(group_size, out_channels))
        kept = max(1, round(in_channels * keep))
        why = block_refusal(in_channels, out_channels * in_channels, -(-out_channels // g), g, kept)
        return f"1x1 blocks (G={g}, keep {keep:.3g}): {why}" if why else None
    if kernel != (3, 3):
        return f"kernel is {kernel[0]}x{kernel[1]}: patterns cover 3x3"
    if is_depthwise(in_channels, out_channels, groups):
        return None
    applied = min(group_size, out_channels // groups)
    if applied < MIN_GROUP_SIZE:
        return f"G={applied} (< {MIN_GROUP_SIZE}): blocks too small to beat dense"
    return None
