"""Timing compiled modules: in this process (:func:`bench`) or with ``iree-benchmark-module``
(:func:`bench_vmfb`, the tool a phone runs too)."""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from pconv_mlir.errors import PconvInputError
from pconv_mlir.runtime.module import LoadedModule

__all__ = ["bench", "bench_vmfb", "realtime_priority"]


def _process_tree(root: int) -> list[int]:
    """``root`` and its live descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def _set_policy(policy: int, priority: int) -> int:
    """Set the scheduling policy of every thread of this process and its descendants (threads
    and processes started later inherit it); returns how many threads were changed."""
    changed = 0
    for pid in _process_tree(os.getpid()):
        try:
            tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
        except OSError:
            continue
        for tid in tids:
            try:
                os.sched_setscheduler(tid, policy, os.sched_param(priority))
                changed += 1
            except OSError:
                pass
    return changed


@contextlib.contextmanager
def realtime_priority(enabled: bool = True):
    """Run the block with every thread of this process tree at SCHED_FIFO priority (root only),
    so that other work on a shared machine cannot preempt the timed code; the kernel still keeps
    5% of each second for everyone else. Yields whether it took effect."""
    if not enabled or not hasattr(os, "SCHED_FIFO"):
        yield False
        return
    try:
        active = _set_policy(os.SCHED_FIFO, 50) > 0
    except PermissionError:
        active = False
    try:
        yield active
    finally:
        if active:
            _set_policy(os.SCHED_OTHER, 0)


def bench(
    module: LoadedModule,
    inputs: Sequence[Any],
    warmup: int = 3,
    repeats: int = 20,
    function: str = "main",
    allow_nonfinite: bool = False,
) -> dict:
    """Times ``repeats`` synchronous invocations after ``warmup`` ones.

    Inputs are checked and (on Vulkan) aligned once, outside the timed region;
    each timed call includes the result's transfer back to the host.
    Returns dict(median_ms, p10, p90, min, max, mean, repeats, threads, device).
    """
    if repeats < 1:
        raise PconvInputError("repeats must be >= 1")
    prepared = module.prepare_inputs(list(inputs), function, allow_nonfinite)
    for _ in range(max(0, warmup)):
        module.run_prepared(prepared, function)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        module.run_prepared(prepared, function)
        times.append((time.perf_counter() - t0) * 1e3)
    ts = sorted(times)

    def pct(q: float) -> float:
        if len(ts) == 1:
            return ts[0]
        k = (len(ts) - 1) * q
        lo, hi = int(np.floor(k)), int(np.ceil(k))
        return ts[lo] + (ts[hi] - ts[lo]) * (k - lo)

    return dict(
        median_ms=statistics.median(ts),
        p10=pct(0.10),
        p90=pct(0.90),
        min=ts[0],
        max=ts[-1],
        mean=statistics.fmean(ts),
        repeats=repeats,
        threads=module.threads,
        device=module.device,
    )


def bench_vmfb(vmfb_path: str, x_path: str, threads: int, reps: int = 5, min_time: float = 0.2,
               entry: str = "main") -> float:
    """Median real time (ms) of iree-benchmark-module over ``reps`` repetitions."""
    exe = os.path.join(os.path.dirname(sys.executable), "iree-benchmark-module")
    cmd = [exe, f"--module={vmfb_path}", f"--function={entry}", f"--input=@{x_path}",
           f"--benchmark_repetitions={reps}", f"--benchmark_min_time={min_time}s",
           "--benchmark_format=json", "--benchmark_report_aggregates_only=true"]
    if threads == 1:
        cmd += ["--device=local-sync"]
    else:
        cmd += ["--device=local-task", f"--task_topology_max_group_count={threads}"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    data = json.loads(out)
    for b in data["benchmarks"]:
        if b.get("aggregate_name") == "median":
            t = b["real_time"]
            unit = b.get("time_unit", "ms")
            return t * {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[unit]
    raise RuntimeError(f"no median in {out[:500]}")


def interleaved_medians(vmfb_paths: dict[str, str], x_path: str, rounds: int,
                        threads: Sequence[int] = (1, 2)) -> dict[str, float]:
    """Median ms (:func:`bench_vmfb`) of each named module at each thread count, keyed
    ``"{name}@{threads}"``: every round runs every module at every thread count once, so the
    machine's drifting load falls on all of them alike."""
    times: dict[tuple[str, int], list[float]] = {(n, t): [] for n in vmfb_paths for t in threads}
    for _ in range(rounds):
        for t in threads:
            for n, path in vmfb_paths.items():
                times[(n, t)].append(bench_vmfb(path, x_path, t))
    return {f"{n}@{t}": float(np.median(v)) for (n, t), v in times.items()}
