"""One-file storage of a pruned model: architecture, weights and pruning metadata.

The file is ``torch.save`` of a dict holding only plain data and tensors, so it loads with
``torch.load(weights_only=True)`` (no pickled classes, nothing executed on load)::

    {"format": "pconv-pruned", "version": 1,
     "state_dict": {...},
     "meta": {"arch": "small_cnn", "arch_kwargs": {...}, "config": {...}, "info": {...},
              "input_shape": [1, 1, 16, 16] or None,
              "layers": [{"name", "kind", "library", "pattern_ids", "mask",
                          "group_size", "keep", "conv_groups", "kernel_size"}, ...]}}

``library`` is a list of 4-tap lists, ``pattern_ids`` an int64 tensor (K, Cg) with -1 for
cut kernels, ``mask`` a bool tensor of the weight's shape. See
:class:`~pconv_mlir.pruning.metadata.LayerMeta` and ``PruningMeta`` for each field.
"""

from __future__ import annotations

import json
import os
import pickle
from typing import Any

import torch
from torch import nn

from pconv_mlir.fileio import save_torch
from pconv_mlir.models import build_model
from pconv_mlir.pruning.metadata import PruningMeta

__all__ = ["FORMAT", "VERSION", "save_pruned", "load_pruned"]

FORMAT = "pconv-pruned"
VERSION = 1


def save_pruned(path: str | os.PathLike[str], model: nn.Module, meta: PruningMeta) -> None:
    """Write ``model`` and ``meta`` to ``path``; ValueError if they disagree or ``meta``
    holds data that is not plain (JSON-like) and so would not load back safely."""
    meta.check(model)
    for field in ("arch_kwargs", "config", "info"):
        try:
            json.dumps(getattr(meta, field))
        except TypeError as e:
            raise ValueError(f"meta.{field} must be plain data: {e}") from e
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "meta": meta.to_dict(),
    }
    save_torch(path, payload)


def load_pruned(
    path: str | os.PathLike[str], model: nn.Module | None = None
) -> tuple[nn.Module, PruningMeta]:
    """Read a file written by :func:`save_pruned`.

    The model is rebuilt from the stored architecture name (``pconv_mlir.models``) unless
    ``model`` is given (required when the stored arch is None). Raises ValueError when the
    file is not a pruned model, when the weights do not fit the model, or when the metadata
    does not match the weights (shapes, group structure, per-filter keep counts, a non-zero
    weight outside its kernel's pattern).
    """
    try:
        payload: Any = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, EOFError, RuntimeError) as e:
        raise ValueError(f"{path}: not a readable pruned-model file ({e})") from e
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT!r} file")
    if payload.get("version") != VERSION:
        raise ValueError(f"{path}: format version {payload.get('version')!r}, this code reads {VERSION}")
    state_dict, meta_dict = payload.get("state_dict"), payload.get("meta")
    if not isinstance(meta_dict, dict):
        raise ValueError(f"{path}: malformed: 'meta' must be a dict of pruning metadata")
    if not isinstance(state_dict, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state_dict.items()):
        raise ValueError(f"{path}: malformed: 'state_dict' must map parameter names to tensors")
    meta = PruningMeta.from_dict(meta_dict)
    if model is None:
        if meta.arch is None:
            raise ValueError(f"{path}: the stored model has no registered architecture; pass model=")
        try:
            model = build_model(meta.arch, **meta.arch_kwargs)
        except (TypeError, ValueError) as e:  # ValueError: arguments build_model refuses (huge, empty)
            raise ValueError(f"{path}: cannot rebuild the model: {e}") from e
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as e:
        raise ValueError(f"{path}: weights do not fit the model: {e}") from e
    meta.check(model)
    return model, meta
