"""A ready-made training recipe around the pruner hooks, shared by ``pconv prune`` and
``scripts/prune_accuracy.py``. It is also the reference use of the hooks in a real loop.

Every phase uses Adam with a cosine learning-rate decay to zero over the phase, so each
phase ends converged whatever its length. One-shot pruning gets the epochs ADMM would
have used as extra retraining, so both modes are compared at the same training budget.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from pconv_mlir.pruning.config import PruningConfig
from pconv_mlir.pruning.metadata import PruningMeta
from pconv_mlir.pruning.pruner import PatternPruner

__all__ = ["Mode", "Phase", "evaluate", "fit", "prune_and_retrain"]

Mode = Literal["admm", "oneshot"]
Phase = Literal["dense", "admm", "retrain"]


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader) -> float:
    """Top-1 accuracy in percent."""
    model.eval()
    correct = total = 0
    for x, y in loader:
        correct += int((model(x).argmax(1) == y).sum())
        total += len(y)
    return 100.0 * correct / total


def fit(
    model: nn.Module,
    loader: DataLoader,
    epochs: int,
    lr: float,
    *,
    phase: Phase = "dense",
    pruner: PatternPruner | None = None,
    weight_decay: float = 0.0,
    progress: bool = False,
    desc: str = "",
    residuals: list[float] | None = None,
) -> float:
    """Train ``model`` for ``epochs``; ``phase`` says which pruner hooks run. Returns the
    mean task loss of the last epoch. In the ADMM phase the ADMM residual after each epoch's
    update is appended to ``residuals`` when given."""
    if phase != "dense" and pruner is None:
        raise ValueError(f"phase {phase!r} needs a pruner")
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs * len(loader)))
    last = float("nan")
    bar = tqdm(range(epochs), desc=desc or phase, disable=not progress, leave=False)
    for _ in bar:
        model.train()
        total, batches = 0.0, 0
        for x, y in loader:
            task = F.cross_entropy(model(x), y)
            loss = task + pruner.admm_loss() if phase == "admm" and pruner else task
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            if phase == "retrain" and pruner:
                pruner.after_optimizer_step(optimizer)
            total, batches = total + task.item(), batches + 1
        last = total / max(1, batches)
        postfix = {"loss": f"{last:.4f}"}
        if phase == "admm" and pruner:
            pruner.on_epoch_end()
            residual = pruner.admm_residual()
            if residuals is not None:
                residuals.append(residual)
            postfix.update(residual=f"{residual:.3f}", rho=f"{pruner.rho:.2g}")
        bar.set_postfix(postfix)
    return last


def prune_and_retrain(
    model: nn.Module,
    loader: DataLoader,
    config: PruningConfig,
    mode: Mode,
    *,
    admm_epochs: int,
    retrain_epochs: int,
    admm_lr: float = 1e-3,
    retrain_lr: float = 1e-3,
    progress: bool = False,
    seed: int | None = None,
) -> PruningMeta:
    """Prune a trained ``model`` in place and return its metadata.

    ``"admm"``: ``admm_epochs`` of ADMM training, hard prune, ``retrain_epochs`` of masked
    retraining. ``"oneshot"``: hard prune at once, then ``admm_epochs + retrain_epochs`` of
    masked retraining (the same budget). With ``seed``, each phase starts from
    ``torch.manual_seed(seed + phase number)``, so a phase does not depend on what ran before
    it in the process. In ADMM mode ``meta.info["admm_residual"]`` holds the residual before
    ADMM, then after each ADMM epoch (see :mod:`pconv_mlir.pruning.admm` for when it shrinks).
    """
    if mode not in ("admm", "oneshot"):
        raise ValueError(f"mode must be 'admm' or 'oneshot', got {mode!r}")
    pruner = PatternPruner(config).prepare(model)
    if mode == "admm":
        residuals = [pruner.admm_residual()]
        if seed is not None:
            torch.manual_seed(seed + 1)
        fit(model, loader, admm_epochs, admm_lr, phase="admm", pruner=pruner, progress=progress, desc="admm",
            residuals=residuals)
    else:
        retrain_epochs += admm_epochs
    pruner.hard_prune()
    if seed is not None:
        torch.manual_seed(seed + 2)
    fit(model, loader, retrain_epochs, retrain_lr, phase="retrain", pruner=pruner, progress=progress, desc="retrain")
    meta = pruner.finalize()
    meta.info.update(mode=mode, admm_epochs=admm_epochs if mode == "admm" else 0, retrain_epochs=retrain_epochs)
    if mode == "admm":
        meta.info["admm_residual"] = residuals
    return meta
