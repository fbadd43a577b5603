#!/usr/bin/env python3
"""`pconv tune` on whole models: tuning wall time (first run and cached rerun), and the gain of the
tuned build over the untuned one (both checked against PyTorch, timed with iree-benchmark-module
in interleaved rounds, medians).

    python benchmarks/tune_bench.py [--models resnet50] [--group-size 32] [--tune-threads 1]
        [--threads 1,2] [--rounds 3] [--out results/tune_bench]
Writes OUT.json, OUT.md and the tuning files OUT_<model>.tuning.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

from pconv_mlir.fileio import atomic_write  # noqa: E402
from pconv_mlir.numerics import TOLERANCE, rel_err  # noqa: E402
from pconv_mlir.provenance import repo_commit  # noqa: E402


def bench_model(name: str, group_size: int, tune_threads: int, threads: list[int], rounds: int, out: str,
                workdir: str) -> dict:
    import torch

    import pconv_mlir
    from pconv_mlir.compiler import import_model
    from pconv_mlir.peers.bench import INPUTS, build
    from pconv_mlir.tuning import tuning_file

    model = build(name, "pruned", group_size=group_size)
    x = torch.randn(*INPUTS[name], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = model(x).numpy()
    t0 = time.monotonic()
    mlir = os.path.join(workdir, f"{name}.mlir")
    with open(mlir, "w") as f:
        f.write(import_model(model, [x]))
    import_s = time.monotonic() - t0
    tuning_path = f"{out}_{name}.tuning.json"
    rec = {"model": name, "G": group_size, "tune_threads": tune_threads, "import_s": round(import_s, 1)}
    for run in ("first", "cached"):
        t0 = time.monotonic()
        data = pconv_mlir.tune(mlir, target="llvm-cpu", output=tuning_path, device="local-task",
                               threads=tune_threads, reuse=run == "cached", progress=True)
        rec[f"tune_{run}_s"] = round(time.monotonic() - t0, 1)
        rec[f"tune_{run}_reused"] = data["last_run"]["reused"]
    entries = list(data["entries"].values())
    rec["convs"], rec["distinct"] = data["last_run"]["layers"], data["last_run"]["unique"]
    rec["switched"] = [{"layer": e["layer"], "untuned": e["untuned"], "winner": e["winner"],
                        "untuned_ms": tuning_file.untuned(e)["measured_ms"],
                        "winner_ms": tuning_file.winner(e)["measured_ms"]}
                       for e in entries if e["winner"] != e["untuned"]]
    rec["layer_gain_ms"] = round(sum(tuning_file.untuned(e)["measured_ms"] - tuning_file.winner(e)["measured_ms"]
                                     for e in entries), 3)
    paths, errs, compile_s = {}, {}, {}
    for build_name, tuning in (("untuned", None), ("tuned", tuning_path)):
        t0 = time.monotonic()
        c = pconv_mlir.compile(mlir, target="llvm-cpu", tuning=tuning)
        compile_s[build_name] = round(time.monotonic() - t0, 1)
        paths[build_name] = os.path.join(workdir, f"{name}_{build_name}.vmfb")
        c.save(paths[build_name])
        errs[build_name] = float(rel_err(c.run(x.numpy(), device="local-sync"), ref))
        if build_name == "tuned":
            rec["tuned_convs"] = sum(r.tuning is not None for r in c.report)
    rec["rel_err"], rec["compile_s"] = errs, compile_s
    xpath = os.path.join(workdir, "x.npy")
    np.save(xpath, x.numpy())
    rec["times"] = {}
    for t in threads:
        samples = {b: [] for b in paths}
        cpu = {b: [] for b in paths}
        for _ in range(rounds):  # interleaved: the machine's load moves between rounds
            for b, p in paths.items():
                real_ms, cpu_ms = _bench(p, xpath, t)
                samples[b].append(real_ms)
                cpu[b].append(cpu_ms)
        med = {b: statistics.median(s) for b, s in samples.items()}
        rec["times"][str(t)] = {**{f"{b}_ms": round(m, 2) for b, m in med.items()},
                                "gain": round(med["untuned"] / med["tuned"], 3)}
        if t == 1:  # local-sync runs in the calling thread: its CPU time is the model's, whatever the load
            cmed = {b: statistics.median(s) for b, s in cpu.items()}
            rec["times"][str(t)].update({f"{b}_cpu_ms": round(m, 2) for b, m in cmed.items()})
            rec["times"][str(t)]["cpu_gain"] = round(cmed["untuned"] / cmed["tuned"], 3)
    return rec


def _bench(vmfb: str, x: str, threads: int) -> tuple[float, float]:
    """(real, CPU) median ms of iree-benchmark-module (as pconv_mlir.runtime.bench_vmfb, plus CPU time)."""
    import subprocess

    exe = os.path.join(os.path.dirname(sys.executable), "iree-benchmark-module")
    cmd = [exe, f"--module={vmfb}", "--function=main", f"--input=@{x}", "--benchmark_repetitions=3",
           "--benchmark_min_time=0.2s", "--benchmark_format=json", "--benchmark_report_aggregates_only=true"]
    cmd += ["--device=local-sync"] if threads == 1 else ["--device=local-task",
                                                         f"--task_topology_max_group_count={threads}"]
    data = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    b = next(b for b in data["benchmarks"] if b.get("aggregate_name") == "median")
    scale = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[b.get("time_unit", "ms")]
    return b["real_time"] * scale, b["cpu_time"] * scale


def markdown(data: dict) -> str:
    lines = [f"# pconv tune: whole-model gain, {data['date']}", "",
             f"{data['machine']}, commit {data['commit']}. Command: `{data['command']}`.", "",
             "The machine was loaded (2 cores shared with other agents' jobs) during these runs: times are "
             "inflated and noisy; the tuner's margin (a candidate must be "
             f"{int(data['margin'] * 100)}% faster to replace the untuned choice) and the interleaved medians are "
             "there for that. Layers are tuned in process CPU time at the tune threads (`pconv tune --clock cpu`, "
             "the default); whole models are timed with iree-benchmark-module, medians of interleaved rounds: "
             "wall time, and at 1 thread (`local-sync`, the calling thread does the work) also CPU time, the "
             "figure the load disturbs least.", "",
             "| model | G | convs (distinct) | tune s (first / cached) | switched | sum of per-layer gains ms | "
             "threads | untuned ms | tuned ms | gain (wall) | untuned / tuned CPU ms | gain (CPU) | "
             "rel err untuned / tuned |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in data["results"]:
        for t, tm in r["times"].items():
            cpu = (f"{tm['untuned_cpu_ms']:.2f} / {tm['tuned_cpu_ms']:.2f} | {tm['cpu_gain']:.3f}x"
                   if "cpu_gain" in tm else "- | -")
            lines.append(f"| {r['model']} | {r['G']} | {r['convs']} ({r['distinct']}) | {r['tune_first_s']:.0f} / "
                         f"{r['tune_cached_s']:.0f} | {len(r['switched'])} | {r['layer_gain_ms']:.3f} | {t} | "
                         f"{tm['untuned_ms']:.2f} | {tm['tuned_ms']:.2f} | {tm['gain']:.3f}x | {cpu} | "
                         f"{r['rel_err']['untuned']:.1e} / {r['rel_err']['tuned']:.1e} |")
    lines += ["", "Switched layers (untuned -> winner, measured ms at the tune threads):", ""]
    for r in data["results"]:
        for s in r["switched"]:
            lay = s["layer"]
            lines.append(f"- {r['model']}: {lay['C']}->{lay['K']}@{lay['H']}x{lay['W']} s{lay['stride'][0]} "
                         f"G={lay['G']}: {s['untuned']} {s['untuned_ms']:.3f} -> {s['winner']} {s['winner_ms']:.3f}")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="resnet50")
    p.add_argument("--group-size", type=int, default=32)
    p.add_argument("--tune-threads", type=int, default=1)
    p.add_argument("--threads", default="1,2")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", default=os.path.join(ROOT, "results", "tune_bench"))
    a = p.parse_args(argv)
    from pconv_mlir.tuning.tuner import MARGIN

    with tempfile.TemporaryDirectory(prefix="tune-bench-") as workdir:
        results = [bench_model(m, a.group_size, a.tune_threads, [int(t) for t in a.threads.split(",")], a.rounds,
                               a.out, workdir) for m in a.models.split(",")]
    data = {"date": datetime.date.today().isoformat(), "commit": repo_commit(), "machine":
            f"{platform.machine()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end",
            "command": "python benchmarks/tune_bench.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "margin": MARGIN, "tolerance": TOLERANCE, "results": results}
    atomic_write(a.out + ".json", json.dumps(data, indent=1) + "\n")
    atomic_write(a.out + ".md", markdown(data))
    print(markdown(data))
    bad = [r["model"] for r in results if max(r["rel_err"].values()) > TOLERANCE]
    if bad:
        print("wrong results:", bad, file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
