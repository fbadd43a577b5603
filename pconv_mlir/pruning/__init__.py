"""PCONV pattern + connectivity pruning for PyTorch CNNs.

Configure (:class:`PruningConfig`), prepare (:class:`PatternPruner`), call its hooks from
your own training loop (ADMM penalty, epoch updates, masked retraining; the loop is in
``pruner.py``'s docstring), finalize into :class:`PruningMeta`, and store the model with
:func:`save_pruned` for the compiler. :func:`prune_and_retrain` runs the whole recipe.
"""

from pconv_mlir.pruning.admm import Admm
from pconv_mlir.pruning.config import PruningConfig
from pconv_mlir.pruning.metadata import LayerKind, LayerMeta, PruningMeta
from pconv_mlir.pruning.pruner import PatternPruner, find_prunable
from pconv_mlir.pruning.recipe import evaluate, fit, prune_and_retrain
from pconv_mlir.pruning.serialization import load_pruned, save_pruned

__all__ = [
    "Admm",
    "LayerKind",
    "LayerMeta",
    "PatternPruner",
    "PruningConfig",
    "PruningMeta",
    "evaluate",
    "find_prunable",
    "fit",
    "load_pruned",
    "prune_and_retrain",
    "save_pruned",
]
