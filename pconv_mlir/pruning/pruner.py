"""The pruning API: configure, prepare, hook into your own training loop, finalize.

Like ``torch.ao.pruning``, the pruner never owns the training loop; it offers hooks::

    pruner = PatternPruner(PruningConfig(group_size=8)).prepare(model)  # a trained model

    for epoch in range(admm_epochs):          # 1. ADMM (skip it for one-shot pruning)
        for x, y in loader:
            loss = criterion(model(x), y) + pruner.admm_loss()
            optimizer.zero_grad(); loss.backward(); optimizer.step()
        pruner.on_epoch_end()

    pruner.hard_prune()                        # 2. project onto patterns + connectivity
    for epoch in range(retrain_epochs):        # 3. masked retraining
        for x, y in loader:
            loss = criterion(model(x), y)
            optimizer.zero_grad(); loss.backward(); optimizer.step()
            pruner.after_optimizer_step(optimizer)

    meta = pruner.finalize()                   # 4. metadata for save_pruned / the compiler

Which layers (:func:`classify_convs`): every ``nn.Conv2d`` with a 3x3 kernel, depthwise
included, gets patterns and connectivity; with ``prune_1x1`` the non-depthwise 1x1 convs get
block connectivity only (blocks of G filters keep the same input channels). A depthwise filter
has a single kernel, and every filter keeps at least one, so connectivity pruning never removes
depthwise kernels: cutting them would silence channels outright. Unless
``prune_unaccelerated``, convs whose shape alone keeps them dense in the compiler
(``lowering_rule.conv_shape_reason``: a 3x3 stem with < 8 input channels, grouped
non-depthwise convs) are left dense, and :func:`~pconv_mlir.pruning.summarize` says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from pconv_mlir.patterns import PRUNED, Pattern
from pconv_mlir.pruning.admm import Admm, Projection
from pconv_mlir.pruning.config import PruningConfig
from pconv_mlir.pruning.lowering_rule import conv_shape_reason
from pconv_mlir.pruning.metadata import LayerKind, LayerMeta, PruningMeta
from pconv_mlir.pruning.projection import (
    group_index,
    ids_to_mask,
    keep_count,
    project_connectivity,
    project_joint,
    project_patterns,
    select_library,
)

__all__ = ["PatternPruner", "classify_convs", "find_prunable"]


def classify_convs(model: nn.Module, config: PruningConfig) -> dict[str, tuple[LayerKind | None, str]]:
    """Every ``nn.Conv2d`` of ``model`` in module order: ``(kind, "")`` for the convs ``config``
    prunes, ``(None, why it stays dense)`` for the others. ValueError if ``config.exclude``
    names a module the model does not have."""
    modules = dict(model.named_modules())
    unknown = [name for name in config.exclude if name not in modules]
    if unknown:
        raise ValueError(f"exclude names modules the model does not have: {unknown}")
    found: dict[str, tuple[LayerKind | None, str]] = {}
    for name, m in modules.items():
        if not isinstance(m, nn.Conv2d):
            continue
        kernel = tuple(m.kernel_size)
        kind: LayerKind | None = None
        if kernel == (3, 3):
            kind, why = "pattern", ""
        elif kernel == (1, 1) and m.weight.shape[1] > 1:
            kind, why = ("connectivity", "") if config.prune_1x1 else (None, "1x1, prune_1x1 is off")
        elif kernel == (1, 1):
            why = "1x1 with one input channel per group: nothing to cut"
        else:
            why = f"kernel {kernel[0]}x{kernel[1]} (patterns cover 3x3)"
        shape = conv_shape_reason(kernel, m.in_channels, m.out_channels, m.groups)
        if name in config.exclude:
            kind, why = None, "excluded"
        elif kind is not None and shape and not config.prune_unaccelerated:
            kind, why = None, f"skipped as the compiler keeps it dense: {shape} (prune_unaccelerated prunes it)"
        found[name] = (kind, why)
    return found


def find_prunable(model: nn.Module, config: PruningConfig) -> dict[str, LayerKind]:
    """Qualified names of the convs ``config`` prunes, with their kind, in module order."""
    return {name: kind for name, (kind, _) in classify_convs(model, config).items() if kind is not None}


@dataclass
class _Layer:
    """One pruned conv: its grouping and, once hard-pruned, its pattern ids, mask and the
    gradient hook that applies the mask."""

    name: str
    conv: nn.Conv2d
    kind: LayerKind
    gidx: torch.Tensor
    keep: float
    n_keep: int
    ids: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    hook: RemovableHandle | None = None

    @property
    def group_size(self) -> int:
        """G as applied: never more than the filters of one conv group."""
        return int(torch.bincount(self.gidx).max())


class PatternPruner:
    """PCONV pattern + connectivity pruning of a model's convs (see the module docstring
    for the training loop). Phases: prepared -> pruned -> finalized; calling a hook in the
    wrong phase raises RuntimeError rather than silently doing nothing."""

    def __init__(self, config: PruningConfig | None = None) -> None:
        self.config = config or PruningConfig()
        self.library: list[Pattern] = []
        self._model: nn.Module | None = None
        self._layers: list[_Layer] = []
        self._admm: Admm | None = None
        self._epoch = 0
        self._phase = "new"

    @property
    def layer_names(self) -> list[str]:
        """Qualified names of the pruned convs, in module order."""
        return [layer.name for layer in self._layers]

    def prepare(self, model: nn.Module) -> "PatternPruner":
        """Pick the layers, choose the pattern library from the model's current (trained)
        weights, and start ADMM with Z, Y the projections of those weights and U = V = 0."""
        self._require("new")
        cfg = self.config
        modules = dict(model.named_modules())
        for name, kind in find_prunable(model, cfg).items():
            conv = modules[name]
            assert isinstance(conv, nn.Conv2d)
            # 3x3: patterns at `keep`, blocks of group_size; 1x1: block connectivity at keep_1x1
            pattern = kind == "pattern"
            size, keep = (cfg.group_size, cfg.keep) if pattern else (cfg.block_size_1x1, cfg.keep_1x1)
            gidx = group_index(conv.out_channels, size, conv.groups).to(conv.weight.device)
            self._layers.append(_Layer(name, conv, kind, gidx, keep, keep_count(conv.weight.shape[1], keep)))
        if not self._layers:
            raise ValueError("the model has no conv layer this config prunes")
        self.library = select_library([l.conv.weight for l in self._layers if l.kind == "pattern"], cfg.num_patterns)
        constraints: list[tuple[nn.Parameter, Projection]] = []
        for layer in self._layers:
            if layer.kind == "pattern":
                constraints.append((layer.conv.weight, self._pattern_projection(layer)))
            constraints.append((layer.conv.weight, self._connectivity_projection(layer)))
        self._admm = Admm(constraints, cfg.rho, cfg.rho_growth, cfg.rho_max)
        self._model, self._phase = model, "prepared"
        return self

    def _pattern_projection(self, layer: _Layer) -> Projection:
        return lambda w: w * ids_to_mask(project_patterns(w, self.library, layer.gidx), self.library).to(w.dtype)

    def _connectivity_projection(self, layer: _Layer) -> Projection:
        return lambda w: w * project_connectivity(w, layer.n_keep, layer.gidx)[..., None, None].to(w.dtype)

    # ADMM phase -----------------------------------------------------------------------

    def admm_loss(self) -> torch.Tensor:
        """ADMM penalty to add to the task loss before ``backward()``."""
        self._require("prepared")
        assert self._admm is not None
        return self._admm.loss()

    def on_epoch_end(self) -> None:
        """Call after each ADMM epoch: every ``admm_interval`` epochs Z, Y are re-projected,
        U, V accumulated and rho advanced."""
        self._require("prepared")
        assert self._admm is not None
        self._epoch += 1
        if self._epoch % self.config.admm_interval == 0:
            self._admm.update()

    @property
    def rho(self) -> float:
        """The current ADMM penalty weight."""
        return self._admm.rho if self._admm else 0.0

    def admm_residual(self) -> float:
        """Relative distance of the weights to the constraint sets: it shrinks when the
        optimiser can follow the penalty, and grows when it cannot (``pruning.admm``)."""
        self._require("prepared")
        assert self._admm is not None
        return self._admm.residual()

    # Hard prune and masked retraining -------------------------------------------------

    @torch.no_grad()
    def hard_prune(self) -> None:
        """Project every layer onto patterns and connectivity at once (the exact joint
        projection, see ``project_joint``), zero the rest, and mask gradients from now on so
        that momentum and coupled weight decay never revive a pruned weight."""
        self._require("prepared")
        for layer in self._layers:
            w = layer.conv.weight
            if layer.kind == "pattern":
                layer.ids = project_joint(w, self.library, layer.n_keep, layer.gidx)
                layer.mask = ids_to_mask(layer.ids, self.library).to(w.dtype)
            else:
                kept = project_connectivity(w, layer.n_keep, layer.gidx)
                layer.ids = torch.where(kept, 0, PRUNED)
                layer.mask = kept[..., None, None].expand_as(w).to(w.dtype)
            w.mul_(layer.mask)
            layer.hook = w.register_hook(lambda grad, mask=layer.mask: grad * mask)
        self._admm, self._phase = None, "pruned"

    @torch.no_grad()
    def after_optimizer_step(self, optimizer: torch.optim.Optimizer | None = None) -> None:
        """Call after each ``optimizer.step()`` in retraining: re-zero pruned weights and,
        given the optimizer, its per-weight state (momentum, Adam moments) there too.

        Masked gradients alone are not enough: state built up before the hard prune and
        decoupled weight decay would otherwise move pruned weights off zero.
        """
        self._require("pruned")
        for layer in self._layers:
            assert layer.mask is not None
            w = layer.conv.weight
            w.mul_(layer.mask)
            state = optimizer.state.get(w, {}) if optimizer is not None else {}
            for value in state.values():
                if isinstance(value, torch.Tensor) and value.shape == w.shape:
                    value.mul_(layer.mask)

    def finalize(self) -> PruningMeta:
        """Remove the gradient hooks and return the metadata, checked against the model."""
        self._require("pruned")
        assert self._model is not None
        self.after_optimizer_step()
        layers = []
        for layer in self._layers:
            assert layer.hook is not None and layer.ids is not None
            layer.hook.remove()
            layers.append(
                LayerMeta(
                    name=layer.name,
                    kind=layer.kind,
                    library=list(self.library) if layer.kind == "pattern" else [],
                    pattern_ids=layer.ids.cpu().numpy().astype("int64"),
                    group_size=layer.group_size,
                    keep=layer.keep,
                    conv_groups=layer.conv.groups,
                    kernel_size=(int(layer.conv.kernel_size[0]), int(layer.conv.kernel_size[1])),
                )
            )
        arch, arch_kwargs = getattr(self._model, "pconv_arch", (None, {}))
        meta = PruningMeta(layers, arch, dict(arch_kwargs), self.config.to_dict())
        meta.check(self._model)
        self._phase = "finalized"
        return meta

    def _require(self, phase: str) -> None:
        if self._phase != phase:
            raise RuntimeError(f"this call needs a pruner in phase {phase!r}; it is {self._phase!r}")
