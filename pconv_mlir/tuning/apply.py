"""Applying a tuning file: a driver step between the pconv passes and ``pconv-lower-to-linalg``.

The passes stay the spine: this step only annotates each packed conv whose key (:class:`Layer`)
has an entry with the measured winner, as attributes the lowering pass reads
(``pconv.tuned_lowering`` = "dense" | "pattern", ``pconv.tuned_tiles`` = the block GEMMs'
tiles, "" for IREE's own). Convs without an entry are left alone (the cost model decides), and
the compile warns about them and about entries that matched nothing (stale).
"""

from __future__ import annotations

import os
import warnings

from pconv_mlir.tuning.layer import PACKED_OP, layers_of
from pconv_mlir.tuning.tuning_file import PconvTuningWarning, for_target, load_tuning, untuned, winner

TUNED_LOWERING_ATTR = "pconv.tuned_lowering"
TUNED_TILES_ATTR = "pconv.tuned_tiles"


class TuningApplier:
    """Callable on the module before the lowering (``run_pconv_passes(before_lowering=...)``);
    afterwards :meth:`report` gives each tuned conv's predicted and measured times."""

    def __init__(self, tuning: str | os.PathLike | dict, target: str):
        where = str(tuning) if not isinstance(tuning, dict) else "tuning"
        data = tuning if isinstance(tuning, dict) else load_tuning(tuning)
        if isinstance(tuning, dict):
            from pconv_mlir.tuning.tuning_file import check

            check(data, where)
        self.where = where
        self.target = target
        self.entries = for_target(data, target, where)
        self.applied: dict[int, dict] = {}  # conv index -> report facts
        self.untuned_convs = 0

    def __call__(self, module) -> None:
        from pconv_mlir.dialects.pconv import CONV_INDEX_ATTR as INDEX_ATTR
        from pconv_mlir.mlir.ir import ir
        from pconv_mlir.mlir.pass_infra import ops_named

        layers = layers_of(module, INDEX_ATTR)
        by_index = {layer.index: layer for layer in layers}
        used = set()
        for op in ops_named(module, PACKED_OP):
            if INDEX_ATTR not in op.attributes:
                continue
            layer = by_index.get(ir.IntegerAttr(op.attributes[INDEX_ATTR]).value)
            entry = self.entries.get(layer.key(self.target)) if layer is not None else None
            if entry is None:
                self.untuned_convs += 1
                continue
            used.add(layer.key(self.target))
            best = winner(entry)
            op.attributes[TUNED_LOWERING_ATTR] = ir.StringAttr.get(best["lowering"])
            if best["lowering"] == "pattern" and best.get("tiles") is not None:
                op.attributes[TUNED_TILES_ATTR] = ir.StringAttr.get(best["tiles"])
            base = untuned(entry)
            self.applied[layer.index] = {
                "key": layer.key(self.target), "choice": best["name"], "untuned": base["name"],
                "predicted_ms": best.get("predicted_ms"), "measured_ms": best.get("measured_ms"),
                "untuned_measured_ms": base.get("measured_ms"), "device": entry.get("device"),
                "threads": entry.get("threads")}
        stale = len(self.entries) - len(used)
        if self.untuned_convs or stale:
            warnings.warn(f"{self.where}: {self.untuned_convs} accelerated conv(s) have no entry for target "
                          f"{self.target} and {stale} entr(y/ies) match no conv of this model (stale or partial "
                          "tuning): those convs use the cost model's choice", PconvTuningWarning, stacklevel=2)

    def annotate(self, report: list) -> None:
        """Add the tuned convs' facts to the compile report (``ConvReport.tuning``)."""
        for r in report:
            if r.index in self.applied:
                r.tuning = self.applied[r.index]
