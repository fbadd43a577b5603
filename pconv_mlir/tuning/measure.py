"""Measuring one layer's candidate lowerings on a device.

Each candidate is a one-layer module: the same emitter call ``pconv-lower-to-linalg`` would make
for the layer (:mod:`pconv_mlir.lowering`), wrapped in ``@main`` with its constants
(:func:`pconv_mlir.testing.harness.wrap_module`), through the compile's cleanup pipeline and
``iree-compile`` for the target with its dense flags, as the whole model is.

Timers: :class:`LocalTimer` runs the modules in this process (``local-task`` with the requested
threads / CPU affinity, ``local-sync``, or ``vulkan``: lavapipe here), interleaving the
candidates in rounds and taking medians. It reads the process's CPU time by default: on a loaded
machine wall time mostly measures the other jobs (a ResNet-50 layer measured 0.5 ms and 20 ms in
one run under a load of 20 on 2 cores), while CPU time counts this run's work in every worker
thread (with several threads it includes their synchronisation, so it ranks work, not latency;
``clock="wall"`` on a quiet machine). :class:`PhoneTimer` bundles
each module (:mod:`pconv_mlir.android`) and runs ``iree-benchmark-module`` on a phone over adb.
"""

from __future__ import annotations

import dataclasses
import re
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from pconv_mlir.errors import PconvRuntimeError
from pconv_mlir.lowering import cost_model, emit_dense_conv, emit_packed_conv
from pconv_mlir.tuning.layer import DENSE, PATTERN, Layer

#: Tile variants of the block GEMM (dims: block, filter, pixel, row): (pixel distribution,
#: vector tiles). Around the cost model's (64, (1, 8, 32, 0)): narrower and wider pixel tiles.
TILE_VARIANTS = {"d32": (32, (1, 8, 32, 0)), "d128": (128, (1, 8, 32, 0)), "v16": (64, (1, 8, 16, 0)),
                 "v64": (64, (1, 8, 64, 0))}
#: Candidate groups: ``formulation`` (dense vs the pattern lowering with the cost model's tiles),
#: ``tiles`` (the pattern lowering with other GEMM tiles, and with IREE's own choice).
GROUPS = ("formulation", "tiles")


@dataclasses.dataclass(frozen=True)
class Candidate:
    name: str
    lowering: str  # DENSE or PATTERN
    tiles: str | None = None  # None: the cost model's; "": no hint (IREE's own)

    def record(self) -> dict:
        return {"name": self.name, "lowering": self.lowering, "tiles": self.tiles}


def gemm_tiles(g: int, distribution: int, vector: tuple[int, ...]) -> str:
    """An IREE CPU lowering config for a block GEMM, as :func:`cost_model.cpu_gemm_tiles`."""
    return (f"distribution = [1, {g}, {distribution}, 0], vector_common_parallel = [{', '.join(map(str, vector))}], "
            f"vector_reduction = [0, 0, 0, {cost_model.CPU_GEMM_REDUCTION_TILE}]")


def candidates(layer: Layer, groups, tile_hints: bool) -> list[Candidate]:
    """The candidates of ``layer``; tile candidates only on targets that take tile hints."""
    out = [Candidate(DENSE, DENSE), Candidate(PATTERN, PATTERN)]
    if "tiles" in groups and tile_hints:
        out.append(Candidate("pattern iree-tiles", PATTERN, ""))
        g = layer.group_size
        for name, (dist, vec) in TILE_VARIANTS.items():
            if vec[1] <= g or g % vec[1] == 0:
                out.append(Candidate(f"pattern tiles {name}", PATTERN, gemm_tiles(g, dist, vec)))
    return out


def untuned_choice(layer: Layer) -> str:
    """What the compiler picks without a tuning file: the pattern lowering unless the cost model
    refuses it."""
    from pconv_mlir.lowering import PatternConvRefused

    try:
        emit_packed_conv(layer.spec, layer.weight, layer.row_channels, layer.row_taps, layer.bias, "probe",
                         layout=layer.layout)
    except PatternConvRefused:
        return DENSE
    return PATTERN


def candidate_mlir(layer: Layer, cand: Candidate, own_dense_convs: bool) -> tuple[str, str]:
    """(text, input type) of the one-layer module of ``cand`` after the compile's cleanup pipeline."""
    from pconv_mlir.compiler import cleanup_pipeline
    from pconv_mlir.dialects.pconv import load_pconv_dialect
    from pconv_mlir.mlir.ir import ir
    from pconv_mlir.mlir.pipeline import build_pass_manager
    from pconv_mlir.passes.lower_to_linalg import TILES_ATTR, pixel_gather_attrs
    from pconv_mlir.testing.harness import wrap_module

    if cand.lowering == DENSE:
        low = emit_dense_conv(layer.spec, layer.dense_weight(), layer.bias, "conv", layout=layer.layout)
    else:
        tiles = cost_model.cpu_gemm_tiles(layer.group_size) if cand.tiles is None else cand.tiles
        # The cost model's tiles: what the compile emits (a channels-last 1x1 conv's pixel gather);
        # tile variants are of the rows form's GEMM.
        low = emit_packed_conv(layer.spec, layer.weight, layer.row_channels, layer.row_taps, layer.bias, "conv",
                               force=True, layout=layer.layout,
                               matmul_attrs=f'{{{TILES_ATTR} = "{tiles}"}}' if tiles else "",
                               pixel_gemm_attrs=pixel_gather_attrs if cand.tiles is None else None)
    with ir.Context() as ctx:
        load_pconv_dialect(ctx)
        module = ir.Module.parse(wrap_module(low))
        build_pass_manager(cleanup_pipeline(own_dense_convs), ctx).run(module.operation)
        return str(module), low.in_type


def compile_candidate(layer: Layer, cand: Candidate, target) -> tuple[bytes, list[int]]:
    """(vmfb, input shape) of ``cand`` for ``target`` (a :class:`pconv_mlir.targets.Target`)."""
    from pconv_mlir.targets import compile_mlir

    text, in_type = candidate_mlir(layer, cand, target.im2col_dense_convs)
    shape = [int(d) for d in re.match(r"tensor<([0-9x]+)xf32>", in_type).group(1).split("x")]
    return compile_mlir(text, target, extra_flags=target.iree_flags()), shape


class LocalTimer:
    """Times modules in this process on ``device`` (see the module docstring)."""

    def __init__(self, device: str = "local-task", threads: int | None = None, cpu_affinity=None,
                 rounds: int = 3, clock: str = "cpu"):
        from pconv_mlir.runtime.device import get_device

        if clock not in ("cpu", "wall"):
            raise ValueError(f"clock must be cpu or wall, not {clock!r}")
        self.device, self.threads, self.cpu_affinity, self.rounds = device, threads, cpu_affinity, rounds
        self.clock = clock
        self._now = time.process_time if clock == "cpu" else time.perf_counter
        get_device(device, threads, cpu_affinity)  # fails early (one line) on a bad device or thread count

    def describe(self) -> dict:
        from pconv_mlir.runtime.device import local_task_threads

        threads = (local_task_threads() or None) if self.device == "local-task" else None
        return {"device": self.device, "threads": threads, "clock": self.clock}

    def time(self, vmfbs: list[bytes], shape: list[int], budget_s: float) -> list[float]:
        """Median ms per module: ``rounds`` interleaved rounds within about ``budget_s`` each."""
        from pconv_mlir.runtime import load_module

        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        mods = [load_module(v, device=self.device, threads=self.threads, cpu_affinity=self.cpu_affinity)
                for v in vmfbs]
        prepared = [m.prepare_inputs([x]) for m in mods]
        now = self._now
        first = []
        for m, p in zip(mods, prepared):  # warm-up, and a first estimate of each module's time
            m.run_prepared(p)
            t0 = now()
            m.run_prepared(p)
            first.append(now() - t0)
        samples: list[list[float]] = [[] for _ in mods]
        per_round = budget_s / self.rounds
        for _ in range(self.rounds):
            for i, (m, p) in enumerate(zip(mods, prepared)):
                for _ in range(max(1, min(50, int(per_round / max(first[i], 1e-6))))):
                    t0 = now()
                    m.run_prepared(p)
                    samples[i].append((now() - t0) * 1e3)
        return [statistics.median(s) for s in samples]


_MEDIAN = re.compile(r"_median\s+([0-9.]+)\s*(ns|us|ms|s)\b")


class PhoneTimer:
    """Times modules on a phone: an Android bundle per module, ``iree-benchmark-module`` over adb."""

    def __init__(self, serial: str | None = None, threads: int | None = None, cpu_affinity=None,
                 repeats: int = 5, timeout: float = 600):
        from pconv_mlir.android.runner import _adb, _check_device

        self.serial, self.threads, self.cpu_affinity, self.repeats, self.timeout = (
            serial, threads, cpu_affinity, repeats, timeout)
        _check_device(_adb(serial), 30)  # no phone: one clear line before any work

    def describe(self) -> dict:
        return {"device": f"adb:{self.serial or 'default'}", "threads": self.threads, "clock": "wall"}

    def time(self, vmfbs: list[bytes], shape: list[int], budget_s: float) -> list[float]:
        from pconv_mlir import android

        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        out = []
        with tempfile.TemporaryDirectory(prefix="pconv-tune-") as tmp:
            for i, vmfb in enumerate(vmfbs):
                path = Path(tmp) / f"c{i}.vmfb"
                path.write_bytes(vmfb)
                d = android.bundle(path, [x], Path(tmp) / f"b{i}")
                text = android.bench_adb(d, threads=self.threads, cpu_affinity=self.cpu_affinity,
                                         repeats=self.repeats, serial=self.serial, timeout=self.timeout)
                m = _MEDIAN.search(text)
                if not m:
                    raise PconvRuntimeError(f"no median in the phone's benchmark output: {text.strip()[-200:]}")
                out.append(float(m.group(1)) * {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)])
        return out
