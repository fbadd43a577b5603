"""The benchmark against PCONV's peers: the same models through every installed runtime,
each output checked against PyTorch before it is timed, timings interleaved in one run.

``benchmarks/peers_bench.py`` is the command line; :func:`run` is what it (and the smoke
test) calls; :func:`write_outputs` writes ``.json``, ``.md`` and ``.png``.

Protocol, per model and weights (dense, or pattern-pruned with G filters sharing structure):
1. convert the model with every peer (skipped with the reason when its package is missing);
2. run each once per thread count and compare with PyTorch: rel err = max|out - torch| /
   max|torch| must be <= ``tol``, else the peer is marked wrong and not timed;
3. ``rounds`` rounds; in each, for each thread count, every peer once in turn (the order
   rotates by one each round) gives one sample: the median time of one inference over at least
   ``min_time`` seconds after a warm-up (IREE builds: iree-benchmark-module, median of 3
   repetitions of ``min_time``); the result is the median of the samples.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Sequence

import numpy as np

from pconv_mlir.numerics import TOLERANCE, rel_err
from pconv_mlir.runtime.timing import realtime_priority

from . import PEERS, PeerUnavailable

#: Batch-1 input of each model.
INPUTS = {
    "vgg16_cifar": (1, 3, 32, 32),
    "vgg16_imagenet": (1, 3, 224, 224),
    "resnet50": (1, 3, 224, 224),
    "mobilenet_v2": (1, 3, 224, 224),
    "small_cnn": (1, 1, 16, 16),
}
#: The peers a speed-up of pconv is measured against (pconv's own dense IREE build included).
TARGET_SPEEDUP = 4.0
PRUNE_KEEP = 1 / 3.6


#: Keep rate of the 1x1 convs' input channels in "pruned+1x1" weights (2x fewer 1x1 MACs).
KEEP_1X1 = 0.5
WEIGHTS = ("dense", "pruned", "pruned+1x1")


def build(name: str, weights: str, group_size: int = 32, seed: int = 0, **kwargs):
    """``build_model(name)`` with seed-0 weights; ``weights="pruned"``: pattern-sparse 3x3 convs
    (:func:`pconv_mlir.synthetic.pattern_prune_model`, 8 patterns, 1/3.6 of kernels kept,
    ``group_size`` consecutive filters sharing structure); ``"pruned+1x1"``: also the 1x1 convs in
    blocks of ``group_size`` filters keeping the same half of the input channels
    (:func:`pconv_mlir.synthetic.block_prune_model_1x1`)."""
    import torch

    from pconv_mlir.models import build_model
    from pconv_mlir.synthetic import block_prune_model_1x1, pattern_prune_model
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be one of {', '.join(WEIGHTS)}, not {weights!r}")
    torch.manual_seed(seed)
    model = build_model(name, **kwargs).eval()
    if weights != "dense":
        pattern_prune_model(model, seed=seed, group_size=group_size, keep=PRUNE_KEEP)
    if weights == "pruned+1x1":
        block_prune_model_1x1(model, seed=seed, group_size=group_size, keep=KEEP_1X1)
    return model


def _peer_rel_err(got, want: np.ndarray) -> float:
    """rel_err, taking a peer's output of the right size in another shape as it is (runtimes
    shape outputs differently)."""
    got = np.asarray(got)
    return rel_err(got.reshape(want.shape) if got.size == want.size else got, want)


def _short(e: BaseException, n: int = 300) -> str:
    msg = " ".join(str(e).split())
    return f"{type(e).__name__}: {msg[:n]}"


def bench_model(model, x: np.ndarray, peers: Sequence[str], threads: Sequence[int], rounds: int = 5,
                min_time: float = 0.3, tol: float = TOLERANCE, workdir: str | None = None,
                log: Callable[[str], None] = print, realtime: bool = False) -> dict:
    """One model through ``peers``; returns ``{peer: record}`` (see module doc). ``realtime``:
    the timing rounds run at real-time priority (:func:`~pconv_mlir.runtime.timing.realtime_priority`)."""
    import torch
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    own_tmp = workdir is None
    workdir = workdir or tempfile.mkdtemp(prefix="peers-bench-")
    os.makedirs(workdir, exist_ok=True)
    recs: dict[str, dict] = {}
    runners = {}
    try:
        for name in peers:
            peer = PEERS[name]
            rec = recs[name] = {"status": "ok"}
            reason = peer.unavailable()
            if reason:
                rec.update(status="skipped", reason=reason)
                log(f"  {name}: skipped ({reason})")
                continue
            t0 = time.perf_counter()
            try:
                runner = peer.convert(model, x, workdir)
            except PeerUnavailable as e:
                rec.update(status="skipped", reason=str(e))
                log(f"  {name}: skipped ({e})")
                continue
            except Exception as e:  # noqa: BLE001 - a failed conversion is a result
                rec.update(status="error", reason=f"conversion: {_short(e)}")
                log(f"  {name}: conversion failed ({_short(e)})")
                continue
            rec.update(runner.info)
            try:
                errs = {t: _peer_rel_err(runner.run(x, threads=t), want) for t in threads}
                # conversion plus the check runs (torch.compile compiles on its first run)
                rec["convert_s"] = round(time.perf_counter() - t0, 1)
            except Exception as e:  # noqa: BLE001
                rec.update(status="error", reason=f"run: {_short(e)}")
                log(f"  {name}: run failed ({_short(e)})")
                runner.close()
                continue
            rec["rel_err"] = max(errs.values())
            if not rec["rel_err"] <= tol:
                rec.update(status="wrong", reason=f"rel err {rec['rel_err']:.2e} > {tol:g} "
                           f"(per thread count: {', '.join(f'{t}: {e:.1e}' for t, e in errs.items())})")
                log(f"  {name}: WRONG output, {rec['reason']}; not timed")
                runner.close()
                continue
            runners[name] = runner
            log(f"  {name}: converted in {rec['convert_s']} s, rel err {rec['rel_err']:.1e}")
        samples = {n: {t: [] for t in threads} for n in runners}
        with realtime_priority(realtime) as active:
            if realtime and not active:
                log("  (real-time priority unavailable: timing at normal priority)")
            _rounds(runners, recs, samples, x, threads, rounds, min_time, log)
        for n, s in samples.items():
            if recs[n]["status"] == "ok":
                recs[n]["samples_ms"] = {str(t): [round(v, 4) for v in s[t]] for t in threads}
                recs[n]["ms"] = {str(t): float(np.median(s[t])) for t in threads}
    finally:
        for r in runners.values():
            r.close()
        if own_tmp:
            import shutil
            shutil.rmtree(workdir, ignore_errors=True)
    return recs


def _rounds(runners: dict, recs: dict, samples: dict, x: np.ndarray, threads: Sequence[int], rounds: int,
            min_time: float, log: Callable[[str], None]) -> None:
    """Interleaved timing: each round, per thread count, every peer once (order rotating)."""
    for rnd in range(rounds):
        for t in threads:
            order = list(runners)
            order = order[rnd % len(order):] + order[:rnd % len(order)] if order else order
            for n in order:
                if recs[n]["status"] != "ok":
                    continue
                try:
                    samples[n][t].append(runners[n].time_ms(x, t, min_time))
                except Exception as e:  # noqa: BLE001
                    recs[n].update(status="error", reason=f"timing ({t} threads): {_short(e)}")
                    log(f"  {n}: timing failed ({_short(e)})")
        log(f"  round {rnd + 1}/{rounds}: " + ", ".join(
            f"{n} " + "/".join(f"{s[t][-1]:.2f}" for t in threads if s[t]) for n, s in samples.items()
            if recs[n]["status"] == "ok"))


def speedups(recs: dict, threads: Sequence[int]) -> dict:
    """pconv's speed-up over the fastest other peer (and which one), per thread count."""
    out = {}
    for t in threads:
        t = str(t)
        if recs.get("pconv", {}).get("status") != "ok":
            continue
        others = {n: r["ms"][t] for n, r in recs.items() if n != "pconv" and r.get("status") == "ok"}
        if not others:
            continue
        fastest = min(others, key=others.get)
        out[t] = {"fastest_peer": fastest, "fastest_ms": others[fastest],
                  "speedup": others[fastest] / recs["pconv"]["ms"][t]}
        iree = {n: ms for n, ms in others.items() if n.startswith("iree-dense")}
        if iree:  # IREE's own dense compile: its fastest configuration in this run
            best = min(iree, key=iree.get)
            out[t]["iree_dense_best"] = best
            out[t]["speedup_vs_iree_dense"] = iree[best] / recs["pconv"]["ms"][t]
    return out


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{platform.machine()} {cpu}, {os.cpu_count()} cores, Linux {platform.release()}"


def run(models: Sequence[str], weights: Sequence[str] = ("dense", "pruned"), peers: Sequence[str] | None = None,
        threads: Sequence[int] = (1,), rounds: int = 5, min_time: float = 0.3, tol: float = TOLERANCE,
        group_size: int = 32, workdir: str | None = None, input_shapes: dict | None = None,
        model_kwargs: dict | None = None, log: Callable[[str], None] = print, realtime: bool = False) -> dict:
    """The whole benchmark; returns ``{"meta": ..., "results": [...]}`` (what the JSON holds)."""
    from pconv_mlir.provenance import repo_commit
    commit = repo_commit()  # the code this run loads (files may change while it runs)
    peers = list(peers or PEERS)
    threads = [int(t) for t in threads]
    shapes = dict(INPUTS, **(input_shapes or {}))
    load0 = os.getloadavg()
    t_start = time.time()
    results = []
    for name in models:
        for w in weights:
            log(f"{name} ({w}{f', G={group_size}' if w != 'dense' else ''}), input {shapes[name]}")
            model = build(name, w, group_size, **(model_kwargs or {}).get(name, {}))
            x = np.random.default_rng(0).standard_normal(shapes[name]).astype(np.float32)
            wd = os.path.join(workdir, f"{name}_{w}") if workdir else None
            recs = bench_model(model, x, peers, threads, rounds, min_time, tol, wd, log, realtime)
            results.append({"model": name, "weights": w, "group_size": group_size if w != "dense" else None,
                            "input": list(shapes[name]), "peers": recs, "pconv_speedup": speedups(recs, threads)})
    meta = {
        "date": datetime.date.today().isoformat(),
        "commit": commit,
        "machine": machine(),
        "load_average_1min": {"start": round(load0[0], 2), "end": round(os.getloadavg()[0], 2)},
        "wall_s": round(time.time() - t_start, 1),
        "timing_priority": "SCHED_FIFO (real-time) during the timing rounds" if realtime else "normal",
        "python": platform.python_version(),
        "threads": threads, "rounds": rounds, "min_time_s": min_time, "tolerance": tol,
        "batch": 1, "dtype": "float32",
        "pruned": f"pconv_mlir.synthetic.pattern_prune_model: 8 patterns (4 of 9 weights), "
                  f"1/3.6 of kernels kept, G={group_size} filters share structure, seed 0; pruned+1x1: also "
                  f"every 1x1 conv in blocks of G filters keeping the same {KEEP_1X1:g} of the input channels "
                  "(pconv_mlir.synthetic.block_prune_model_1x1)",
        "target": f"pconv >= {TARGET_SPEEDUP:g}x faster than the fastest peer at <= 0.5 pt accuracy loss "
                  "(accuracy is not measured here: random weights)",
        "peers": {n: {"version": PEERS[n].version(), "route": PEERS[n].route, "threads": PEERS[n].threads_how}
                  for n in peers},
        "command": " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:]),
    }
    return {"meta": meta, "results": results}


def _cell(rec: dict, t: str) -> str:
    st = rec.get("status")
    if st == "ok":
        return f"{rec['ms'][t]:.2f}"
    return {"skipped": "skip", "wrong": "wrong", "error": "fail"}.get(st, "?")


def markdown(data: dict) -> str:
    meta, results = data["meta"], data["results"]
    peers = list(meta["peers"])
    threads = [str(t) for t in meta["threads"]]
    head = [("tvm (untuned)" if p == "tvm" else p) for p in peers]
    L = [f"# pconv vs peers ({meta['date']})", "",
         f"Machine: {meta['machine']}; commit {meta.get('commit', '?')}; "
         f"1-min load average {meta['load_average_1min']['start']} at the start, "
         f"{meta['load_average_1min']['end']} at the end (the machine is shared: absolute times are inflated, "
         "ratios between peers measured in the same interleaved rounds hold better). "
         f"Timing priority: {meta.get('timing_priority', 'normal')}.", "",
         f"Batch 1, fp32, ms per inference, median of {meta['rounds']} interleaved rounds (each sample itself "
         f"a median over >= {meta['min_time_s']} s). Every output matched PyTorch (rel err <= {meta['tolerance']:g}) "
         f"before it was timed. Pruned: {meta['pruned']}. Command: `{meta['command']}`.", "",
         "| model | weights | threads | " + " | ".join(head) + " | pconv vs fastest peer | pconv vs IREE dense |",
         "|---|---|---|" + "---|" * len(peers) + "---|---|"]
    for r in results:
        for t in threads:
            sp = r["pconv_speedup"].get(t)
            spc = f"{sp['speedup']:.2f}x (vs {sp['fastest_peer']})" if sp else "-"
            spi = (f"{sp['speedup_vs_iree_dense']:.2f}x (vs {sp['iree_dense_best']})"
                   if sp and "iree_dense_best" in sp else "-")
            w = r["weights"] + (f" G={r['group_size']}" if r["group_size"] else "")
            L.append(f"| {r['model']} | {w} | {t} | " + " | ".join(_cell(r["peers"][p], t) for p in peers)
                     + f" | {spc} | {spi} |")
    L += ["", f"Target: {meta['target']}. skip = not installed (reason below), wrong = output did not match "
          "PyTorch, fail = conversion or run failed. IREE dense: the fastest of IREE's own dense "
          "configurations in the run (iree-dense: NCHW as imported; iree-dense-cl: IREE's channels-last rewrite).",
          "", "## Peers", "",
          "| peer | version | route | threads |", "|---|---|---|---|"]
    for p, d in meta["peers"].items():
        L.append(f"| {p} | {d['version']} | {d['route']} | {d['threads']} |")
    L += ["", "## Checks", "", "| model | weights | peer | rel err vs PyTorch | convert + check s | note |",
          "|---|---|---|---|---|---|"]
    for r in results:
        for p in peers:
            rec = r["peers"][p]
            note = rec.get("reason", "")
            if rec.get("pattern_convs"):
                note = (note + " " if note else "") + f"pattern convs {rec['pattern_convs']}"
            err = f"{rec['rel_err']:.1e}" if "rel_err" in rec else "-"
            L.append(f"| {r['model']} | {r['weights']} | {p} | {err} | {rec.get('convert_s', '-')} | "
                     f"{note.replace('|', '/')} |")
    return "\n".join(L) + "\n"


def chart(data: dict, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    meta, results = data["meta"], data["results"]
    peers = list(meta["peers"])
    threads = [str(t) for t in meta["threads"]]
    n = len(results)
    fig, axes = plt.subplots(1, max(n, 1), figsize=(max(4.5 * n, 6), 4.2), squeeze=False)
    width = 0.8 / max(len(threads), 1)
    for ax, r in zip(axes[0], results):
        for k, t in enumerate(threads):
            vals = [r["peers"][p]["ms"][t] if r["peers"][p].get("status") == "ok" else np.nan for p in peers]
            xs = np.arange(len(peers)) + (k - (len(threads) - 1) / 2) * width
            ax.bar(xs, vals, width, label=f"{t} thread{'s' if t != '1' else ''}")
            for xv, v, p in zip(xs, vals, peers):
                if np.isnan(v):
                    ax.text(xv, ax.get_ylim()[0] if ax.has_data() else 1, "n/a", ha="center", va="bottom",
                            fontsize=6, rotation=90)
                elif p == "pconv" and t in r["pconv_speedup"]:
                    ax.text(xv, v, f"{r['pconv_speedup'][t]['speedup']:.2f}x", ha="center", va="bottom", fontsize=6)
        ax.set_yscale("log")
        ax.set_xticks(np.arange(len(peers)))
        ax.set_xticklabels(peers, rotation=45, ha="right", fontsize=8)
        w = r["weights"] + (f" G={r['group_size']}" if r["group_size"] else "")
        ax.set_title(f"{r['model']} ({w})", fontsize=9)
        ax.set_ylabel("ms per inference (log)")
        ax.grid(axis="y", which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"pconv vs peers, batch 1, fp32, {meta['date']}; {meta['machine']}", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_outputs(data: dict, out: str, png: bool = True) -> list[str]:
    """``out``.json, ``out``.md and (when matplotlib is installed) ``out``.png; the paths written."""
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out + ".json", "w") as f:
        json.dump(data, f, indent=2)
    with open(out + ".md", "w") as f:
        f.write(markdown(data))
    written = [out + ".json", out + ".md"]
    if png:
        try:
            chart(data, out + ".png")
            written.append(out + ".png")
        except ImportError as e:
            print(f"no chart: {e} (matplotlib comes with the bench extra)", file=sys.stderr)
    return written
