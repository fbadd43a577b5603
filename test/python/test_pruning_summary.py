"""Defaults that the compiler accelerates: G=8, unaccelerated convs skipped, the lowering
rule and the prune summary (pattern vs dense convs)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pconv_mlir.pruning import PatternPruner, PruningConfig, summarize
from pconv_mlir.pruning.lowering_rule import MIN_GROUP_SIZE, conv_shape_reason, pattern_lowering_reason

pytestmark = pytest.mark.usefixtures("one_thread")


def net() -> nn.Sequential:
    """One conv of every verdict, in forward order (the compiler reports convs in that order)."""
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),             # 0: 3-channel stem: skipped by default
        nn.Conv2d(16, 32, 3, padding=1),            # 1: pattern conv at G >= 8
        nn.Conv2d(32, 32, 3, padding=1, groups=32),  # 2: depthwise: pattern conv at any G
        nn.Conv2d(32, 32, 3, padding=1, groups=2),  # 3: grouped: skipped by default
        nn.Conv2d(32, 16, 1),                       # 4: 1x1: blocks (G=8, keep 0.5: 2x fewer MACs)
        nn.Conv2d(16, 4, 3, padding=1),             # 5: 4 filters: G is at most 4 -> dense
        nn.Conv2d(4, 16, 5, padding=2),             # 6: 5x5: never pruned
    )


def prune(config: PruningConfig) -> tuple[nn.Module, object]:
    torch.manual_seed(0)
    model = net()
    pruner = PatternPruner(config).prepare(model)
    pruner.hard_prune()
    return model, pruner.finalize()


def test_defaults_are_what_the_compiler_accelerates():
    config = PruningConfig()
    assert config.group_size == 8 == MIN_GROUP_SIZE
    assert not config.prune_unaccelerated and not config.prune_1x1
    assert config.block_size_1x1 == 8 and config.keep_1x1 == 0.5


def test_rule_branches():
    assert pattern_lowering_reason((3, 3), 16, 32, 1, 8) is None
    assert pattern_lowering_reason((3, 3), 16, 32, 1, 32) is None
    assert pattern_lowering_reason((3, 3), 16, 32, 1, 4) == "G=4 (< 8): blocks too small to beat dense"
    assert pattern_lowering_reason((3, 3), 16, 4, 1, 8) == "G=4 (< 8): blocks too small to beat dense"
    assert pattern_lowering_reason((3, 3), 32, 32, 32, 1) is None  # depthwise needs no G
    assert pattern_lowering_reason((3, 3), 3, 64, 1, 8) == "3 input channels (< 8)"
    assert pattern_lowering_reason((3, 3), 1, 64, 1, 8) == "1 input channel (< 8)"
    assert "grouped conv (groups=2" in pattern_lowering_reason((3, 3), 32, 32, 2, 8)
    assert "grouped conv (groups=16" in pattern_lowering_reason((3, 3), 16, 32, 16, 8)  # channel multiplier 2
    assert pattern_lowering_reason((1, 1), 32, 16, 1, 8).startswith("1x1 conv without block connectivity")
    # 1x1 blocks: the cost model's block_refusal (gather amplification <= 4, >= 1.5x fewer MACs)
    assert pattern_lowering_reason((1, 1), 64, 64, 1, 32, keep=0.5) is None
    assert "gather" in pattern_lowering_reason((1, 1), 256, 1024, 1, 8, keep=0.5)  # 128 blocks x half the input
    assert "most of the dense MACs" in pattern_lowering_reason((1, 1), 64, 64, 1, 32, keep=0.9)
    assert pattern_lowering_reason((5, 5), 32, 16, 1, 8) == "kernel is 5x5: patterns cover 3x3"
    # the shape part alone: what the pruner skips whatever G is
    assert conv_shape_reason((3, 3), 16, 32, 1) is None
    assert conv_shape_reason((1, 1), 3, 32, 1) is None  # 1x1 blocks of a 3-channel input: allowed
    assert conv_shape_reason((1, 1), 32, 32, 4) is not None


def test_summary_counts_pattern_and_dense_convs():
    model, meta = prune(PruningConfig(prune_1x1=True))
    summary = summarize(model, meta)
    verdicts = {c.name: c for c in summary.convs}
    assert [n for n, c in verdicts.items() if c.lowered] == ["1", "2", "4"]
    assert (summary.pattern_convs, summary.dense_convs) == (3, 4)
    assert verdicts["0"].pruned is None and "skipped as the compiler keeps it dense: 3 input" in verdicts["0"].reason
    assert verdicts["3"].pruned is None and "grouped conv" in verdicts["3"].reason
    assert verdicts["4"].pruned == "connectivity" and verdicts["4"].reason == ""
    assert verdicts["5"].pruned == "pattern" and verdicts["5"].reason.startswith("G=4")
    assert verdicts["6"].pruned is None and "5x5" in verdicts["6"].reason
    # weights over all convs count the unpruned ones too, so they fall less than in the pruned ones
    assert 1.0 < summary.compression() < meta.compression()
    text = summary.text()
    assert "pruned 4 of 7 convs" in text
    assert "3 convs lowered as pattern convs (or 1x1 blocks), 4 kept dense" in text
    assert "1 depthwise" in text and "1 1x1 to blocks (keep 0.5, G=8)" in text
    assert "[0]" in text and "[3]" in text  # the skipped convs are named
    assert summary.to_dict()["pattern_convs"] == 3


def test_summary_at_g1_says_nothing_is_accelerated_but_depthwise():
    model, meta = prune(PruningConfig(group_size=1, prune_unaccelerated=True))
    summary = summarize(model, meta)
    assert [c.name for c in summary.convs if c.lowered] == ["2"]
    assert [c.name for c in summary.convs if c.pruned] == ["0", "1", "2", "3", "5"]
    assert "G=1 (< 8)" in summary.text()


def test_rule_agrees_with_the_compiler():
    """Cross-check against the compiler's own verdict (pconv passes, no IREE compile)."""
    from pconv_mlir.compiler import import_model, run_pconv_passes

    for config in (PruningConfig(prune_1x1=True), PruningConfig(group_size=1, prune_unaccelerated=True)):
        model, meta = prune(config)
        _, report = run_pconv_passes(import_model(model.eval(), [torch.randn(1, 3, 16, 16)]))
        # The summary reads each conv's weights alone; a conv whose filters pconv-eliminate-dead-channels
        # cut (the next 1x1 conv reads none of them) is compiled in its new form, which it does not model.
        cut = [bool(r.dead_channels) for r in report]
        compiler = [r.lowering.startswith(("pattern", "blocks")) for r in report]
        predicted = [c.lowered for c in summarize(model, meta).convs]
        assert [c for c, x in zip(compiler, cut) if not x] == [p for p, x in zip(predicted, cut) if not x], \
            [r.lowering for r in report]
