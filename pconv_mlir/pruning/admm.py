"""ADMM for constrained weights, in scaled form (Boyd et al., 2011, section 3.1.1).

Each (weight W, constraint set S) pair gets an auxiliary copy A on S and a scaled dual D.
PCONV uses two sets per 3x3 conv: patterns, whose pair is the paper's (Z, U), and
connectivity, the paper's (Y, V). Training minimises

    task_loss + sum over pairs of rho/2 * ||W - A + D||^2

by SGD; every update A = project_S(W + D) and D += W - A. The penalty pulls W towards
weights that satisfy each constraint while the task loss keeps it accurate, so the final
hard projection removes little. rho may grow at each update; the scaled duals are then
multiplied by rho_old / rho_new so that the unscaled duals rho * D are preserved.

The residual (:meth:`Admm.residual`) shrinks only if the W step between two updates gets
close to its minimiser, i.e. the optimiser can carry the weights to be cut most of the way
to zero. With Adam a step moves a weight by about the learning rate whatever rho is, so the
phase needs lr x steps of the order of those weights; rho only has to make the penalty
outweigh the task gradient on them. When W cannot follow, D keeps adding the same gap, W + D
grows where the weights should be cut, the projection picks other kernels and the residual
grows instead: ADMM then does nothing for the hard prune. Both cases are checked by
``test_admm_residual_shrinks_with_the_recipe``; the demo records its residuals per epoch
(``results/demo/report.json``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

__all__ = ["Projection", "AdmmPair", "Admm"]

#: Maps a weight tensor to its nearest point on a constraint set.
Projection = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class AdmmPair:
    """One constraint on one weight: its projection, auxiliary variable and scaled dual."""

    weight: nn.Parameter
    project: Projection
    aux: torch.Tensor
    dual: torch.Tensor


class Admm:
    """ADMM state over many (weight, projection) constraints with a shared rho schedule."""

    def __init__(
        self, constraints: list[tuple[nn.Parameter, Projection]], rho: float, rho_growth: float = 1.0, rho_max: float = 1.0
    ) -> None:
        self.rho, self.rho_growth, self.rho_max = rho, rho_growth, rho_max
        self.pairs: list[AdmmPair] = []
        with torch.no_grad():
            for weight, project in constraints:
                self.pairs.append(AdmmPair(weight, project, project(weight.detach()), torch.zeros_like(weight)))

    def loss(self) -> torch.Tensor:
        """The augmented-Lagrangian penalty to add to the task loss (differentiable in W)."""
        total = sum(((p.weight - p.aux + p.dual).square().sum() for p in self.pairs), torch.zeros(()))
        return 0.5 * self.rho * total

    @torch.no_grad()
    def update(self) -> None:
        """Re-project the auxiliaries, accumulate the duals, then advance the rho schedule."""
        for p in self.pairs:
            w = p.weight.detach()
            p.aux = p.project(w + p.dual)
            p.dual += w - p.aux
        new_rho = min(self.rho * self.rho_growth, self.rho_max)
        for p in self.pairs:
            p.dual *= self.rho / new_rho
        self.rho = new_rho

    @torch.no_grad()
    def residual(self) -> float:
        """Relative primal residual sqrt(sum ||W - A||^2 / sum ||W||^2): how far the weights
        still are from the constraint sets (0 means a hard prune changes nothing)."""
        gap = sum(float((p.weight - p.aux).square().sum()) for p in self.pairs)
        norm = sum(float(p.weight.square().sum()) for p in self.pairs)
        return (gap / norm) ** 0.5 if norm else 0.0
