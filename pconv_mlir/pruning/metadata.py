"""What a pruned model promises, layer by layer: the contract between pruner and compiler.

The compiler does not read this metadata: `pconv-raise-pattern-conv` re-derives patterns and
blocks from the weights alone, so any model (also one pruned elsewhere) compiles the same way. A
kept kernel that holds zeros by chance is still right: the raise pass picks a library pattern that
covers its non-zeros. The metadata serves the pruner itself: save/load of a pruned checkpoint,
masked retraining, the prune summary and its forecast of what the compiler will accelerate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Sequence

import numpy as np
import torch
from torch import nn

from pconv_mlir.patterns import PRUNED, Pattern, library_masks, normalize_pattern
from pconv_mlir.pruning.projection import group_index, keep_count

__all__ = ["LayerKind", "LayerMeta", "PruningMeta"]

#: ``"pattern"``: a 3x3 conv with pattern and connectivity pruning. ``"connectivity"``: a
#: 1x1 conv with block connectivity pruning only (empty library; a kept kernel has id 0):
#: every filter of a block of ``group_size`` keeps the same input channels, so the weight
#: [K, Cg] has whole zero columns per block.
LayerKind = Literal["pattern", "connectivity"]


@dataclass
class LayerMeta:
    """Pruning metadata of one ``nn.Conv2d`` with weight shape (K, Cg, kh, kw).

    Attributes:
      name: qualified module name in the model (``model.get_submodule(name)``).
      kind: see :data:`LayerKind`.
      library: the pattern library, 4-tuples of taps in ``pconv_mlir.patterns`` numbering.
      pattern_ids: int64 array (K, Cg): index into ``library``, ``PRUNED`` (-1) for a cut
        kernel; for ``"connectivity"`` layers 0 means kept.
      group_size: G actually applied: output channels [0, G), [G, 2G), ... inside each conv
        group share kept channels and patterns (see ``projection.group_index``). It is at
        most K / conv_groups, so it is 1 for depthwise convs.
      keep: connectivity keep rate of this layer (the config's ``keep`` for 3x3 layers,
        ``keep_1x1`` for 1x1 ones); every filter keeps exactly ``keep_count(Cg, keep)``.
      conv_groups: the conv's ``groups``.
      kernel_size: (kh, kw).
    """

    name: str
    kind: LayerKind
    library: list[Pattern]
    pattern_ids: np.ndarray
    group_size: int
    keep: float
    conv_groups: int
    kernel_size: tuple[int, int]

    @property
    def kept(self) -> np.ndarray:
        """Bool (K, Cg): which kernels survive connectivity pruning."""
        return self.pattern_ids != PRUNED

    @property
    def mask(self) -> np.ndarray:
        """0/1 float32 weight mask (K, Cg, kh, kw)."""
        if self.kind == "connectivity":
            full = np.ones((1, *self.kernel_size), np.float32)
        else:
            full = library_masks(self.library)
        rows = np.concatenate([full, np.zeros((1, *self.kernel_size), np.float32)])
        return rows[np.where(self.kept, self.pattern_ids, len(rows) - 1)]

    def check(self, weight: torch.Tensor, conv_groups: int) -> None:
        """Raise ValueError unless this metadata describes ``weight`` exactly."""
        ids, where = self.pattern_ids, f"layer {self.name!r}"
        shape = tuple(weight.shape)
        if ids.shape != shape[:2] or tuple(self.kernel_size) != shape[2:]:
            raise ValueError(f"{where}: metadata is for {ids.shape + tuple(self.kernel_size)}, weight is {shape}")
        if conv_groups != self.conv_groups:
            raise ValueError(f"{where}: metadata says groups={self.conv_groups}, conv has {conv_groups}")
        self._check_ids()
        gidx = group_index(shape[0], self.group_size, conv_groups).numpy()
        first = np.unique(gidx, return_index=True)[1]
        if (ids != ids[first][gidx]).any():
            raise ValueError(f"{where}: filters of a group of {self.group_size} differ in kept channels or patterns")
        want = keep_count(shape[1], self.keep)
        counts = self.kept.sum(1)
        if (counts != want).any():
            raise ValueError(f"{where}: filters keep {sorted(set(counts.tolist()))} kernels, expected {want}")
        outside = weight.detach().float().cpu().numpy() * (1.0 - self.mask) != 0
        if outside.any():
            k, c = np.argwhere(outside.any(axis=(2, 3)))[0]
            raise ValueError(f"{where}: kernel ({k}, {c}) has non-zero weights outside its pattern")

    def _check_ids(self) -> None:
        where = f"layer {self.name!r}"
        if self.group_size < 1:
            raise ValueError(f"{where}: group_size must be >= 1, got {self.group_size}")
        if self.kind == "pattern":
            if tuple(self.kernel_size) != (3, 3):
                raise ValueError(f"{where}: pattern layers need 3x3 kernels, got {self.kernel_size}")
            if len(set(self.library)) != len(self.library):
                raise ValueError(f"{where}: library has duplicate patterns")
            n_ids = len(self.library)
        elif self.kind == "connectivity":
            if self.library:
                raise ValueError(f"{where}: connectivity layers have no pattern library")
            n_ids = 1
        else:
            raise ValueError(f"{where}: unknown kind {self.kind!r}")
        if self.pattern_ids.size and not (PRUNED <= self.pattern_ids.min() and self.pattern_ids.max() < n_ids):
            raise ValueError(f"{where}: pattern ids must lie in [{PRUNED}, {n_ids})")

    def to_dict(self) -> dict[str, Any]:
        """Plain data + tensors (loadable with ``torch.load(weights_only=True)``)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "library": [list(p) for p in self.library],
            "pattern_ids": torch.from_numpy(np.ascontiguousarray(self.pattern_ids, np.int64)),
            "mask": torch.from_numpy(self.mask.astype(bool)),
            "group_size": int(self.group_size),
            "keep": float(self.keep),
            "conv_groups": int(self.conv_groups),
            "kernel_size": list(self.kernel_size),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "LayerMeta":
        """Inverse of :meth:`to_dict`; ValueError on missing keys, bad patterns or a stored
        mask that disagrees with the pattern ids."""
        try:
            meta = cls(
                name=str(d["name"]),
                kind=d["kind"],
                library=[normalize_pattern(p) for p in d["library"]],
                pattern_ids=np.asarray(d["pattern_ids"], dtype=np.int64),
                group_size=int(d["group_size"]),
                keep=float(d["keep"]),
                conv_groups=int(d["conv_groups"]),
                kernel_size=tuple(int(k) for k in d["kernel_size"]),  # type: ignore[arg-type]
            )
            stored_mask = np.asarray(d["mask"], dtype=bool)
        except (KeyError, TypeError) as e:
            raise ValueError(f"malformed layer metadata ({e!r})") from e
        meta._check_ids()
        if stored_mask.shape != meta.pattern_ids.shape + meta.kernel_size or (stored_mask != meta.mask.astype(bool)).any():
            raise ValueError(f"layer {meta.name!r}: stored mask disagrees with its pattern ids")
        return meta


@dataclass
class PruningMeta:
    """Metadata of a whole pruned model.

    Attributes:
      layers: one :class:`LayerMeta` per pruned conv, in module order.
      arch, arch_kwargs: how to rebuild the model with ``pconv_mlir.models.build_model``
        (None when the model is not a registered one: then loading needs the model).
      config: the ``PruningConfig`` used, as a dict.
      info: free-form plain data (mode, epochs, accuracy, ...).
      input_shape: (N, C, H, W) of the inputs the model was trained on, if known; the
        compiler needs an example input to trace the model.
    """

    layers: list[LayerMeta]
    arch: str | None = None
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    input_shape: list[int] | None = None

    def layer(self, name: str) -> LayerMeta:
        """The metadata of the conv named ``name`` (KeyError if it was not pruned)."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def compression(self) -> float:
        """Weights of the pruned convs before / after pruning (about 8 at PCONV's rates)."""
        total = sum(layer.mask.size for layer in self.layers)
        kept = sum(int(layer.mask.sum()) for layer in self.layers)
        return total / kept if kept else float("inf")

    def check(self, model: nn.Module) -> None:
        """Raise ValueError unless every layer's metadata matches ``model``'s conv weights."""
        modules = dict(model.named_modules())
        for layer in self.layers:
            conv = modules.get(layer.name)
            if not isinstance(conv, nn.Conv2d):
                raise ValueError(f"layer {layer.name!r}: no nn.Conv2d of that name in the model")
            layer.check(conv.weight, conv.groups)

    def to_dict(self) -> dict[str, Any]:
        """Plain data + tensors (loadable with ``torch.load(weights_only=True)``)."""
        return {
            "layers": [layer.to_dict() for layer in self.layers],
            "arch": self.arch,
            "arch_kwargs": dict(self.arch_kwargs),
            "config": dict(self.config),
            "info": dict(self.info),
            "input_shape": None if self.input_shape is None else [int(d) for d in self.input_shape],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PruningMeta":
        """Inverse of :meth:`to_dict`; ValueError when malformed."""
        try:
            layers: Sequence[dict[str, Any]] = d["layers"]
            shape = d["input_shape"]
            return cls(
                [LayerMeta.from_dict(x) for x in layers], d["arch"], dict(d["arch_kwargs"]), dict(d["config"]),
                dict(d["info"]), None if shape is None else [int(x) for x in shape],
            )
        except (KeyError, TypeError) as e:
            raise ValueError(f"malformed pruning metadata ({e!r})") from e
