"""``pconv_mlir.tune``: measure each accelerated conv's candidate lowerings, keep the fastest.

For each packed conv of the model (after the pconv passes, where the lowering is still open;
identical layers share one key and one measurement): compile every candidate as a one-layer
module, time them interleaved on the device, and record predicted and measured times with the
winner in the tuning file (:mod:`pconv_mlir.tuning.tuning_file`). The untuned choice is always a
candidate and stays the winner unless another one is faster by ``margin``. Entries already in the
output file (same key, device and threads) are reused: a second run only re-reads the model.
"""

from __future__ import annotations

import datetime
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from pconv_mlir.errors import PconvInputError
from pconv_mlir.tuning import measure, tuning_file
from pconv_mlir.tuning.layer import Layer, layers_of

#: A candidate replaces the untuned choice only when measured this much faster (a fraction): the
#: timing noise of a loaded machine is a few percent, and a switch on noise could be a loss.
MARGIN = 0.08
#: Default seconds of timing per candidate and layer (spread over the interleaved rounds).
BUDGET_S = 0.3


class _Collected(Exception):
    def __init__(self, layers):
        super().__init__("collected")
        self.layers = layers


def model_layers(model_or_mlir, example_inputs, target) -> list[Layer]:
    """The packed convs of a model compiled for ``target``, as the lowering pass would see them."""
    from pconv_mlir.compiler import import_model, run_pconv_passes
    from pconv_mlir.dialects.pconv import CONV_INDEX_ATTR as INDEX_ATTR

    if isinstance(model_or_mlir, (str, os.PathLike)) and str(model_or_mlir).endswith(".mlir"):
        try:
            text = Path(model_or_mlir).read_text()
        except OSError as err:
            raise PconvInputError(f"cannot read {model_or_mlir}: {err}") from None
    elif isinstance(model_or_mlir, str):
        text = model_or_mlir
    else:
        if example_inputs is None:
            raise PconvInputError("tuning a model needs example_inputs")
        text = import_model(model_or_mlir, example_inputs)

    def collect(module):
        raise _Collected(layers_of(module, INDEX_ATTR))

    try:
        run_pconv_passes(text, own_dense_convs=target.im2col_dense_convs, layout=target.layout,
                         before_lowering=collect)
    except _Collected as done:
        return done.layers
    return []  # no pconv pass ran: nothing to tune


def _timer(target, device: str | None, threads, cpu_affinity, serial, clock: str = "cpu"):
    from pconv_mlir.errors import PconvRuntimeError

    if device is None:
        device = target.runtime_device if target.runs_on_host else "adb"
    if device == "adb":
        if target.backend != "llvm-cpu":
            raise PconvRuntimeError(f"tuning {target.name} on a phone needs Vulkan there, which the Android "
                                    "bundle's glibc tools cannot load (docs/android.md); tune a CPU target on the "
                                    "phone, or vulkan-lavapipe here")
        return measure.PhoneTimer(serial, threads, cpu_affinity)
    if not target.runs_on_host:
        raise PconvRuntimeError(f"{target.name} modules do not run on this host: tune it on the device "
                                "(--device adb) or pick a host target")
    return measure.LocalTimer(device, threads, cpu_affinity, clock=clock)


class Progress:
    """One line per layer on stderr (rewritten in place on a terminal), with elapsed time and ETA."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled, self.start, self.done = total, enabled, time.monotonic(), 0
        self.tty = enabled and sys.stderr is not None and sys.stderr.isatty()

    def step(self, text: str) -> None:
        self.done += 1
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.start
        eta = elapsed / self.done * (self.total - self.done)
        width = 20
        bar = "#" * (width * self.done // max(1, self.total))
        line = (f"tune [{bar:<{width}}] {self.done}/{self.total} {elapsed:5.0f} s, ~{eta:4.0f} s left: {text}")
        print(("\r\033[K" if self.tty else "") + line, end="" if self.tty else "\n", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.tty:
            print(file=sys.stderr)


def tune(model_or_mlir, example_inputs: Sequence | None = None, target: str = "llvm-cpu", *,
         output: str | os.PathLike | None = None, device: str | None = None, threads: int | None = None,
         cpu_affinity=None, serial: str | None = None, candidates: Sequence[str] = measure.GROUPS,
         budget_s: float = BUDGET_S, margin: float = MARGIN, progress: bool = True, reuse: bool = True,
         clock: str = "cpu") -> dict:
    """Tune ``model_or_mlir`` (an ``nn.Module`` with ``example_inputs``, or linalg MLIR) for
    ``target`` and return the tuning file's contents; written atomically to ``output`` if given
    (and its entries reused when ``reuse``). ``device``: where to measure (default: the target's
    runtime device here; ``"adb"`` for a phone); ``candidates``: groups of
    :data:`pconv_mlir.tuning.measure.GROUPS`; ``clock``: "cpu" (process CPU time, robust to a
    loaded machine) or "wall" (:class:`pconv_mlir.tuning.measure.LocalTimer`)."""
    from pconv_mlir.fileio import check_output_paths
    from pconv_mlir.targets import get_target

    t = get_target(target)
    unknown = sorted(set(candidates) - set(measure.GROUPS))
    if unknown or not candidates:
        raise PconvInputError(f"candidate groups must be among {', '.join(measure.GROUPS)}, got {list(candidates)}")
    if not (0 <= margin < 1) or not (0 < budget_s <= 60):
        raise PconvInputError(f"margin must be in [0, 1) and the budget in (0, 60] s, got {margin} and {budget_s}")
    if output is not None:
        check_output_paths([("tuning output", output)])
    data = tuning_file.empty()
    if output is not None and reuse and Path(output).exists():
        data = tuning_file.load_tuning(output)  # a bad file is an error, not silently overwritten
    if clock not in ("cpu", "wall"):
        raise PconvInputError(f"clock must be cpu or wall, got {clock!r}")
    timer = _timer(t, device, threads, cpu_affinity, serial, clock)
    where = timer.describe()

    layers = model_layers(model_or_mlir, example_inputs, t)
    unique: dict[str, Layer] = {}
    for layer in layers:
        unique.setdefault(layer.key(t.name), layer)
    bar = Progress(len(unique), progress)
    reused = 0
    for key, layer in unique.items():
        old = data["entries"].get(key)
        if old is not None and all(old.get(k) == v for k, v in where.items()):  # same device, threads, clock
            reused += 1
            bar.step(f"{layer.short()}: cached, {old['winner']}")
            continue
        data["entries"][key] = entry = _tune_layer(layer, t, timer, candidates, budget_s, margin)
        entry.update(where)
        best, base = tuning_file.winner(entry), tuning_file.untuned(entry)
        bar.step(f"{layer.short()}: {best['name']} {best['measured_ms']:.3f} ms "
                 f"(untuned {base['name']} {base['measured_ms']:.3f} ms)")
        if output is not None:  # after each layer: an interrupted run keeps what it measured
            tuning_file.save_tuning(output, data)
    bar.close()
    data["last_run"] = {"target": t.name, **where, "layers": len(layers), "unique": len(unique), "reused": reused,
                        "seconds": round(time.monotonic() - bar.start, 1)}
    if output is not None:
        tuning_file.save_tuning(output, data)
    return data


def _tune_layer(layer: Layer, target, timer, groups, budget_s: float, margin: float) -> dict:
    cands = measure.candidates(layer, groups, target.gemm_tile_hints)
    built = [measure.compile_candidate(layer, c, target) for c in cands]
    times = timer.time([v for v, _ in built], built[0][1], budget_s)
    predicted = layer.predicted_ms()
    records = [{**c.record(), "predicted_ms": round(predicted[c.lowering], 4), "measured_ms": round(ms, 4)}
               for c, ms in zip(cands, times)]
    base = measure.untuned_choice(layer)
    base_ms = times[[c.name for c in cands].index(base)]
    i = min(range(len(cands)), key=times.__getitem__)
    win = cands[i].name if times[i] <= base_ms * (1 - margin) else base
    return {"target": target.name, "layer": layer.describe(), "margin": margin,
            "measured_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "candidates": records, "untuned": base, "winner": win}
