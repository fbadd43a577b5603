#!/usr/bin/env python3
"""pconv on Vulkan: fp32 and fp16 builds beside IREE's dense build, on lavapipe, with per-dispatch
profiles and an estimate for an Adreno 640.

lavapipe is Mesa's CPU emulation of a Vulkan GPU (llvmpipe): its times say how the kernels run
on this machine's 2 x86 cores, not on a phone GPU. Each build is checked against PyTorch first
(fp32: rel err <= 1e-4; fp16: <= numerics.FP16_TOLERANCE), then profiled once (IREE's HAL
profiler, dispatch-events) and timed unprofiled in interleaved rounds (medians). The timing part
holds /tmp/pconv-timing.lock (flock) so it never overlaps another timing run on this machine.

    python benchmarks/vulkan_bench.py --model vgg16_cifar [--input 1,3,32,32] [--group-size 32]
        [--target vulkan-lavapipe] [--iterations 10] [--rounds 3]

Writes results/vulkan_bench_<model>_<H>.{json,md}.

The Adreno 640 estimate (a model, not a measurement): per build, the contraction dispatches'
MACs (from their shapes) at the GPU's published peak (898.5 GFLOPS fp32 = 449 GMAC/s, fp16
twice that; azhirnov/cpu-gpu-arch Adreno-600.md) against the bytes those dispatches move (both
operands and the result; the gathered/im2col operand counted twice: written, then read) at the
Snapdragon 855's 34.1 GB/s LPDDR4X; time = max of the two, summed over dispatches, divided by an
assumed efficiency (30% of peak compute, 60% of bandwidth; stated, not measured).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import fcntl
import json
import os
import re
import sys
import tempfile
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

from dispatch_profile import _benchmark, _dispatches  # noqa: E402
from model_bench import INPUTS, build  # noqa: E402

import pconv_mlir  # noqa: E402
from pconv_mlir.fileio import atomic_write  # noqa: E402
from pconv_mlir.numerics import FP16_TOLERANCE, TOLERANCE, rel_err  # noqa: E402
from pconv_mlir.peers.bench import machine  # noqa: E402
from pconv_mlir.provenance import repo_commit  # noqa: E402

ADRENO_640 = {"name": "Adreno 640 (Snapdragon 855)", "fp32_gmacs": 898.5 / 2, "fp16_gmacs": 1797.1 / 2,
              "dram_gbs": 34.1, "compute_efficiency": 0.30, "bandwidth_efficiency": 0.60,
              "source": "azhirnov/cpu-gpu-arch gpu/Adreno-600.md (898.5 FP32 / 1797.1 FP16 GFLOPS at 585 MHz); "
                        "Snapdragon 855 LPDDR4X 4x16-bit 2133 MHz: 34.1 GB/s"}
_SHAPE = re.compile(r"^(?:\d+_)?(batch_matmul|matmul)(?:_like)?_((?:\d+x)+\d+)_(\w+)$")


def rescale_activations(model: torch.nn.Module, x: torch.Tensor) -> None:
    """Scale each conv (weight and bias; zeros stay zeros) so its output on ``x`` has unit
    standard deviation, in order (LSUV-style). model_bench's random pattern-pruned weights shrink
    the activations ~3.5x per conv (VGG-16's last conv: 1e-6, below fp16's normal range), which
    a trained network's batch norms do not; without this an fp16 build measures underflow."""
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    for conv in convs:
        seen = {}

        def record(mod, inp, out, seen=seen):  # returns None: the output stays as it is
            seen["std"] = float(out.std())

        handle = conv.register_forward_hook(record)
        with torch.no_grad():
            model(x)
        handle.remove()
        if seen.get("std", 0.0) > 0:
            with torch.no_grad():
                conv.weight /= seen["std"]
                if conv.bias is not None:
                    conv.bias /= seen["std"]


@contextlib.contextmanager
def timing_lock(path: str = "/tmp/pconv-timing.lock"):
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def contraction_cost(name: str) -> tuple[int, int, bool] | None:
    """(MACs, bytes moved, f16 multiplies) of a contraction dispatch from its name (shape and
    element types, e.g. ``batch_matmul_16x32x16x640_f16xf32xf32``), or None."""
    m = _SHAPE.match(name)
    if not m:
        return None
    dims = [int(v) for v in m.group(2).split("x")]
    if m.group(1) == "batch_matmul" and len(dims) == 4:
        b, mm, n, k = dims
    elif m.group(1) == "matmul" and len(dims) == 3:
        b, (mm, n, k) = 1, dims
    else:
        return None
    types = m.group(3).split("x")
    w_t, row_t, acc_t = (types + types[-1:] * 2)[:3]  # one type names all three
    size = {"f16": 2, "f32": 4}
    moved = b * (mm * k * size.get(w_t, 4) + 2 * k * n * size.get(row_t, 4) + mm * n * size.get(acc_t, 4))
    return b * mm * n * k, moved, w_t == row_t == "f16"


def adreno_estimate(dispatches: list[dict]) -> dict:
    dev = ADRENO_640
    macs = moved = 0
    ms = 0.0
    for d in dispatches:
        cost = contraction_cost(d["dispatch"])
        if cost is None:
            continue
        peak = dev["fp16_gmacs"] if cost[2] else dev["fp32_gmacs"]
        m, b = cost[0] * d["calls"], cost[1] * d["calls"]
        macs += m
        moved += b
        compute_ms = m / (peak * dev["compute_efficiency"]) / 1e6
        ms += max(compute_ms, b / (dev["dram_gbs"] * dev["bandwidth_efficiency"]) / 1e6)
    return {"gmacs": macs / 1e9, "mbytes": moved / 1e6, "ms": ms}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="vgg16_cifar", choices=sorted(INPUTS))
    p.add_argument("--input", default=None, help="N,C,H,W (default: 1,3,32,32 for vgg16_cifar, else the model's)")
    p.add_argument("--group-size", type=int, default=32)
    p.add_argument("--target", default="vulkan-lavapipe")
    p.add_argument("--precisions", default="fp32,fp16-storage,fp16")
    p.add_argument("--iterations", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--top", type=int, default=8)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    commit = repo_commit()
    shape = tuple(int(v) for v in args.input.split(",")) if args.input else INPUTS[args.model]
    out = args.out or os.path.join(ROOT, "results", f"vulkan_bench_{args.model}_{shape[2]}")
    model = build(args.model, args.group_size)
    x = torch.from_numpy(np.random.default_rng(0).standard_normal(shape).astype(np.float32))
    rescale_activations(model, x)
    with torch.no_grad():
        want = model(x).numpy()
    builds: dict[str, dict] = {}
    failed: dict[str, dict] = {}
    plan = [("iree-dense", True, "fp32")] + [(f"pconv {p}", False, p) for p in args.precisions.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        x_path = os.path.join(tmp, "x.npy")
        np.save(x_path, x.numpy())
        for name, dense, precision in plan:
            t0 = time.perf_counter()
            compiled = pconv_mlir.compile(model, [x], target=args.target, dense=dense, precision=precision)
            compile_s = time.perf_counter() - t0
            err = rel_err(compiled.run(x.numpy(), device="vulkan"), want)
            bar = TOLERANCE if precision == "fp32" else FP16_TOLERANCE
            print(f"{name}: compiled in {compile_s:.0f} s, rel err {err:.2e}", flush=True)
            if err > bar:  # recorded in the results, never timed
                print(f"{name}: rel err {err:.2e} > {bar:g} against PyTorch; not timed", file=sys.stderr)
                failed[name] = {"precision": precision, "rel_err": err, "tolerance": bar}
                continue
            path = os.path.join(tmp, name.replace(" ", "_") + ".vmfb")
            compiled.save(path)
            precisions = sorted({r.precision for r in compiled.report})
            builds[name] = {"path": path, "precision": precision, "compile_s": round(compile_s, 1), "rel_err": err,
                            "conv_precisions": precisions, "wall": []}
        with timing_lock():
            for name, b in builds.items():
                profile = os.path.join(tmp, name.replace(" ", "_") + ".ireeprof")
                _benchmark(b["path"], x_path, "vulkan", max(1, args.iterations // 2), profile)
                b["dispatches"] = _dispatches(profile, max(1, args.iterations // 2))
            for _ in range(args.rounds):  # unprofiled, interleaved
                for b in builds.values():
                    b["wall"].append(_benchmark(b["path"], x_path, "vulkan", args.iterations))
    for b in builds.values():
        b.pop("path")
        b["wall_runs_ms"] = b.pop("wall")
        b["wall_ms"] = float(np.median(b["wall_runs_ms"]))
        b["dispatch_ms"] = sum(d["ms"] for d in b["dispatches"])
        b["kinds"] = {}
        for r in b["dispatches"]:
            k = b["kinds"].setdefault(r["kind"], {"ms": 0.0, "calls": 0})
            k["ms"] += r["ms"]
            k["calls"] += r["calls"]
        b["adreno_640"] = adreno_estimate(b["dispatches"])
    meta = {"commit": commit, "date": datetime.date.today().isoformat(), "machine": machine(),
            "model": args.model, "input": list(shape),
            "weights": f"pattern-pruned G={args.group_size}, convs rescaled to unit output std",
            "target": args.target, "iterations": args.iterations, "rounds": args.rounds, "adreno_640_model": ADRENO_640,
            "command": "python benchmarks/vulkan_bench.py " + " ".join(sys.argv[1:])}
    os.makedirs(os.path.dirname(out), exist_ok=True)
    atomic_write(out + ".json", json.dumps({"meta": meta, "builds": builds, "failed_tolerance": failed}, indent=1)
                 + "\n")
    dense = builds["iree-dense"]
    lines = [f"# Vulkan: {args.model} {list(shape)}, {meta['weights']}, {args.target}, {meta['date']}", "",
             f"**lavapipe is a CPU emulation of a Vulkan GPU** (Mesa llvmpipe on this machine's x86 cores: "
             f"{meta['machine']}); these times are not a phone's. Commit {commit}. Command: `{meta['command']}`. "
             f"Every build matches PyTorch before it is timed (fp32 rel err <= {TOLERANCE:g}, fp16 <= "
             f"{FP16_TOLERANCE:g}). Wall: median of {args.rounds} interleaved rounds of iree-benchmark-module "
             f"(mean of {args.iterations} runs each); dispatches: IREE's HAL profiler (dispatch-events), "
             f"mean per inference over a separate profiled run.", "",
             "| build | conv precisions | rel err vs PyTorch | wall ms | rounds ms | vs IREE dense "
             "| sum of dispatches ms | dispatches | Adreno 640 estimate ms |", "|---|---|---|---|---|---|---|---|---|"]
    for name, b in builds.items():
        lines.append(f"| {name} | {', '.join(b['conv_precisions'])} | {b['rel_err']:.1e} | {b['wall_ms']:.1f} | "
                     f"{', '.join(f'{v:.1f}' for v in b['wall_runs_ms'])} | {dense['wall_ms'] / b['wall_ms']:.2f}x | "
                     f"{b['dispatch_ms']:.1f} | {sum(r['calls'] for r in b['dispatches']):.0f} | "
                     f"{b['adreno_640']['ms']:.2f} |")
    for name, f in failed.items():
        lines.append(f"| {name} | | **{f['rel_err']:.1e} > {f['tolerance']:g}: not timed** | | | | | | |")
    a = ADRENO_640
    lines += ["", f"Adreno 640 estimate (a model, not a measurement): the contraction dispatches' MACs at "
              f"{a['compute_efficiency']:.0%} of the published peak ({a['fp32_gmacs']:.0f} GMAC/s fp32, "
              f"{a['fp16_gmacs']:.0f} fp16) vs the bytes they move at {a['bandwidth_efficiency']:.0%} of "
              f"{a['dram_gbs']} GB/s, the larger per dispatch, summed; other dispatches (gathers, pads, pools) "
              f"are not counted. Source: {a['source']}.", "",
              "| build | contraction GMAC | MB moved | estimate ms |", "|---|---|---|---|"]
    for name, b in builds.items():
        e = b["adreno_640"]
        lines.append(f"| {name} | {e['gmacs']:.3f} | {e['mbytes']:.1f} | {e['ms']:.2f} |")
    for name, b in builds.items():
        lines += ["", f"## {name}: time per kind of dispatch", "", "| kind | calls | ms | share |", "|---|---|---|---|"]
        for kind, k in sorted(b["kinds"].items(), key=lambda kv: -kv[1]["ms"]):
            lines.append(f"| {kind} | {k['calls']:.0f} | {k['ms']:.2f} | {100 * k['ms'] / b['dispatch_ms']:.0f}% |")
        lines += ["", f"Top {args.top} dispatches:", "", "| dispatch | calls | ms | share |", "|---|---|---|---|"]
        for r in b["dispatches"][:args.top]:
            lines.append(f"| `{r['dispatch'][:80]}` | {r['calls']:.0f} | {r['ms']:.2f} | "
                         f"{100 * r['ms'] / b['dispatch_ms']:.0f}% |")
    atomic_write(out + ".md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
