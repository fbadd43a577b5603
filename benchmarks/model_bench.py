#!/usr/bin/env python3
"""Whole-model benchmark: pconv vs IREE's dense compile of the same weights (llvm-cpu).

For each model and group size G: random pattern projection (8-pattern library, 1/3.6 of
kernels kept, G consecutive filters sharing structure; `pconv_mlir.synthetic`), compiled by
`pconv_mlir.compile` (pconv passes) and with `dense=True` (IREE alone, with the target's best
dense flags: `--iree-global-opt-use-im2col-for-convs`). Both are checked against PyTorch
(rel err = max|out - torch| / max|torch| <= 1e-4) before timing. Timing: iree-benchmark-module,
1 thread (local-sync) and all threads (local-task), rounds interleaved dense/pconv, medians.

    python benchmarks/model_bench.py [--models vgg16_cifar,resnet50,mobilenet_v2] [--groups 32,8,1]
Writes results/model_bench.json and results/model_bench.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import pconv_mlir  # noqa: E402
from pconv_mlir.models import build_model  # noqa: E402
from pconv_mlir.numerics import TOLERANCE, rel_err  # noqa: E402
from pconv_mlir.provenance import repo_commit  # noqa: E402
from pconv_mlir.runtime import bench, bench_vmfb, load_module  # noqa: E402
from pconv_mlir.synthetic import pattern_prune_model  # noqa: E402

INPUTS = {"vgg16_cifar": (1, 3, 32, 32), "resnet50": (1, 3, 224, 224), "mobilenet_v2": (1, 3, 224, 224)}


def build(name: str, group_size: int):
    torch.manual_seed(0)
    model = build_model(name).eval()
    return pattern_prune_model(model, seed=0, group_size=group_size)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="vgg16_cifar")
    p.add_argument("--groups", default="32,8,1")
    p.add_argument("--threads", default=f"1,{os.cpu_count()}")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--target", default="llvm-cpu", help="llvm-cpu, or vulkan-lavapipe (timed in process on the "
                   "Vulkan device; --threads is then ignored)")
    p.add_argument("--out", default=os.path.join(ROOT, "results", "model_bench"))
    args = p.parse_args()
    commit = repo_commit()  # the code this run loads (files may change while it runs)
    vulkan = args.target.startswith("vulkan")
    threads = [0] if vulkan else [int(t) for t in args.threads.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            x = torch.from_numpy(np.random.default_rng(0).standard_normal(INPUTS[name]).astype(np.float32))
            x_path = os.path.join(tmp, f"{name}_x.npy")
            np.save(x_path, x.numpy())
            for g in (int(v) for v in args.groups.split(",")):
                model = build(name, g)
                with torch.no_grad():
                    want = model(x).numpy()
                entry = {"model": name, "input": list(INPUTS[name]), "group_size": g, "builds": {}}
                for build_name, dense in (("iree-dense", True), ("pconv", False)):
                    t0 = time.perf_counter()
                    compiled = pconv_mlir.compile(model, [x], target=args.target, dense=dense)
                    compile_s = time.perf_counter() - t0
                    path = os.path.join(tmp, f"{name}_{g}_{build_name}.vmfb")
                    compiled.save(path)
                    module = load_module(compiled.vmfb, device="vulkan" if vulkan else "local-sync")
                    got = module.run(x.numpy())
                    entry["builds"][build_name] = {
                        "path": path, "module": module, "compile_s": round(compile_s, 1), "rel_err": rel_err(got, want),
                        "pattern_convs": sum(r.lowering.startswith("pattern") for r in compiled.report),
                        "convs": len(compiled.report), "ms": {t: [] for t in threads}}
                for _ in range(args.rounds):
                    for t in threads:
                        for b in entry["builds"].values():
                            b["ms"][t].append(
                                bench(b["module"], [x.numpy()], warmup=1, repeats=3)["median_ms"] if vulkan
                                else bench_vmfb(b["path"], x_path, t, reps=3, min_time=0.2))
                for b in entry["builds"].values():
                    b["median_ms"] = {t: float(np.median(v)) for t, v in b.pop("ms").items()}
                    b.pop("path"), b.pop("module")
                dense_ms, pconv_ms = (entry["builds"][b]["median_ms"] for b in ("iree-dense", "pconv"))
                entry["speedup"] = {t: dense_ms[t] / pconv_ms[t] for t in threads}
                print(json.dumps(entry), flush=True)
                rows.append(entry)
    meta = {"commit": commit, "date": datetime.date.today().isoformat(),
            "machine": f"{platform.machine()} {platform.processor()}, {os.cpu_count()} cores", "iree": "3.13.0",
            "rounds": args.rounds,
            "sparsity": "8 patterns, 1/3.6 kernels kept (8x fewer 3x3 MACs), random projection"}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out + ".json", "w") as f:
        json.dump({"meta": meta, "results": rows}, f, indent=2)
    meta["target"] = args.target
    lines = [f"# Whole models: pconv vs IREE dense ({args.target}), {meta['date']}", "",
             f"{meta['machine']}, commit {meta['commit']}; {meta['sparsity']}; "
             "dense = IREE with the target's best dense flags "
             f"(`--iree-global-opt-use-im2col-for-convs`); "
             f"medians of {args.rounds} interleaved rounds of "
             f"{'pconv_mlir.runtime.bench on the Vulkan device' if vulkan else 'iree-benchmark-module'}. Command: "
             f"`python benchmarks/model_bench.py {' '.join(sys.argv[1:])}`. threads 0 = the Vulkan device.", "",
             "| model | G | threads | dense ms | pconv ms | speed-up | pattern convs | rel err (pconv) "
             "| compile s dense / pconv |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        d, s = r["builds"]["iree-dense"], r["builds"]["pconv"]
        for t in threads:
            lines.append(f"| {r['model']} | {r['group_size']} | {t} | {d['median_ms'][t]:.2f} | "
                         f"{s['median_ms'][t]:.2f} | "
                         f"{r['speedup'][t]:.2f}x | {s['pattern_convs']}/{s['convs']} | {s['rel_err']:.1e} | "
                         f"{d['compile_s']} / {s['compile_s']} |")
    with open(args.out + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if all(b["rel_err"] <= TOLERANCE for r in rows for b in r["builds"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
