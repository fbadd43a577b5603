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

    python benchmarks/dispatch_profile.py [--model vgg16_cifar] [--group-size 32] [--dense-weights]
        [--target llvm-cpu|vulkan-lavapipe] [--threads 1] [--realtime]
Writes results/dispatch_profile_<model>_<target>.{json,md}: per dispatch (one per layer's GEMM,
gather, im2col, ... ) ms, MACs read from the dispatch's shape, GMAC/s and the share of this
CPU's measured fp32 peak (``results/cpu_peak.json``, ``benchmarks/cpu_peak.py``), and the time
per kind of dispatch.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
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
from pconv_mlir.fileio import atomic_write  # noqa: E402
from pconv_mlir.models import build_model  # noqa: E402
from pconv_mlir.numerics import TOLERANCE, rel_err  # noqa: E402
from pconv_mlir.peers.bench import machine  # noqa: E402
from pconv_mlir.provenance import repo_commit  # noqa: E402
from pconv_mlir.runtime.timing import realtime_priority  # noqa: E402

# IREE names a dispatch after its root op and static loop sizes: matmul_MxNxK, batch_matmul_BxMxNxK,
# mmt4d_M1xN1xK1xM0xN0xK0 (data tiling), batch_mmt4d_...
_CONTRACTION = re.compile(r"^(?:\d+_)?(batch_matmul|matmul|batch_mmt4d|mmt4d)(?:_like)?_((?:\d+x)+\d+)_")
# A direct 2-D conv: conv_OHxOWxKxKHxKWxC (NHWC) or conv_KxOHxOWxCxKHxKW (NCHW), six sizes whose
# product is its MACs; depthwise convs and poolings have five (IREE names both "conv").
_DIRECT_CONV = re.compile(r"^(?:\d+_)?conv_((?:\d+x){5}\d+)_")
_KINDS = [  # (kind, test on the dispatch name), first match wins
    ("pattern/block GEMM", lambda n: n.startswith("batch_matmul")),
    ("dense GEMM", lambda n: n.startswith(("matmul", "mmt4d", "batch_mmt4d"))),
    ("row gather", lambda n: ("_i32xf32" in n or "_i32xf16" in n) and n.startswith("elementwise")),
    ("im2col", lambda n: "im2col" in n),
    ("data-tiling pack/unpack", lambda n: n.startswith(("pack", "unpack"))),
    ("pad / copy", lambda n: "memcpy" in n or n.startswith("slow_memcpy")),
    ("transpose", lambda n: n.startswith("transpose")),
    ("dense conv (direct)", lambda n: bool(_DIRECT_CONV.match(n))),
    ("pooling / depthwise conv", lambda n: n.startswith(("conv", "pooling", "generic"))),
]


def dispatch_macs(name: str) -> int | None:
    """Multiply-accumulates of a contraction or direct-conv dispatch, from its name (None for other kinds)."""
    conv = _DIRECT_CONV.match(name)
    if conv:
        return int(np.prod([int(v) for v in conv.group(1).split("x")], dtype=np.int64))
    m = _CONTRACTION.match(name)
    if not m:
        return None
    dims = [int(v) for v in m.group(2).split("x")]
    expected = {"matmul": 3, "batch_matmul": 4, "mmt4d": 6, "batch_mmt4d": 7}[m.group(1)]
    return int(np.prod(dims, dtype=np.int64)) if len(dims) == expected else None


def dispatch_kind(name: str) -> str:
    return next((kind for kind, test in _KINDS if test(name)), "other (elementwise, glue)")


def peak_gmacs(threads: int) -> float | None:
    """This CPU's measured fp32 peak for ``threads`` cores, if cpu_peak.py has run here."""
    try:
        with open(os.path.join(ROOT, "results", "cpu_peak.json")) as f:
            return float(json.load(f)["peak_gmacs_per_core"]) * threads
    except (OSError, KeyError, ValueError):
        return None


def iree_tool(name: str) -> str:
    return os.path.join(os.path.dirname(sys.executable), name)


def _benchmark(vmfb: str, x_path: str, device: str, iterations: int, profile: str | None = None,
               threads: int = 1) -> float:
    """ms per inference (iree-benchmark-module's mean over ``iterations``); with ``profile``
    (a .ireeprof path) the run is recorded by the HAL profiler."""
    cmd = [iree_tool("iree-benchmark-module"), f"--module={vmfb}", f"--device={device}", "--function=main",
           f"--input=@{x_path}", f"--benchmark_min_time={iterations}x", "--benchmark_format=json"]
    if device == "local-task":
        cmd.append(f"--task_topology_max_group_count={threads}")
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
        name = re.sub(r"^main_dispatch_\d+_", "", rec["key"])
        rows.append({"dispatch": name, "key": rec["key"], "kind": dispatch_kind(name), "calls": per_run,
                     "ms": rec["total_ns"] / iterations / 1e6, "macs": dispatch_macs(name)})
    return sorted(rows, key=lambda r: -r["ms"])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="vgg16_cifar", choices=sorted(INPUTS))
    p.add_argument("--group-size", type=int, default=32)
    p.add_argument("--input", default=None, help="input shape, e.g. 1,3,32,32 (default: the model's)")
    p.add_argument("--target", default="llvm-cpu")
    p.add_argument("--device", default=None, help="local-sync (default on CPU: 1 thread), local-task, vulkan")
    p.add_argument("--threads", type=int, default=1, help="CPU threads (> 1: local-task with that many workers)")
    p.add_argument("--dense-weights", action="store_true", help="the model's dense weights (no pattern pruning)")
    p.add_argument("--blocks-1x1", action="store_true", help="also the 1x1 convs block-pruned (peers_bench's "
                   "pruned+1x1 weights: half the input channels per block of G filters)")
    p.add_argument("--realtime", action="store_true", help="time at real-time priority (root; shared machine)")
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--top", type=int, default=12)
    p.add_argument("--dense-extra-flags", default="",
                   help="iree-compile flags added to the dense build only (a dense variant to compare with)")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    commit = repo_commit()  # the code this run loads (files may change while it runs)
    device = args.device or ("vulkan" if args.target.startswith("vulkan") else
                             "local-sync" if args.threads == 1 else "local-task")
    shape = tuple(int(v) for v in args.input.split(",")) if args.input else INPUTS[args.model]
    out = args.out or os.path.join(ROOT, "results", f"dispatch_profile_{args.model}_{args.target}")
    if args.dense_weights:
        torch.manual_seed(0)
        model = build_model(args.model).eval()
    elif args.blocks_1x1:
        from pconv_mlir.peers.bench import build as build_weights

        model = build_weights(args.model, "pruned+1x1", group_size=args.group_size).eval()
    else:
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
            builds[name] = {"path": path, "compile_s": round(compile_s, 1), "rel_err": err, "wall": []}
        with realtime_priority(args.realtime) as realtime:
            for name, b in builds.items():
                profile = os.path.join(tmp, f"{name}.ireeprof")
                _benchmark(b["path"], x_path, device, args.iterations, profile, args.threads)
                b["dispatches"] = _dispatches(profile, args.iterations)
            for _ in range(args.rounds):  # unprofiled, interleaved
                for b in builds.values():
                    b["wall"].append(_benchmark(b["path"], x_path, device, args.iterations, threads=args.threads))
    for b in builds.values():
        b.pop("path")
        b["wall_ms"] = float(np.median(b.pop("wall")))
        b["dispatch_ms"] = sum(d["ms"] for d in b["dispatches"])
        b["outside_ms"] = b["wall_ms"] - b["dispatch_ms"]
        b["kinds"] = {}
        for r in b["dispatches"]:
            k = b["kinds"].setdefault(r["kind"], {"ms": 0.0, "macs": 0, "calls": 0})
            k["ms"] += r["ms"]
            k["calls"] += r["calls"]
            k["macs"] += (r["macs"] or 0) * r["calls"]
    peak = peak_gmacs(args.threads) if not args.target.startswith("vulkan") else None
    meta = {"commit": commit, "date": datetime.date.today().isoformat(),
            "machine": machine(), "threads": args.threads, "peak_gmacs": peak, "realtime": realtime,
            "weights": "dense" if args.dense_weights else f"pattern-pruned G={args.group_size}"
            + (" + 1x1 blocks (half the channels)" if args.blocks_1x1 else ""),
            "model": args.model, "input": list(shape), "group_size": args.group_size, "target": args.target,
            "device": device, "dense_extra_flags": args.dense_extra_flags, "iterations": args.iterations,
            "rounds": args.rounds,
            "command": "python benchmarks/dispatch_profile.py " + " ".join(sys.argv[1:])}
    os.makedirs(os.path.dirname(out), exist_ok=True)
    atomic_write(out + ".json", json.dumps({"meta": meta, "builds": builds}, indent=1) + "\n")
    d, s = builds["iree-dense"], builds["pconv"]
    lines = [f"# Per-dispatch profile: {args.model} {list(shape)}, {meta['weights']}, {args.target} ({device}, "
             f"{args.threads} thread{'s' if args.threads > 1 else ''}), {meta['date']}", "",
             f"{meta['machine']}, commit {meta['commit']}. Command: `{meta['command']}`. Dense build: IREE with the "
             f"target's dense flags{' + ' + args.dense_extra_flags if args.dense_extra_flags else ''}. "
             f"Both builds match PyTorch (rel err dense "
             f"{d['rel_err']:.1e}, pconv {s['rel_err']:.1e}). Dispatch times from IREE's HAL profiler "
             f"(`iree-profile dispatch`), mean per inference over {args.iterations} runs; wall time: median of "
             f"{args.rounds} interleaved unprofiled runs of iree-benchmark-module. The profiled runs carry the "
             f"profiler's overhead, so a small negative time outside dispatches means none measurable. "
             f"Real-time priority: {'yes' if realtime else 'no'}. MACs are read from the dispatch's shape "
             f"(contractions only); % peak is of this CPU's measured fp32 FMA peak"
             + (f" ({peak:.0f} GMAC/s for {args.threads} thread(s), results/cpu_peak.md)." if peak
                else " (not measured)."),
             "",
             "| | IREE dense | pconv | ratio |", "|---|---|---|---|",
             f"| wall ms per inference | {d['wall_ms']:.2f} | {s['wall_ms']:.2f} | "
             f"{d['wall_ms'] / s['wall_ms']:.2f}x |",
             f"| sum of dispatches ms | {d['dispatch_ms']:.2f} | {s['dispatch_ms']:.2f} | "
             f"{d['dispatch_ms'] / s['dispatch_ms']:.2f}x |",
             f"| outside dispatches ms | {d['outside_ms']:.2f} | {s['outside_ms']:.2f} | |",
             f"| dispatches per inference | {sum(r['calls'] for r in d['dispatches']):.0f} | "
             f"{sum(r['calls'] for r in s['dispatches']):.0f} | |", ""]
    def rate(ms: float, macs: int | None) -> str:
        if not macs or ms <= 0:
            return "| | "
        g = macs / ms / 1e6
        return f"| {g:.1f} | {100 * g / peak:.0f}%" if peak else f"| {g:.1f} | "

    for name, b in builds.items():
        lines += [f"## {name}: time per kind of dispatch", "", "| kind | calls | ms | share | GMAC/s | % peak |",
                  "|---|---|---|---|---|---|"]
        for kind, k in sorted(b["kinds"].items(), key=lambda kv: -kv[1]["ms"]):
            lines.append(f"| {kind} | {k['calls']:.0f} | {k['ms']:.3f} | {100 * k['ms'] / b['dispatch_ms']:.0f}% "
                         f"{rate(k['ms'], k['macs'])} |")
        lines += ["", f"## {name}: top {args.top} dispatches", "",
                  "| dispatch | calls | ms | share | MMAC | GMAC/s | % peak |", "|---|---|---|---|---|---|---|"]
        for r in b["dispatches"][:args.top]:
            macs = r["macs"] * r["calls"] if r["macs"] else None
            lines.append(f"| `{r['dispatch'][:80]}` | {r['calls']:.0f} | {r['ms']:.3f} | "
                         f"{100 * r['ms'] / b['dispatch_ms']:.0f}% | {macs / 1e6 if macs else 0:.1f} "
                         f"{rate(r['ms'], macs)} |")
        lines.append("")
    atomic_write(out + ".md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
