"""What to prune and how hard: one validated, immutable config per pruning run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

__all__ = ["PruningConfig"]

# Settings whose meaning a config dict written before they existed implies (files saved by
# older versions lack the key): 1x1 convs kept the 3x3 rate and G, and every 3x3 conv was
# pruned, the ones the compiler keeps dense included.
_LEGACY = {"group_size_1x1": None, "prune_unaccelerated": True}


@dataclass(frozen=True)
class PruningConfig:
    """Settings of :class:`~pconv_mlir.pruning.PatternPruner`.

    Structure:
      num_patterns: size of the model-wide pattern library (PCONV found 8 best; 4..12).
      keep: fraction of kernels each filter of a 3x3 conv keeps under connectivity pruning
        (1/3.6 with 4-of-9 patterns gives about 8x fewer 3x3 conv weights).
      group_size: G consecutive output channels share kept channels and patterns. 8 (the
        default) is the smallest G the compiler lowers to pattern convs
        (``lowering_rule.MIN_GROUP_SIZE``); 1 is PCONV's per-kernel freedom, which the compiler
        keeps dense. ``results/pruning_accuracy.md``: G=8 costs no more accuracy than G=1.
      prune_1x1: also prune non-depthwise 1x1 convs by *block connectivity*: in blocks of
        ``group_size_1x1`` consecutive filters (never straddling a conv group; the last block
        of a group may be shorter) every filter keeps the same ``keep_1x1`` fraction of input
        channels, chosen by the block's column norms; the other weight columns are exactly
        zero. The compiler lowers such a 1x1 conv as blocks (gather + batched GEMM) where its cost
        model says they pay (``lowering_rule.pattern_lowering_reason``; few blocks, half or
        fewer of the channels kept) and as a dense matmul otherwise; off by default.
      keep_1x1: fraction of input channels a 1x1 block keeps (1/keep fewer 1x1 MACs). 0.5 by
        default, the largest cut that stayed within 0.5 pt of dense with ADMM on digits
        (``results/pruning_accuracy_1x1.md``, G=8 with 3x3 patterns, 5 seeds: 2x cost 0.41 pt on
        small_resnet and 0.19 on small_mobilenet, one-shot 0.59 on both; 3x cost 0.70 and 0.89).
      group_size_1x1: G of the 1x1 blocks; None (the default) uses ``group_size``.
      prune_unaccelerated: also prune convs the compiler keeps dense whatever their weights
        (``lowering_rule.conv_shape_reason``): 3x3 convs with fewer than 8 input channels
        per group (a 1- or 3-channel stem) and grouped non-depthwise convs. Off by default:
        pruning them costs accuracy and buys no speed.
      exclude: qualified module names left dense.

    ADMM (ignored by one-shot pruning):
      rho: initial penalty weight of both constraint terms.
      rho_growth: factor applied to rho after every ADMM update, up to ``rho_max``; a
        growing penalty pulls weights onto the constraint sets progressively.
      admm_interval: epochs between ADMM updates (Z, Y re-projected; U, V accumulated).
    """

    num_patterns: int = 8
    keep: float = 1 / 3.6
    group_size: int = 8
    prune_1x1: bool = False
    keep_1x1: float = 0.5
    group_size_1x1: int | None = None
    prune_unaccelerated: bool = False
    exclude: tuple[str, ...] = ()
    rho: float = 1e-2
    rho_growth: float = 1.5
    rho_max: float = 1.0
    admm_interval: int = 1

    def __post_init__(self) -> None:
        checks = [
            (4 <= self.num_patterns <= 12, f"num_patterns must be in 4..12, got {self.num_patterns}"),
            (0.0 < self.keep <= 1.0, f"keep must be in (0, 1], got {self.keep}"),
            (0.0 < self.keep_1x1 <= 1.0, f"keep_1x1 must be in (0, 1], got {self.keep_1x1}"),
            (self.group_size >= 1, f"group_size must be >= 1, got {self.group_size}"),
            (self.group_size_1x1 is None or self.group_size_1x1 >= 1,
             f"group_size_1x1 must be >= 1 (or None for group_size), got {self.group_size_1x1}"),
            (self.rho > 0.0, f"rho must be > 0, got {self.rho}"),
            (self.rho_growth >= 1.0, f"rho_growth must be >= 1, got {self.rho_growth}"),
            (self.rho_max >= self.rho, f"rho_max ({self.rho_max}) must be >= rho ({self.rho})"),
            (self.admm_interval >= 1, f"admm_interval must be >= 1, got {self.admm_interval}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        object.__setattr__(self, "exclude", tuple(self.exclude))

    @property
    def block_size_1x1(self) -> int:
        """G of the 1x1 blocks as applied: ``group_size_1x1``, else ``group_size``."""
        return self.group_size if self.group_size_1x1 is None else self.group_size_1x1

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form, stored with a pruned model."""
        d = asdict(self)
        d["exclude"] = list(self.exclude)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PruningConfig":
        """Inverse of :meth:`to_dict`. A dict saved before a setting existed gets the value
        that reproduces what the old code did (1x1 convs at ``keep``, every 3x3 conv pruned);
        unknown keys are ignored. ValueError on bad values."""
        known = {f.name for f in fields(cls)}
        legacy = {"keep_1x1": d.get("keep", cls.keep), **_LEGACY}
        values = {**legacy, **{k: v for k, v in d.items() if k in known}}
        values["exclude"] = tuple(values.get("exclude", ()))
        try:
            return cls(**values)
        except TypeError as e:
            raise ValueError(f"bad pruning config {d!r}: {e}") from e
