#!/usr/bin/env python
"""Fuzz pconv-opt with mutated lit-corpus inputs; write the count and result to a JSON file.

    .venv/bin/python scripts/fuzz_pconv_opt.py [--count 10000] [--seed 0] [--timeout 20]
                                               [-o results/fuzz_pconv_opt.json]

Every input must end with exit code 0, or exit code 1 with a diagnostic: no Python
traceback, no ``internal error`` line, no crash of the process (MLIR C++ abort/segfault),
no hang (``--timeout`` seconds per input). Inputs run in-process in a worker subprocess
(see :mod:`pconv_mlir.testing.fuzz`). Exit code 0 when no input failed. Failing inputs are kept in
the JSON (base64) with their pconv-opt arguments; ``--replay FILE.json`` reruns them.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import json
import platform
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pconv_mlir.fileio import atomic_write  # noqa: E402
from pconv_mlir.provenance import repo_commit  # noqa: E402
from pconv_mlir.testing.fuzz import FAILURE_KINDS, Case, WorkerPool, fuzz, load_corpus  # noqa: E402


def _replay(path: str, timeout: float) -> int:
    failures = json.loads(Path(path).read_text())["failures"]
    pool = WorkerPool(timeout=timeout)
    bad = 0
    try:
        for f in failures:
            case = Case(f["index"], base64.b64decode(f["input_b64"]), f["args"], f["seed"], f["mutators"], f["stdin"])
            r = pool.run(case)
            bad += r["kind"] in FAILURE_KINDS
            print(f"case {case.index}: was {f['kind']}, now {r['kind']}: {(r.get('stderr') or '').strip()[-200:]}")
    finally:
        pool.close()
    return 1 if bad else 0


def _markdown(r: dict) -> str:
    """A short human summary of the JSON result (written next to it)."""
    rows = "\n".join(f"| {m} | {sum(k.values())} | {k.get('ok', 0)} | {k.get('diagnostic', 0)} | "
                     f"{sum(v for kind, v in k.items() if kind in FAILURE_KINDS)} |"
                     for m, k in sorted(r["by_mutator"].items()))
    return (f"# pconv-opt fuzz\n\n`{r['command']}` at commit {r['commit']}, {r['date']} ({r['seconds']:.0f} s).\n\n"
            f"{r['count']} mutated inputs (of {r['count_requested']} requested): "
            f"{r['outcomes'].get('ok', 0)} exit 0, {r['outcomes'].get('diagnostic', 0)} "
            f"exit 1 with a diagnostic, of which {r['parser_crashes_refused']} were inputs that crash MLIR's parser, "
            f"caught in the parsing child and refused with a located error. Failures (tracebacks, internal errors, "
            f"crashes, hangs, bad exit codes, missing diagnostics): {sum(r['failures_by_kind'].values())} "
            f"({r['failures_by_kind']}).\n\n"
            f"| mutator (inputs may have several) | inputs | exit 0 | diagnostic | failures |\n|---|---|---|---|---|\n"
            f"{rows}\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=20.0, help="seconds per input before it counts as a hang")
    ap.add_argument("--max-seconds", type=float, help="stop starting new inputs after this long (the result "
                    "records how many ran)")
    ap.add_argument("-o", "--output", default=str(REPO / "results" / "fuzz_pconv_opt.json"))
    ap.add_argument("--replay", metavar="JSON", help="rerun the failures stored in a previous result file")
    args = ap.parse_args(argv)
    if args.replay:
        return _replay(args.replay, args.timeout)

    commit = repo_commit()  # the code under test, read before the run
    corpus = load_corpus()
    step = max(1, args.count // 20)

    def progress(summary, case, result):
        if result["kind"] in FAILURE_KINDS:
            print(f"  case {case.index}: {result['kind']} ({case.seed}, {'+'.join(case.mutators)}, {case.args}): "
                  f"{(result.get('stderr') or '').strip()[-160:]}", flush=True)
        if summary.count % step == 0:
            print(f"{summary.count}/{args.count}: {summary.outcomes}", flush=True)

    summary = fuzz(args.count, seed=args.seed, timeout=args.timeout, progress=progress, max_seconds=args.max_seconds)
    result = {
        "tool": "pconv-opt",
        "command": " ".join(["scripts/fuzz_pconv_opt.py", *(argv if argv is not None else sys.argv[1:])]),
        "commit": commit,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "seed": args.seed,
        "timeout_s_per_input": args.timeout,
        "corpus": {"seeds": len(corpus), "files": sorted({s.name.split("#")[0] for s in corpus})},
        "count_requested": args.count,
        "count": summary.count,
        "passed": summary.passed,
        "outcomes": summary.outcomes,
        "failures_by_kind": summary.failure_counts(),
        "tracebacks": summary.outcomes.get("traceback", 0) + summary.outcomes.get("internal-error", 0),
        "crashes": summary.outcomes.get("crash", 0),
        "hangs": summary.outcomes.get("hang", 0),
        "parser_crashes_refused": summary.refused_crashes,
        "by_mutator": summary.by_mutator,
        "worker_restarts": summary.worker_restarts,
        "seconds": round(summary.seconds, 1),
        "failures": summary.failures,
    }
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, json.dumps(result, indent=1) + "\n")
    atomic_write(out.with_suffix(".md"), _markdown(result))
    print(f"{summary.count} inputs in {summary.seconds:.0f} s: {summary.outcomes}; "
          f"failures {summary.failure_counts()} -> {out}")
    return 0 if summary.passed else 1


if __name__ == "__main__":
    sys.exit(main())
