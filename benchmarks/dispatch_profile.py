#!/usr/bin/env python3
"""Where the time goes: per-dispatch timings of pconv and IREE dense builds of one model.

Compiles the model (pattern-sparse weights as in model_bench.py) with pconv and with
`dense=True`, checks both against PyTorch (rel err <= 1e-4), then runs each with
iree-benchmark-module under IREE's HAL profiler (`--device_profiling_mode`:
`host-execution` on the CPU devices, `dispatch-events` (device timestamps) on Vulkan) and
reads the per-dispatch aggregates with `iree-profile dispatch --format=jsonl`. The wall
time per inference comes from separate, unprofiled runs (rounds interleaved, medians); the
difference between it and the sum of the dispatches is the time outside the kernels
(submission, synchronisation, allocation: large on lavapipe).

    python benchmarks/dispatch_profile.py [--model vgg16_cifar] [--group-size 32]
        [--target llvm-cpu|vulkan-lavapipe] [--device local-sync]
Writes results/dispatch_profile_<model>_<target>.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

from model_bench import INPUTS, build  # noqa: E402

import pconv_mlir  # noqa: E402
from pconv_mlir.numerics import TOLERANCE, rel_err  # noqa: E402
from pconv_mlir.provenance import repo_commit  # noqa: E402


def iree_tool(name: str) -> str:
    return os.path.join(os.path.dirname(sys.executable), name)


def _benchmark(vmfb: str, x_path: str, device: str, iterations: int, profile: str | None = None) -> float:
    """ms per inference (iree-benchmark-module's mean over ``iterations``); with ``profile``
    (a .ireeprof path) the run is recorded by the HAL profiler."""
    cmd = [iree_tool("iree-benchmark-module"), f"--module={vmfb}", f"--device={device}", "--function=main",
           f"--input=@{x_path}", f"--benchmark_min_time={iterations}x", "--benchmark_format=json"]
    if device == "local-task":
        cmd.append(f"--task_topology_max_group_count={os.cpu_count()}")
    if profile:
        mode = "dispatch-events" if device.startswith("vulkan") else "host-execution"
        cmd += [f"--device_profiling_mode={mode}", f"--device_profiling_output={profile}"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(f"iree-benchmark-module failed: {out.stderr.strip()[-800:]}")
    runs = [b for b in json.loads(out.stdout)["benchmarks"] if b.get("run_type") == "iteration"]
    return float(runs[0]["real_time"]) * {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[runs[0]["time_unit"]]


def _dispatches(profile: str, iterations: int) -> list[dict]:
    """Per-dispatch mean time per inference (ms), largest first."""
    out = subprocess.run([iree_tool("iree-profile"), "dispatch", "--format=jsonl", profile],
                         capture_output=True, text=True, timeout=600, check=True)
    rows = []
    for line in out.stdout.splitlines():
        rec = json.loads(line)
        if rec.get("type") not in ("dispatch_group", "host_dispatch_group") or not rec.get("total_ns"):
            continue
        per_run = rec["count"] / iterations
        rows.append({"dispatch": re.sub(r"^main_dispatch_\d+_", "", rec["key"]), "key": rec["key"],
                     "calls": per_run, "ms": rec["total_ns"] / iterations / 1e6})
    return sorted(rows, key=lambda r: -r["ms"])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="vgg16_cifar", choices=sorted(INPUTS))
    p.add_argument("--group-size", type=int, default=32)
    p.add_argument("--input", default=None, help="input shape, e.g. 1,3,32,32 (default: the model's)")
    p.add_argument("--target", default="llvm-cpu")
    p.add_argument("--device", default=None, help="local-sync (default on CPU: 1 thread), local-task, vulkan")
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--top", type=int, default=12)
    p.add_argument("--dense-extra-flags", default="",
                   help="iree-compile flags added to the dense build only (a dense variant to compare with)")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    commit = repo_commit()  # the code this run loads (files may change while it runs)
    device = args.device or ("vulkan" if args.target.startswith("vulkan") else "local-sync")
    shape = tuple(int(v) for v in args.input.split(",")) if args.input else INPUTS[args.model]
    out = args.out or os.path.join(ROOT, "results", f"dispatch_profile_{args.model}_{args.target}")
    model = build(args.model, args.group_size)
    x = torch.from_numpy(np.random.default_rng(0).standard_normal(shape).astype(np.float32))
    with torch.no_grad():
        want = model(x).numpy()
    builds = {}
    with tempfile.TemporaryDirectory() as tmp:
        x_path = os.path.join(tmp, "x.npy")
        np.save(x_path, x.numpy())
        for name, dense in (("iree-dense", True), ("pconv", False)):
            t0 = time.perf_counter()
            extra = tuple(args.dense_extra_flags.split()) if dense else ()
            compiled = pconv_mlir.compile(model, [x], target=args.target, dense=dense, extra_flags=extra)
            compile_s = time.perf_counter() - t0
            err = rel_err(compiled.run(x.numpy(), device=device), want)
            if err > TOLERANCE:
                print(f"{name}: rel err {err:.2e} > {TOLERANCE:g} against PyTorch; not timed", file=sys.stderr)
                return 1
            path = os.path.join(tmp, f"{name}.vmfb")
            compiled.save(path)
            profile = os.path.join(tmp, f"{name}.ireeprof")
            _benchmark(path, x_path, device, args.iterations, profile)
            builds[name] = {"path": path, "compile_s": round(compile_s, 1), "rel_err": err,
                            "dispatches": _dispatches(profile, args.iterations), "wall": []}
        for _ in range(args.rounds):  # unprofiled, interleaved
            for b in builds.values():
                b["wall"].append(_benchmark(b["path"], x_path, device, args.iterations))
    for b in builds.values():
        b.pop("path")
        b["wall_ms"] = float(np.median(b.pop("wall")))
        b["dispatch_ms"] = sum(d["ms"] for d in b["dispatches"])
        b["outside_ms"] = b["wall_ms"] - b["dispatch_ms"]
    meta = {"commit": commit, "date": datetime.date.today().isoformat(),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "model": args.model, "input": list(shape), "group_size": args.group_size, "target": args.target,
            "device": device, "dense_extra_flags": args.dense_extra_flags, "iterations": args.iterations,
            "rounds": args.rounds,
            "command": "python benchmarks/dispatch_profile.py " + " ".join(sys.argv[1:])}
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out + ".json", "w") as f:
        json.dump({"meta": meta, "builds": builds}, f, indent=1)
    d, s = builds["iree-dense"], builds["pconv"]
    lines = [f"# Per-dispatch profile: {args.model} {list(shape)}, G={args.group_size}, {args.target} ({device}), "
             f"{meta['date']}", "",
             f"{meta['machine']}, commit {meta['commit']}. Command: `{meta['command']}`. Dense build: IREE with the "
             f"target's dense flags{' + ' + args.dense_extra_flags if args.dense_extra_flags else ''}. "
             f"Both builds match PyTorch (rel err dense "
             f"{d['rel_err']:.1e}, pconv {s['rel_err']:.1e}). Dispatch times from IREE's HAL profiler "
             f"(`iree-profile dispatch`), mean per inference over {args.iterations} runs; wall time: median of "
             f"{args.rounds} interleaved unprofiled runs of iree-benchmark-module. The profiled runs carry the "
             f"profiler's overhead, so a small negative time outside dispatches means none measurable.", "",
             "| | IREE dense | pconv | ratio |", "|---|---|---|---|",
             f"| wall ms per inference | {d['wall_ms']:.2f} | {s['wall_ms']:.2f} | "
             f"{d['wall_ms'] / s['wall_ms']:.2f}x |",
             f"| sum of dispatches ms | {d['dispatch_ms']:.2f} | {s['dispatch_ms']:.2f} | "
             f"{d['dispatch_ms'] / s['dispatch_ms']:.2f}x |",
             f"| outside dispatches ms | {d['outside_ms']:.2f} | {s['outside_ms']:.2f} | |",
             f"| dispatches per inference | {sum(r['calls'] for r in d['dispatches']):.0f} | "
             f"{sum(r['calls'] for r in s['dispatches']):.0f} | |", ""]
    for name, b in builds.items():
        lines += [f"## {name}: top {args.top} dispatches", "", "| dispatch | ms | share of dispatch time |",
                  "|---|---|---|"]
        for r in b["dispatches"][:args.top]:
            lines.append(f"| `{r['dispatch'][:90]}` | {r['ms']:.3f} | {100 * r['ms'] / b['dispatch_ms']:.0f}% |")
        lines.append("")
    with open(out + ".md", "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
