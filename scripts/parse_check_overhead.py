#!/usr/bin/env python
"""What the crash check of untrusted MLIR (parsing it first in a child) costs a compile.

    .venv/bin/python scripts/parse_check_overhead.py [--models small_cnn,vgg16_cifar] [--rounds 5]
                                                     [-o results/parse_check_overhead.json]

For each model (pattern-pruned, imported by torch-mlir: the text a user would hand to
``pconv compile m.mlir``), interleaved rounds time: the in-process parse; the crash check
(:func:`pconv_mlir.mlir.parsing.crash_check`: a forked child parses, verifies and prints it);
and the pconv front end (:func:`pconv_mlir.compiler.run_pconv_passes`: parse + passes, no
iree-compile, so the overhead fraction is an upper bound for a whole compile). Medians of
wall time. Compiling an ``nn.Module`` pays nothing: torch-mlir's own text is trusted.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pconv_mlir.fileio import atomic_write  # noqa: E402
from pconv_mlir.provenance import repo_commit  # noqa: E402


def _text(name: str) -> str:
    import torch

    from pconv_mlir.compiler import import_model
    from pconv_mlir.models import build_model
    from pconv_mlir.synthetic import pattern_prune_model

    model = pattern_prune_model(build_model(name), seed=0, group_size=8)
    channels = 1 if name.startswith("small") else 3
    size = 16 if name.startswith("small") else 32
    return import_model(model, [torch.zeros(1, channels, size, size)])


def _parse_in_process(text: str) -> None:
    from pconv_mlir.dialects.pconv import load_pconv_dialect
    from pconv_mlir.mlir.ir import ir
    from pconv_mlir.mlir.parsing import parse_module

    with ir.Context() as ctx:
        load_pconv_dialect(ctx)
        parse_module(text, trusted=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="small_cnn,vgg16_cifar")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("-o", "--output", default=str(REPO / "results" / "parse_check_overhead.json"))
    args = ap.parse_args(argv)

    from pconv_mlir.compiler import run_pconv_passes
    from pconv_mlir.mlir.parsing import crash_check

    commit = repo_commit()
    rows = []
    for name in args.models.split(","):
        text = _text(name)
        steps = {"parse_in_process": lambda t=text: _parse_in_process(t),
                 "crash_check_child": lambda t=text: crash_check(t),
                 "pconv_front_end": lambda t=text: run_pconv_passes(t, layout="nhwc", trusted=True)}
        times = {k: [] for k in steps}
        for _ in range(args.rounds):
            for key, step in steps.items():
                t0 = time.perf_counter()
                step()
                times[key].append(time.perf_counter() - t0)
        med = {k: statistics.median(v) for k, v in times.items()}
        rows.append({"model": name, "mlir_bytes": len(text.encode()), "seconds": times,
                     "median_s": med, "overhead_vs_front_end": med["crash_check_child"] / med["pconv_front_end"]})
        print(f"{name}: {len(text) / 1e6:.1f} MB; medians {', '.join(f'{k} {v:.3f} s' for k, v in med.items())}",
              flush=True)
    result = {"command": " ".join(["scripts/parse_check_overhead.py", *(argv if argv is not None else sys.argv[1:])]),
              "commit": commit, "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
              "host": platform.node(), "rounds": args.rounds, "models": rows,
              "note": "wall-clock medians of interleaved rounds on a shared, loaded 2-core machine (noisy)"}
    out = Path(args.output)
    atomic_write(out, json.dumps(result, indent=1) + "\n")
    lines = [f"# Crash check of untrusted MLIR: cost\n\n`{result['command']}` at commit {commit}, {result['date']}; "
             f"{result['note']}.\n\n| model | MLIR | in-process parse | crash check (child) | pconv front end "
             "(parse + passes) | check / front end |\n|---|---|---|---|---|---|"]
    for r in rows:
        m = r["median_s"]
        lines.append(f"| {r['model']} | {r['mlir_bytes'] / 1e6:.1f} MB | {m['parse_in_process']:.3f} s | "
                     f"{m['crash_check_child']:.3f} s | {m['pconv_front_end']:.3f} s | "
                     f"{100 * r['overhead_vs_front_end']:.0f}% |")
    lines.append("\nOnly `.mlir` input pays the check; `pconv_mlir.compile(nn.Module)` parses torch-mlir's text "
                 "directly. iree-compile, not timed here, comes on top of the front end.\n")
    atomic_write(out.with_suffix(".md"), "\n".join(lines))
    print(f"-> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
