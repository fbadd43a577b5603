#!/usr/bin/env python3
"""Does one iree-compile flag pay on pconv's builds? Whole models, with and without it (llvm-cpu).

Each model is compiled by ``pconv_mlir.compile`` twice, with the target's pconv flags minus
``--flag`` and plus it (the compile adds the target's per-network extras, such as its depthwise
flags, to both, without ``--flag``, so that only ``--flag`` differs), checked against PyTorch
(rel err <= 1e-4), and timed with iree-benchmark-module at 1 thread (local-sync) and 2 threads
(local-task) in interleaved rounds (medians). How pconv's targets pick their flags is in ``pconv_mlir/targets.py``.

    python benchmarks/flags_bench.py --flag=FLAG --models mobilenet_v2,resnet50 --weights pruned,dense
        [--rounds 5] [--realtime] --out results/flags_bench_NAME
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import sys
import tempfile

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import pconv_mlir  # noqa: E402
from pconv_mlir.compiler import depthwise_convs  # noqa: E402
from pconv_mlir.fileio import atomic_write  # noqa: E402
from pconv_mlir.numerics import TOLERANCE, rel_err  # noqa: E402
from pconv_mlir.peers.bench import INPUTS, build, machine  # noqa: E402
from pconv_mlir.provenance import repo_commit  # noqa: E402
from pconv_mlir.runtime.timing import interleaved_medians, realtime_priority  # noqa: E402
from pconv_mlir.targets import get_target  # noqa: E402


def variant(flag: str, on: bool):
    """The llvm-cpu target with its pconv flags as shipped (the compile still adds the depthwise
    extras per network), ``flag`` on or off."""
    t = get_target("llvm-cpu")
    flags = tuple(f for f in t.iree_flags() if f != flag) + ((flag,) if on else ())
    extras = tuple(f for f in t.depthwise_flags if f != flag)
    return dataclasses.replace(t, nhwc_dense_flags=flags, depthwise_flags=extras)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--flag", required=True)
    p.add_argument("--models", default="mobilenet_v2,resnet50")
    p.add_argument("--weights", default="pruned,dense")
    p.add_argument("--group-size", type=int, default=32)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--realtime", action="store_true", help="time at real-time priority (root; shared machine)")
    p.add_argument("--out", required=True)
    args = p.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as tmp, realtime_priority(args.realtime) as realtime:
        for model in args.models.split(","):
            for weights in args.weights.split(","):
                net = build(model, weights, group_size=args.group_size).eval()
                x = torch.randn(*INPUTS[model], generator=torch.Generator().manual_seed(0))
                with torch.no_grad():
                    want = net(x).numpy()
                x_path = os.path.join(tmp, "x.npy")
                np.save(x_path, x.numpy())
                row = {"model": model, "weights": weights, "rel_err": {}, "ms": {}}
                paths = {}
                for on in (False, True):
                    name = "with" if on else "without"
                    compiled = pconv_mlir.compile(net, [x], target=variant(args.flag, on))
                    row["rel_err"][name] = err = rel_err(compiled.run(x.numpy()), want)
                    if err > TOLERANCE:
                        print(f"flags_bench: {model} {weights} {name} the flag: rel err {err:.1e}", file=sys.stderr)
                        return 1
                    paths[name] = os.path.join(tmp, f"{name}.vmfb")
                    with open(paths[name], "wb") as fh:
                        fh.write(compiled.vmfb)
                depthwise = bool(depthwise_convs(compiled.report))
                row["shipped_has_flag"] = args.flag in get_target("llvm-cpu").iree_flags(depthwise=depthwise)
                row["ms"] = interleaved_medians(paths, x_path, args.rounds)
                rows.append(row)
                print(model, weights, {k: round(v, 2) for k, v in row["ms"].items()}, flush=True)

    meta = {"commit": repo_commit(), "date": datetime.date.today().isoformat(), "machine": machine(),
            "realtime": realtime, "rounds": args.rounds, "flag": args.flag, "group_size": args.group_size,
            "command": "python benchmarks/flags_bench.py " + " ".join(sys.argv[1:])}
    atomic_write(args.out + ".json", json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    lines = [f"# pconv builds with and without `{args.flag}` (llvm-cpu), {meta['date']}", "",
             f"{meta['machine']}, commit {meta['commit']}. Command: `{meta['command']}`. pconv's flags for "
             "the network otherwise as shipped; both builds match PyTorch (rel err <= 1e-4). ms: median of "
             f"{args.rounds} interleaved rounds of iree-benchmark-module (each a median of 5); 1 thread: "
             "local-sync, 2 threads: local-task. Pruned: 3x3 patterns, G="
             f"{args.group_size}. Real-time priority: {'yes' if realtime else 'no'}.", "",
             "| model | weights | pconv ships it | without 1T ms | with 1T ms | without/with 1T | "
             "without 2T ms | with 2T ms | without/with 2T |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ms = r["ms"]
        lines.append(f"| {r['model']} | {r['weights']} | {'yes' if r['shipped_has_flag'] else 'no'} | "
                     f"{ms['without@1']:.2f} | {ms['with@1']:.2f} | {ms['without@1'] / ms['with@1']:.2f}x | "
                     f"{ms['without@2']:.2f} | {ms['with@2']:.2f} | {ms['without@2'] / ms['with@2']:.2f}x |")
    atomic_write(args.out + ".md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
