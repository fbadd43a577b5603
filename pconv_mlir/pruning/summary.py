"""What pruning did to a model and what the compiler will make of it, conv by conv."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from torch import nn

from pconv_mlir.pruning.config import PruningConfig
from pconv_mlir.pruning.lowering_rule import pattern_lowering_reason
from pconv_mlir.pruning.metadata import LayerKind, PruningMeta
from pconv_mlir.pruning.pruner import classify_convs

__all__ = ["ConvVerdict", "PruningSummary", "summarize"]


@dataclass(frozen=True)
class ConvVerdict:
    """One ``nn.Conv2d`` of a pruned model.

    Attributes:
      name: qualified module name.
      pruned: the pruning it got (``"pattern"``, ``"connectivity"`` for 1x1 blocks) or None.
      lowered: whether the compiler will lower it as a pattern conv
        (:func:`~pconv_mlir.pruning.lowering_rule.pattern_lowering_reason`).
      reason: why it stays dense ("" when lowered).
      weights, kept_weights: its weight count before and after pruning.
    """

    name: str
    pruned: LayerKind | None
    lowered: bool
    reason: str
    weights: int
    kept_weights: int


@dataclass
class PruningSummary:
    """Per-conv verdicts of a pruned model; :meth:`text` is what ``pconv prune`` prints."""

    convs: list[ConvVerdict]
    meta: PruningMeta

    @property
    def pattern_convs(self) -> int:
        """Convs the compiler will lower as pattern convs."""
        return sum(c.lowered for c in self.convs)

    @property
    def dense_convs(self) -> int:
        """Convs the compiler will keep dense (pruned or not)."""
        return len(self.convs) - self.pattern_convs

    def compression(self) -> float:
        """Weights of *all* convs before / after pruning (``meta.compression()`` counts only
        the pruned convs)."""
        kept = sum(c.kept_weights for c in self.convs)
        return sum(c.weights for c in self.convs) / kept if kept else float("inf")

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for ``meta.info`` or JSON)."""
        return {"pattern_convs": self.pattern_convs, "dense_convs": self.dense_convs,
                "compression_all_convs": self.compression(), "compression_pruned_convs": self.meta.compression(),
                "convs": [asdict(c) for c in self.convs]}

    def text(self) -> str:
        """A few lines: what was pruned, the weight savings, pattern vs dense convs and why."""
        layers = {layer.name: layer for layer in self.meta.layers}
        pattern = [layers[c.name] for c in self.convs if c.pruned == "pattern"]
        blocks = [layers[c.name] for c in self.convs if c.pruned == "connectivity"]
        parts = []
        if pattern:
            # depthwise filters have one kernel each: keep and G do not apply to them
            full = [l for l in pattern if l.pattern_ids.shape[1] > 1]
            what = [f"keep {_values(l.keep for l in full)}, G={_values(l.group_size for l in full)}"] if full else []
            what += [f"{len(pattern) - len(full)} depthwise"] if len(full) < len(pattern) else []
            parts.append(f"{len(pattern)} 3x3 to {len(pattern[0].library)} patterns ({'; '.join(what)})")
        if blocks:
            parts.append(f"{len(blocks)} 1x1 to blocks (keep {_values(l.keep for l in blocks)}, "
                         f"G={_values(l.group_size for l in blocks)})")
        lines = [
            f"pruned {len(pattern) + len(blocks)} of {len(self.convs)} convs: {', '.join(parts) or 'none'}; "
            f"{self.meta.compression():.2f}x fewer weights in them, {self.compression():.2f}x over all convs",
            f"compiler (lowering_rule): {self.pattern_convs} convs lowered as pattern convs (or 1x1 blocks), "
            f"{self.dense_convs} kept dense",
        ]
        why = Counter(c.reason for c in self.convs if not c.lowered)
        for reason, n in why.most_common():
            names = [c.name for c in self.convs if not c.lowered and c.reason == reason]
            shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
            lines.append(f"  dense x{n}: {reason} [{shown}]")
        return "\n".join(lines)


def _values(xs) -> str:
    """Distinct values, as text: "8" or "4/8"."""
    return "/".join(f"{x:.3g}" if isinstance(x, float) else str(x) for x in sorted(set(xs)))


def summarize(model: nn.Module, meta: PruningMeta) -> PruningSummary:
    """Verdict for every ``nn.Conv2d`` of ``model`` pruned as ``meta`` says; why an unpruned
    conv was left dense comes from ``meta.config`` (read with ``PruningConfig.from_dict``)."""
    layers = {layer.name: layer for layer in meta.layers}
    config = PruningConfig.from_dict(meta.config)
    # a config that would not apply to this model (exclude names) still gives pruned layers' verdicts
    try:
        why_not = {name: why for name, (_, why) in classify_convs(model, config).items()}
    except ValueError:
        why_not = {}
    verdicts = []
    for name, m in model.named_modules():
        if not isinstance(m, nn.Conv2d):
            continue
        layer = layers.get(name)
        weights = m.weight.numel()
        if layer is None:
            verdicts.append(ConvVerdict(name, None, False, f"not pruned: {why_not.get(name) or 'not in the metadata'}",
                                        weights, weights))
            continue
        reason = pattern_lowering_reason(tuple(m.kernel_size), m.in_channels, m.out_channels, m.groups,
                                         layer.group_size, layer.keep if layer.kind == "connectivity" else None)
        verdicts.append(ConvVerdict(name, layer.kind, reason is None, reason or "", weights, int(layer.mask.sum())))
    return PruningSummary(verdicts, meta)
