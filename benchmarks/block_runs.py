#!/usr/bin/env python3
"""How contiguous are the input channels that 1x1 blocks gather? A static count, no timing.

For every 1x1 conv that pconv lowers as blocks (``cost_model.block_refusal`` says yes) in the
"pruned+1x1" weights of ``peers_bench`` (G filters per block keeping the same half of the input
channels), it counts the runs of consecutive kept channels each block gathers: as the channels are
now, and after ordering the channels by which blocks keep them (a permutation the compiler could
apply to the producing layers). Fewer, longer runs turn the per-channel gather into a few
contiguous copies.

    python benchmarks/block_runs.py --models mobilenet_v2,resnet50 [--group-size 32] --out results/block_runs
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from pconv_mlir.fileio import atomic_write  # noqa: E402
from pconv_mlir.lowering import cost_model  # noqa: E402
from pconv_mlir.peers.bench import build  # noqa: E402
from pconv_mlir.provenance import repo_commit  # noqa: E402


def runs(keep: np.ndarray, order: np.ndarray) -> int:
    """Runs of consecutive kept channels over all blocks (``keep``: [blocks, C] booleans)."""
    kept = keep[:, order].astype(np.int8)
    starts = np.diff(np.concatenate([np.zeros((kept.shape[0], 1), np.int8), kept], axis=1), axis=1) == 1
    return int(starts.sum())


def block_convs(name: str, group_size: int) -> list[dict]:
    model = build(name, "pruned+1x1", group_size=group_size)
    rows = []
    for layer, conv in model.named_modules():
        if not isinstance(conv, torch.nn.Conv2d) or tuple(conv.kernel_size) != (1, 1) or conv.groups != 1:
            continue
        w = conv.weight.detach().numpy()[:, :, 0, 0]
        k, c = w.shape
        g = min(group_size, k)
        blocks = -(-k // g)
        keep = np.array([(w[b * g:(b + 1) * g] != 0).any(0) for b in range(blocks)])
        if cost_model.block_refusal(c, k * c, blocks, g, int(keep.sum(1).max())):
            continue
        by_signature = np.array(sorted(range(c), key=lambda i: tuple(keep[:, i])))
        rows.append({"layer": layer, "C": c, "K": k, "blocks": blocks, "gathered": int(keep.sum()),
                     "runs": runs(keep, np.arange(c)), "runs_sorted": runs(keep, by_signature)})
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="mobilenet_v2,resnet50")
    p.add_argument("--group-size", type=int, default=32)
    p.add_argument("--out", default=os.path.join(ROOT, "results", "block_runs"))
    args = p.parse_args(argv)
    result = {"command": "python benchmarks/block_runs.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "commit": repo_commit(), "date": datetime.date.today().isoformat(), "models": {}}
    lines = ["# Runs of consecutive channels that 1x1 blocks gather", "",
             f"Written by `{result['command']}` at commit {result['commit']} on {result['date']}. Weights: "
             f"`peers_bench` \"pruned+1x1\" (G={args.group_size}, each block keeps the same half of the input "
             "channels, seed 0); only the 1x1 convs the cost model lowers as blocks. *runs*: runs of "
             "consecutive kept channels summed over the blocks, as the channels are; *sorted*: after ordering "
             "the channels by which blocks keep them.", ""]
    for name in args.models.split(","):
        rows = block_convs(name, args.group_size)
        result["models"][name] = rows
        lines += [f"## {name}", "", "| layer | C->K | blocks | gathered channels | runs | runs sorted |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {r['layer']} | {r['C']}->{r['K']} | {r['blocks']} | {r['gathered']} | {r['runs']} | "
                  f"{r['runs_sorted']} |" for r in rows]
        total = {key: sum(r[key] for r in rows) for key in ("gathered", "runs", "runs_sorted")}
        lines += [f"| **all** | | | {total['gathered']} | {total['runs']} | {total['runs_sorted']} |", ""]
    atomic_write(args.out + ".json", json.dumps(result, indent=2) + "\n")
    atomic_write(args.out + ".md", "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
