"""PCONV pattern + connectivity pruning for PyTorch CNNs.

Configure (:class:`PruningConfig`), prepare (:class:`PatternPruner`), call its hooks from
your own training loop (ADMM penalty, epoch updates, masked retraining; the loop is in
``pruner.py``'s docstring), finalize into :class:`PruningMeta`, and store the model with
:func:`save_pruned` for the compiler. :func:`prune_and_retrain` runs the whole recipe;
:func:`summarize` says what was pruned and which convs the compiler will lower as pattern convs
(the static rule in :mod:`~pconv_mlir.pruning.lowering_rule`).
"""

import importlib

# name -> defining module; loaded on first use, so that importing the (torch-free) config for the
# CLI's parser does not pull in torch.
_EXPORTS = {
    "Admm": "admm",
    "PruningConfig": "config",
    "LayerKind": "metadata", "LayerMeta": "metadata", "PruningMeta": "metadata",
    "conv_shape_reason": "lowering_rule", "pattern_lowering_reason": "lowering_rule",
    "PatternPruner": "pruner", "classify_convs": "pruner", "find_prunable": "pruner",
    "evaluate": "recipe", "fit": "recipe", "prune_and_retrain": "recipe",
    "load_pruned": "serialization", "save_pruned": "serialization",
    "ConvVerdict": "summary", "PruningSummary": "summary", "summarize": "summary",
}


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)


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
