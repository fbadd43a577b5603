#!/usr/bin/env python
"""End-to-end check of 1x1 block convs on a whole model: prune, compile, compare with PyTorch.

    .venv/bin/python scripts/blocks_e2e.py [--model resnet50] [--groups 32,8] [--keep-1x1 0.5]
        [--size 64] [--target llvm-cpu] [-o results/blocks_e2e_resnet50.json]

For each G: one-shot pruning (``PatternPruner.hard_prune``, no training: the structure is what
the compiler sees) with 3x3 patterns and 1x1 block connectivity (``PruningConfig(group_size=G,
prune_1x1=True, keep_1x1=...)``), compiled by ``pconv_mlir.compile`` and run once against
PyTorch (rel err = max|out - torch| / max|torch|, bar 1e-4). The JSON counts, per G, how the
1x1 convs were compiled (lowered as blocks, or refused with the cost model's reason) and keeps
each conv's report line. Exit code 0 when every build matched PyTorch.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

import pconv_mlir  # noqa: E402
from pconv_mlir.fileio import atomic_write  # noqa: E402
from pconv_mlir.lowering import cost_model  # noqa: E402
from pconv_mlir.models import build_model  # noqa: E402
from pconv_mlir.numerics import TOLERANCE, rel_err  # noqa: E402
from pconv_mlir.provenance import repo_commit  # noqa: E402
from pconv_mlir.pruning import PatternPruner, PruningConfig  # noqa: E402
from pconv_mlir.runtime import load_module  # noqa: E402


def _is_1x1(line: str) -> bool:
    """Whether a report line is a 1x1 conv's: lowered as blocks, or dense with a 1x1 reason."""
    return line.startswith("blocks") or ("1x1" in line and "kernel is" not in line)


def _reason(line: str) -> str:
    """Why a 1x1 conv stayed dense, as a category (the layer's numbers dropped)."""
    if "would gather" in line:
        return f"gathers > {cost_model.MAX_AMPLIFICATION_1X1:g}x the input"
    if "most of the dense MACs" in line:
        return f"< {cost_model.MIN_LOWERED_REDUCTION_1X1:g}x fewer MACs"
    return line.split(",")[0]


def run_one(model_name: str, g: int, keep: float, size: int, target: str) -> dict:
    torch.manual_seed(0)
    model = build_model(model_name).eval()
    pruner = PatternPruner(PruningConfig(group_size=g, prune_1x1=True, keep_1x1=keep)).prepare(model)
    pruner.hard_prune()
    pruner.finalize()
    model.eval()
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        want = model(x).numpy()
    t0 = time.perf_counter()
    compiled = pconv_mlir.compile(model, [x], target=target)
    compile_s = time.perf_counter() - t0
    got = load_module(compiled.vmfb, device="local-sync").run(x.numpy())
    err = rel_err(got, want)
    pointwise = [r for r in compiled.report if _is_1x1(r.lowering)]
    lowered = [r for r in pointwise if r.lowering.startswith("blocks")]
    refused = collections.Counter(_reason(r.lowering) for r in pointwise if not r.lowering.startswith("blocks"))
    return {"G": g, "keep_1x1": keep, "rel_err": err, "ok": err <= TOLERANCE, "compile_s": round(compile_s, 1),
            "convs": len(compiled.report), "convs_1x1": len(pointwise), "blocks_1x1": len(lowered),
            "refused_1x1": dict(refused.most_common()),
            "pattern_3x3": sum(r.lowering.startswith("pattern") for r in compiled.report),
            "report": [f"{r.index} {r.kind} {r.input_shape}->{r.output_shape}: {r.lowering}" for r in compiled.report]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="resnet50")
    ap.add_argument("--groups", default="32,8")
    ap.add_argument("--keep-1x1", type=float, default=0.5)
    ap.add_argument("--size", type=int, default=64, help="input height and width")
    ap.add_argument("--target", default="llvm-cpu")
    ap.add_argument("-o", "--output")
    args = ap.parse_args(argv)
    out = Path(args.output or REPO / "results" / f"blocks_e2e_{args.model}.json")
    runs = []
    for g in (int(v) for v in args.groups.split(",")):
        run = run_one(args.model, g, args.keep_1x1, args.size, args.target)
        print(f"G={g}: rel err {run['rel_err']:.2e}, 1x1 convs {run['convs_1x1']}: {run['blocks_1x1']} as blocks, "
              f"refused {run['refused_1x1']}; {run['pattern_3x3']} 3x3 pattern convs", flush=True)
        runs.append(run)
    command = " ".join(["python", f"scripts/{Path(__file__).name}", *(argv if argv is not None else sys.argv[1:])])
    doc = {"command": command, "commit": repo_commit(),
           "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
           "model": args.model, "input": [1, 3, args.size, args.size], "target": args.target, "runs": runs}
    atomic_write(out, json.dumps(doc, indent=1) + "\n")
    print(f"wrote {out}")
    return 0 if all(r["ok"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
