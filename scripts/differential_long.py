#!/usr/bin/env python
"""Long differential run: >= 1,000 random conv cases, pconv vs PyTorch; JSON result file.

    .venv/bin/python scripts/differential_long.py [--cases 1000] [--per-network 22]
        [--vulkan-every 6] [--seed 20261129] [-o results/differential_long.json]

Uses the hypothesis strategies of ``test/python/test_differential.py`` with a fixed seed
(no database, no shrinking: a failing branch is recorded with its full description, and
reproduces with ``check_network([Case(**...)])``). Each network holds ``--per-network``
independent branches compiled in one IREE compile; the cases include 1x1 block convs
("blocks") and ResNet bottlenecks ("bottleneck"). Networks rotate over the pipelines
``compile`` (pconv_mlir.compile as is), ``force`` (pattern lowering forced), ``packed``
(forced, every conv packed) and ``nhwc`` (forced, channels-last). Every
``--vulkan-every``-th network is also compiled for ``vulkan-lavapipe`` and run on the Vulkan
driver (when present). A network that fails to compile is retried branch by branch to name
the culprit. Exit code 0 when every branch matched PyTorch within 1e-4.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "test" / "python"))

import test_differential as td  # noqa: E402
from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402

from pconv_mlir.provenance import repo_commit  # noqa: E402
from pconv_mlir.runtime import vulkan_available  # noqa: E402

PIPELINE_ORDER = ("force", "packed", "compile", "nhwc")
NETWORK_FAILURES: list[dict] = []  # whole networks that failed (their branches are then run alone)


def _describe(r: td.BranchResult, target: str, pipeline: str) -> dict:
    return {"target": target, "pipeline": pipeline, "error": r.error if r.error != float("inf") else "inf",
            "lowering": r.lowering, "case": r.case.describe()}


def _run_network(cases, target, pipeline, log):
    """Branch results (dicts) for one network; isolates compile failures branch by branch."""
    try:
        return [dict(_describe(r, target, pipeline), ok=r.ok) for r in td.check_network(cases, target, pipeline)]
    except Exception as err:  # noqa: BLE001 - recorded, then isolated per branch
        message = f"{type(err).__name__}: {err}"
        log(f"  network failed on {target}/{pipeline}: {message.splitlines()[0][:200]}")
        NETWORK_FAILURES.append({"target": target, "pipeline": pipeline, "branches": len(cases),
                                 "exception": message[-3000:], "cases": [c.describe() for c in cases]})
    out = []
    for case in cases:
        try:
            (r,) = td.check_network([case], target, pipeline)
            out.append(dict(_describe(r, target, pipeline), ok=r.ok))
        except Exception as err:  # noqa: BLE001
            out.append({"target": target, "pipeline": pipeline, "ok": False, "case": case.describe(),
                        "exception": f"{type(err).__name__}: {err}"[-3000:],
                        "traceback": traceback.format_exc()[-2000:]})
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=1000, help="minimum number of llvm-cpu cases")
    ap.add_argument("--per-network", type=int, default=22)
    ap.add_argument("--vulkan-every", type=int, default=6, help="every n-th network also on Vulkan (0: never)")
    ap.add_argument("--seed", type=int, default=20261129)
    ap.add_argument("-o", "--output", default=str(REPO / "results" / "differential_long.json"))
    args = ap.parse_args(argv)

    networks = -(-args.cases // args.per_network)
    vulkan = args.vulkan_every > 0 and vulkan_available()
    results: list[dict] = []
    t0 = time.perf_counter()
    commit = repo_commit()
    counter = {"n": 0}

    def log(msg):
        print(msg, flush=True)

    def write(done: bool):
        failures = [r for r in results if not r["ok"]]
        by = {}
        for r in results:
            key = f"{r['target']}/{r['pipeline']}"
            by.setdefault(key, {"cases": 0, "failed": 0})
            by[key]["cases"] += 1
            by[key]["failed"] += not r["ok"]
        kinds = {}
        for r in results:
            k = r["case"]["kind"]
            kinds[k] = kinds.get(k, 0) + 1
        pattern_lowered = sum(1 for r in results for line in r.get("lowering", []) if line.startswith("pattern"))
        doc = {
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "host": platform.node(),
            "commit": commit,
            "finished": done,
            "seed": args.seed,
            "tolerance": td.TOLERANCE,
            "networks": counter["n"],
            "count": len(results),
            "count_by_target_pipeline": by,
            "count_by_kind": kinds,
            "pattern_lowered_convs": pattern_lowered,
            "vulkan": vulkan,
            "passed": not failures and not NETWORK_FAILURES and done,
            "failed": len(failures),
            "network_failures": len(NETWORK_FAILURES),
            "seconds": round(time.perf_counter() - t0, 1),
            "failures": failures[:100],
            "network_failure_details": NETWORK_FAILURES[:20],
        }
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(doc, indent=1, default=str) + "\n")
        return doc

    @seed(args.seed)
    @settings(max_examples=networks, derandomize=False, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(td.networks(args.per_network, args.per_network))
    def one_network(cases):
        n = counter["n"]
        counter["n"] += 1
        pipeline = PIPELINE_ORDER[n % len(PIPELINE_ORDER)]
        t = time.perf_counter()
        got = _run_network(cases, "llvm-cpu", pipeline, log)
        if vulkan and n % args.vulkan_every == 0:
            got += _run_network(cases, "vulkan-lavapipe", "force" if pipeline == "packed" else pipeline, log)
        results.extend(got)
        bad = sum(not r["ok"] for r in got)
        log(f"network {n + 1}/{networks} ({pipeline}): {len(got)} cases, {bad} failed, "
            f"{time.perf_counter() - t:.0f} s; total {len(results)}")
        write(False)

    one_network()
    doc = write(True)
    print(f"{doc['count']} cases in {doc['networks']} networks, {doc['failed']} failed, {doc['seconds']:.0f} s "
          f"-> {args.output}")
    return 0 if doc["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
