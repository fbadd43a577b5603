"""PCONV pattern + connectivity pruning for PyTorch CNNs.

Configure (:class:`PruningConfig`), prepare (:class:`PatternPruner`), call its hooks from
your own training loop (ADMM penalty, epoch updates, masked retraining; the loop is in
``pruner.py``'s docstring), finalize into :class:`PruningMeta`, and store the model with
:func:`save_pruned` for the compiler. :func:`prune_and_retrain` runs the whole recipe;
:func:`summarize` says what was pruned and which convs the compiler will lower as pattern convs
(the static rule in :mod:`~pconv_mlir.pruning.lowering_rule`).
"""

from pconv_mlir.pruning.admm import Admm
from pconv_mlir.pruning.config import PruningConfig
from pconv_mlir.pruning.metadata import LayerKind, LayerMeta, PruningMeta
from pconv_mlir.pruning.lowering_rule import conv_shape_reason, pattern_lowering_reason
from pconv_mlir.pruning.pruner import PatternPruner, classify_convs, find_prunable
from pconv_mlir.pruning.recipe import evaluate, fit, prune_and_retrain
from pconv_mlir.pruning.serialization import load_pruned, save_pruned
from pconv_mlir.pruning.summary import ConvVerdict, PruningSummary, summarize

__all__ = [
    "Admm",
    "ConvVerdict",
    "LayerKind",
    "LayerMeta",
    "PatternPruner",
    "PruningConfig",
    "PruningMeta",
    "PruningSummary",
    "classify_convs",
    "conv_shape_reason",
    "evaluate",
    "find_prunable",
    "fit",
    "load_pruned",
    "pattern_lowering_reason",
    "prune_and_retrain",
    "save_pruned",
    "summarize",
]
