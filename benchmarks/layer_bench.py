#!/usr/bin/env python3
"""Per-layer benchmark: pattern-sparse conv lowering vs IREE's best dense conv (llvm-cpu).

For each 3x3 layer shape: random pattern-sparse weights with G structure (8-pattern library,
1/3.6 of kernels kept, blocks of G consecutive filters share kept channels and patterns),
compile pconv-lowered (G = 32, 8, 1) and dense (default flags and im2col) modules with IREE for
the host CPU, check numerics against torch.nn.functional.conv2d, then time them with
iree-benchmark-module at 1 and 2 threads in interleaved rounds (medians).

    python benchmarks/layer_bench.py [--resnet] [--rounds 3] [--quick]
Writes results/layer_bench.json and results/layer_bench.md.
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from pconv_mlir.lowering import ConvSpec, PatternConvRefused, emit_dense_conv, emit_pattern_conv  # noqa: E402
from pconv_mlir.lowering.harness import (DENSE_BEST_FLAGS, bench_vmfb, compile_text, conv_ref,  # noqa: E402
                                         rel_err, run_vmfb, wrap_module)
from pconv_mlir.lowering.sparse_gen import random_pattern_weight  # noqa: E402

VGG16_CIFAR = [  # (name, C, K, H)
    ("conv1_1 3-64@32", 3, 64, 32), ("conv1_2 64@32", 64, 64, 32),
    ("conv2_1 64-128@16", 64, 128, 16), ("conv2_2 128@16", 128, 128, 16),
    ("conv3_1 128-256@8", 128, 256, 8), ("conv3_2 256@8", 256, 256, 8),
    ("conv4_1 256-512@4", 256, 512, 4), ("conv4_2 512@4", 512, 512, 4),
    ("conv5_x 512@2", 512, 512, 2),
]
RESNET50 = [("res2 64@56", 64, 64, 56), ("res3 128@28", 128, 128, 28),
            ("res4 256@14", 256, 256, 14), ("res5 512@7", 512, 512, 7)]

DENSE_VARIANTS = {"dense_default": [], "dense_im2col": list(DENSE_BEST_FLAGS)}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--resnet", action="store_true", help="also ResNet-50 3x3 shapes")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reps", type=int, default=3, help="repetitions per iree-benchmark-module call")
    ap.add_argument("--groups", default="32,8,1")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--layers", default="", help="comma list of substrings selecting layers")
    ap.add_argument("--out", default=os.path.join(ROOT, "results", "layer_bench"))
    args = ap.parse_args(argv)
    Gs = [int(g) for g in args.groups.split(",")]
    threads = [int(t) for t in args.threads.split(",")]
    layers = VGG16_CIFAR + (RESNET50 if args.resnet else [])
    if args.layers:
        layers = [l for l in layers if any(s in l[0] for s in args.layers.split(","))]
    tmp = tempfile.mkdtemp(prefix="layer_bench_")
    rng = np.random.default_rng(0)
    entries = []  # one per (layer, variant)
    for li, (name, C, K, H) in enumerate(layers):
        spec = ConvSpec(1, C, H, H, K, padding=1)
        x = rng.standard_normal((1, C, H, H)).astype(np.float32)
        xp = os.path.join(tmp, f"x{li}.npy")
        np.save(xp, x)
        bias = rng.standard_normal(K).astype(np.float32)
        dense_w = random_pattern_weight(K, C, 32, seed=li)
        for vname, flags in DENSE_VARIANTS.items():
            t0 = time.time()
            low = emit_dense_conv(spec, dense_w, bias, "conv")
            vm = compile_text(wrap_module(low), flags)
            path = os.path.join(tmp, f"l{li}_{vname}.vmfb")
            open(path, "wb").write(vm)
            err = rel_err(run_vmfb(vm, x), conv_ref(spec, x, dense_w, bias))
            entries.append(dict(layer=name, C=C, K=K, H=H, variant=vname, G=None, flags=flags, path=path,
                                x=xp, rel_err=err, compile_s=time.time() - t0, stats=low.stats, times={}))
            print(f"{name:22s} {vname:14s} err {err:.1e} compile {time.time() - t0:.1f}s", flush=True)
        for G in Gs:
            w = random_pattern_weight(K, C, G, seed=1000 + li * 10 + G)
            ref = conv_ref(spec, x, w, bias)
            t0 = time.time()
            vname = f"pconv_G{G}"
            try:
                low = emit_pattern_conv(spec, w, bias, G, "conv")
                refused = None
            except PatternConvRefused as e:
                refused = e.reason
                low = emit_pattern_conv(spec, w, bias, G, "conv", force=True)
            vm = compile_text(wrap_module(low), [])
            path = os.path.join(tmp, f"l{li}_{vname}.vmfb")
            open(path, "wb").write(vm)
            err = rel_err(run_vmfb(vm, x), ref)
            entries.append(dict(layer=name, C=C, K=K, H=H, variant=vname, G=G, flags=[], path=path, x=xp,
                                rel_err=err, compile_s=time.time() - t0, stats=low.stats, times={},
                                formulation=low.formulation, refused=refused))
            print(f"{name:22s} {vname:14s} err {err:.1e} compile {time.time() - t0:.1f}s "
                  f"form={low.formulation} refused={refused}", flush=True)
    # Interleaved timing rounds.
    for r in range(args.rounds):
        for e in entries:
            for t in threads:
                e["times"].setdefault(str(t), []).append(
                    bench_vmfb(e["path"], e["x"], t, reps=args.reps, min_time=0.1))
        print(f"round {r + 1}/{args.rounds} done", flush=True)
    report(entries, layers, Gs, threads, args)


def report(entries, layers, Gs, threads, args):
    import iree.compiler
    try:
        from importlib.metadata import version
        iree_ver = version("iree-base-compiler")
    except Exception:  # pragma: no cover
        iree_ver = getattr(iree.compiler, "__version__", "?")
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    meta = dict(date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                machine=f"{platform.machine()} {cpu}, {os.cpu_count()} cores", iree=iree_ver,
                rounds=args.rounds, reps=args.reps, keep="1/3.6 kernels, 8-pattern library, 4 taps",
                dense_variants=DENSE_VARIANTS, timing="iree-benchmark-module medians; 1 thread = "
                "--device=local-sync, 2 threads = local-task --task_topology_max_group_count=2; "
                "rounds interleaved over all layers and variants")
    rows = []
    for e in entries:
        e = dict(e)
        e["median_ms"] = {t: float(np.median(v)) for t, v in e["times"].items()}
        rows.append(e)
    for e in rows:
        e.pop("path"), e.pop("x")
    # speedups vs best dense per layer and thread count
    for name, *_ in layers:
        le = [e for e in rows if e["layer"] == name]
        for t in map(str, threads):
            best = min(e["median_ms"][t] for e in le if e["variant"].startswith("dense"))
            for e in le:
                e.setdefault("speedup_vs_best_dense", {})[t] = best / e["median_ms"][t]
    out = dict(meta=meta, entries=rows)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out + ".json", "w") as f:
        json.dump(out, f, indent=1, default=lambda o: o.item() if hasattr(o, "item") else str(o))
    L = ["# Pattern conv vs dense, per layer (llvm-cpu)", "",
         f"- date: {meta['date']}", f"- machine: {meta['machine']}", f"- IREE: {iree_ver}",
         f"- sparsity: {meta['keep']}; random weights with G structure",
         f"- timing: {meta['timing']}; {args.rounds} rounds x {args.reps} reps",
         "- dense baseline = the faster of IREE default and `--iree-global-opt-use-im2col-for-convs`"
         " per layer and thread count", "- rel err = max|a-b|/max|b| vs torch conv2d", ""]
    hdr = "| layer | threads | dense default ms | dense im2col ms | " + " | ".join(
        f"G={G} ms (x)" for G in Gs) + " | max rel err |"
    L += [hdr, "|" + "---|" * (4 + len(Gs) + 1)]
    for name, *_ in layers:
        le = {e["variant"]: e for e in rows if e["layer"] == name}
        for t in map(str, threads):
            cells = [name, t, f"{le['dense_default']['median_ms'][t]:.3f}", f"{le['dense_im2col']['median_ms'][t]:.3f}"]
            for G in Gs:
                e = le[f"pconv_G{G}"]
                mark = "" if not e.get("refused") else " (refused: kept dense)"
                cells.append(f"{e['median_ms'][t]:.3f} ({e['speedup_vs_best_dense'][t]:.2f}x){mark}")
            cells.append(f"{max(e['rel_err'] for e in le.values()):.1e}")
            L.append("| " + " | ".join(cells) + " |")
    L += ["", "Formulation per variant: " + ", ".join(sorted({f"G={e['G']}:{e.get('formulation')}"
                                                            for e in rows if e['G']})), ""]
    with open(args.out + ".md", "w") as f:
        f.write("\n".join(L) + "\n")
    print("\n".join(L))


if __name__ == "__main__":
    main()
