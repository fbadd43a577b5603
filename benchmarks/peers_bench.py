#!/usr/bin/env python3
"""pconv against its peers: PyTorch eager, torch.compile, ONNX Runtime, TFLite (LiteRT), TVM
(untuned), MNN, IREE dense and pconv, on the same models and weights, batch 1, fp32.

Every output is checked against PyTorch (rel err <= 1e-4) before it is timed; timings are
interleaved rounds in one run, medians; thread settings per peer are in the output. Peers whose
packages are missing are skipped with the reason (install them: `make bench-peers`, or
`pip install -e '.[bench]' torch==2.13.0`).

    python benchmarks/peers_bench.py [--models vgg16_cifar,vgg16_imagenet,resnet50,mobilenet_v2]
        [--dense | --pruned] [--group-size 32] [--threads 1,2] [--rounds 5] [--peers pytorch,onnxruntime,...]
Writes results/peers_bench.json, .md and .png (--out to change; --from-json redraws .md/.png).
"""

from __future__ import annotations

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from pconv_mlir.numerics import TOLERANCE  # noqa: E402
from pconv_mlir.peers import PEERS  # noqa: E402
from pconv_mlir.peers.bench import INPUTS, run, write_outputs  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="vgg16_cifar", help=f"comma-separated, of {', '.join(INPUTS)}")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--dense", action="store_true", help="dense weights only")
    g.add_argument("--pruned", action="store_true", help="pattern-pruned weights only")
    g.add_argument("--weights", default=None,
                   help="comma-separated, of dense, pruned, pruned+1x1 (3x3 patterns + 1x1 blocks at 2x)")
    p.add_argument("--group-size", type=int, default=32, help="G of the pruned weights (filters sharing structure)")
    p.add_argument("--threads", default=f"1,{os.cpu_count()}")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--min-time", type=float, default=0.3, help="seconds per timing sample")
    p.add_argument("--peers", default=",".join(PEERS), help=f"comma-separated, of {', '.join(PEERS)}")
    p.add_argument("--tol", type=float, default=TOLERANCE, help="max rel err vs PyTorch")
    p.add_argument("--workdir", default=None, help="keep converted models here (default: a temp dir)")
    p.add_argument("--out", default=os.path.join(ROOT, "results", "peers_bench"))
    p.add_argument("--realtime", action="store_true",
                   help="time at real-time priority (root): other work on a shared machine cannot preempt it")
    p.add_argument("--from-json", default=None, help="only rewrite .md and .png from this results JSON")
    a = p.parse_args(argv)
    if a.from_json:
        import json
        with open(a.from_json) as f:
            data = json.load(f)
        for path in write_outputs(data, a.out):
            print("wrote", path)
        return 0
    weights = (["dense"] if a.dense else ["pruned"] if a.pruned else a.weights.split(",") if a.weights
               else ["dense", "pruned"])
    peers = [s for s in a.peers.split(",") if s]
    for s in peers:
        if s not in PEERS:
            p.error(f"unknown peer {s!r}; known: {', '.join(PEERS)}")
    data = run(a.models.split(","), weights, peers, [int(t) for t in a.threads.split(",")], a.rounds,
               a.min_time, a.tol, a.group_size, a.workdir, realtime=a.realtime)
    for path in write_outputs(data, a.out):
        print("wrote", path)
    print(open(a.out + ".md").read())
    bad = [(r["model"], r["weights"], n) for r in data["results"] for n, rec in r["peers"].items()
           if rec["status"] in ("wrong", "error")]
    if bad:
        print("failed or wrong:", bad, file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
