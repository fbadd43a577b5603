"""Per-layer tuning by measurement on the target device (``pconv tune``, ``pconv_mlir.tune``).

:mod:`~pconv_mlir.tuning.layer` (an accelerated conv, its key), :mod:`~pconv_mlir.tuning.measure`
(candidates, one-layer modules, timers), :mod:`~pconv_mlir.tuning.tuner` (the tuning run),
:mod:`~pconv_mlir.tuning.tuning_file` (the versioned JSON file, what is an error and what a
warning), :mod:`~pconv_mlir.tuning.apply` (the compile step that applies a file).
"""

from __future__ import annotations

__all__ = ["tune", "load_tuning", "PconvTuningWarning"]


def __getattr__(name):
    if name == "tune":
        from pconv_mlir.tuning.tuner import tune

        return tune
    if name in ("load_tuning", "PconvTuningWarning"):
        from pconv_mlir.tuning import tuning_file

        return getattr(tuning_file, name)
    raise AttributeError(f"module 'pconv_mlir.tuning' has no attribute {name!r}")
