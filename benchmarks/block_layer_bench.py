#!/usr/bin/env python3
"""1x1 block convs, per layer: speed-up over the dense 1x1 conv against the MAC reduction.

For each 1x1 layer shape of ResNet-50 and MobileNet-V2 (224x224 input): a one-conv model with
random weights, compiled by ``pconv_mlir.compile`` for llvm-cpu twice: dense weights (the conv
stays a dense NHWC matmul) and block-pruned weights (blocks of G filters keeping the same
``--keep`` share of the input channels, ``pconv_mlir.synthetic.block_prune_1x1``), which the
compiler lowers as gather + batched GEMM or keeps dense (the report says why). Both are checked
against PyTorch (rel err <= 1e-4), then timed with iree-benchmark-module in interleaved rounds
(medians). Both modules carry the same NCHW<->NHWC boundary transposes, which dilute the ratio
on small layers.

    python benchmarks/block_layer_bench.py [--groups 32,8] [--keep 0.5] [--threads 1] [--realtime]
Writes results/block_layer_bench.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import sys
import tempfile

import numpy as np
import torch
from torch import nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import pconv_mlir  # noqa: E402
from pconv_mlir.fileio import atomic_write  # noqa: E402
from pconv_mlir.numerics import TOLERANCE, rel_err  # noqa: E402
from pconv_mlir.peers.bench import machine  # noqa: E402
from pconv_mlir.provenance import repo_commit  # noqa: E402
from pconv_mlir.runtime import bench_vmfb  # noqa: E402
from pconv_mlir.runtime.timing import realtime_priority  # noqa: E402
from pconv_mlir.synthetic import block_prune_1x1  # noqa: E402

LAYERS = [  # (name, C, K, H, stride)
    ("resnet50 64->256@56", 64, 256, 56, 1), ("resnet50 256->64@56", 256, 64, 56, 1),
    ("resnet50 256->128@56", 256, 128, 56, 1), ("resnet50 128->512@28", 128, 512, 28, 1),
    ("resnet50 512->128@28", 512, 128, 28, 1), ("resnet50 256->1024@14", 256, 1024, 14, 1),
    ("resnet50 1024->256@14", 1024, 256, 14, 1), ("resnet50 512->2048@7", 512, 2048, 7, 1),
    ("resnet50 2048->512@7", 2048, 512, 7, 1), ("resnet50 512->1024@28/2", 512, 1024, 28, 2),
    ("mobilenet_v2 24->144@56", 24, 144, 56, 1), ("mobilenet_v2 144->24@56", 144, 24, 56, 1),
    ("mobilenet_v2 192->32@28", 192, 32, 28, 1), ("mobilenet_v2 64->384@14", 64, 384, 14, 1),
    ("mobilenet_v2 384->64@14", 384, 64, 14, 1), ("mobilenet_v2 576->96@14", 576, 96, 14, 1),
    ("mobilenet_v2 960->160@7", 960, 160, 7, 1), ("mobilenet_v2 320->1280@7", 320, 1280, 7, 1),
]
_FEWER = re.compile(r"([0-9.]+)x fewer MACs")


def one_conv(c: int, k: int, stride: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(c, k, 1, stride=stride, bias=True)).eval()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--groups", default="32,8")
    p.add_argument("--keep", type=float, default=0.5, help="share of input channels a block keeps")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--only", default="", help="substring filter on layer names")
    p.add_argument("--realtime", action="store_true", help="time at real-time priority (root; shared machine)")
    p.add_argument("--out", default=os.path.join(ROOT, "results", "block_layer_bench"))
    a = p.parse_args()
    groups = [int(g) for g in a.groups.split(",")]
    commit = repo_commit()
    rows, failed = [], False
    with tempfile.TemporaryDirectory() as tmp:
        builds = []  # (row, variant, vmfb path, x path)
        for li, (name, c, k, h, stride) in enumerate(LAYERS):
            if a.only and a.only not in name:
                continue
            torch.manual_seed(li)
            x = torch.randn(1, c, h, h)
            x_path = os.path.join(tmp, f"x{li}.npy")
            np.save(x_path, x.numpy())
            dense = one_conv(c, k, stride)
            row = {"layer": name, "C": c, "K": k, "H": h, "stride": stride, "variants": {}}
            variants = [("dense", dense)]
            for g in groups:
                m = one_conv(c, k, stride)
                m.load_state_dict(dense.state_dict())
                block_prune_1x1(m[0], np.random.default_rng(li), group_size=g, keep=a.keep)
                variants.append((f"G={g}", m))
            for label, m in variants:
                with torch.no_grad():
                    want = m(x).numpy()
                compiled = pconv_mlir.compile(m, [x], target="llvm-cpu")
                err = rel_err(compiled.run(x.numpy()), want)
                lowering = compiled.report[0].lowering
                fewer = _FEWER.search(lowering)
                rec = {"lowering": lowering, "rel_err": err, "samples_ms": [],
                       "mac_reduction": float(fewer.group(1)) if fewer else 1.0}
                if err > TOLERANCE:
                    rec["status"] = "wrong"
                    failed = True
                row["variants"][label] = rec
                path = os.path.join(tmp, f"l{li}_{label.replace('=', '')}.vmfb")
                compiled.save(path)
                builds.append((row, label, path, x_path))
                print(f"{name} {label}: {lowering[:100]} (rel err {err:.1e})", flush=True)
            rows.append(row)
        with realtime_priority(a.realtime) as realtime:
            for rnd in range(a.rounds):
                order = builds[rnd % len(builds):] + builds[:rnd % len(builds)]
                for row, label, path, x_path in order:
                    row["variants"][label]["samples_ms"].append(bench_vmfb(path, x_path, a.threads, reps=3,
                                                                           min_time=0.05))
    for row in rows:
        for rec in row["variants"].values():
            rec["ms"] = float(np.median(rec["samples_ms"]))
        d = row["variants"]["dense"]["ms"]
        for rec in row["variants"].values():
            rec["speedup"] = d / rec["ms"]
    meta = {"date": datetime.date.today().isoformat(), "commit": commit, "machine": machine(),
            "threads": a.threads, "rounds": a.rounds, "keep": a.keep, "realtime": realtime,
            "command": "python benchmarks/block_layer_bench.py " + " ".join(sys.argv[1:])}
    atomic_write(a.out + ".json", json.dumps({"meta": meta, "layers": rows}, indent=1) + "\n")
    md = [f"# 1x1 block convs per layer: speed-up vs MAC reduction ({meta['date']})", "",
          f"Machine: {meta['machine']}; commit {commit}; {a.threads} thread(s); real-time priority: "
          f"{'yes' if realtime else 'no'}. Command: `{meta['command']}`.", "",
          f"One 1x1 conv (with bias) per module, llvm-cpu, batch 1; block-pruned weights keep {a.keep:g} of the "
          "input channels per block of G filters. ms: median of interleaved iree-benchmark-module runs; "
          "speed-up = dense ms / ms; MACs: the lowered GEMM's (gathered channel rows padded to the reduction "
          "tile) against the dense conv's. Every module matched PyTorch (rel err <= 1e-4) unless marked.", "",
          "| layer | dense ms | " + " | ".join(f"G={g} ms | G={g} MAC reduction | G={g} speed-up" for g in groups)
          + " | lowering (G=" + str(groups[0]) + ") |",
          "|---|---|" + "---|---|---|" * len(groups) + "---|"]
    for row in rows:
        v = row["variants"]
        cells = []
        for g in groups:
            r = v[f"G={g}"]
            mark = " (wrong)" if r.get("status") == "wrong" else ""
            cells.append(f"{r['ms']:.3f}{mark} | {r['mac_reduction']:.2f}x | {r['speedup']:.2f}x")
        how = v[f"G={groups[0]}"]["lowering"].replace("|", "/")
        md.append(f"| {row['layer']} | {v['dense']['ms']:.3f} | " + " | ".join(cells) + f" | {how[:90]} |")
    atomic_write(a.out + ".md", "\n".join(md) + "\n")
    print("\n".join(md))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
