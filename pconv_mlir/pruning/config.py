"""What to prune and how hard: one validated, immutable config per pruning run."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["PruningConfig"]


@dataclass(frozen=True)
class PruningConfig:
    """Settings of :class:`~pconv_mlir.pruning.PatternPruner`.

    Structure:
      num_patterns: size of the model-wide pattern library (PCONV found 8 best; 4..12).
      keep: fraction of kernels each filter keeps under connectivity pruning (1/3.6 with
        4-of-9 patterns gives about 8x fewer 3x3 conv weights).
      group_size: G consecutive output channels share kept channels and patterns. 1 is
        PCONV's per-kernel freedom; the compiler's fast lowering wants G > 1 (8 or more).
      prune_1x1: also connectivity-prune non-depthwise 1x1 convs (they have no patterns).
      exclude: qualified module names left dense (e.g. a 3-channel stem).

    ADMM (ignored by one-shot pruning):
      rho: initial penalty weight of both constraint terms.
      rho_growth: factor applied to rho after every ADMM update, up to ``rho_max``; a
        growing penalty pulls weights onto the constraint sets progressively.
      admm_interval: epochs between ADMM updates (Z, Y re-projected; U, V accumulated).
    """

    num_patterns: int = 8
    keep: float = 1 / 3.6
    group_size: int = 1
    prune_1x1: bool = False
    exclude: tuple[str, ...] = ()
    rho: float = 1e-2
    rho_growth: float = 1.5
    rho_max: float = 1.0
    admm_interval: int = 1

    def __post_init__(self) -> None:
        checks = [
            (4 <= self.num_patterns <= 12, f"num_patterns must be in 4..12, got {self.num_patterns}"),
            (0.0 < self.keep <= 1.0, f"keep must be in (0, 1], got {self.keep}"),
            (self.group_size >= 1, f"group_size must be >= 1, got {self.group_size}"),
            (self.rho > 0.0, f"rho must be > 0, got {self.rho}"),
            (self.rho_growth >= 1.0, f"rho_growth must be >= 1, got {self.rho_growth}"),
            (self.rho_max >= self.rho, f"rho_max ({self.rho_max}) must be >= rho ({self.rho})"),
            (self.admm_interval >= 1, f"admm_interval must be >= 1, got {self.admm_interval}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        object.__setattr__(self, "exclude", tuple(self.exclude))

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form, stored with a pruned model."""
        d = asdict(self)
        d["exclude"] = list(self.exclude)
        return d
