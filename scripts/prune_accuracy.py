#!/usr/bin/env python3
"""Measure what PCONV pruning costs in accuracy on real data (scikit-learn digits).

For every seed: train ``small_cnn`` densely, then from that same dense model prune to
8 patterns x 1/3.6 connectivity (about 8x fewer 3x3 conv weights) with each group size G,
by ADMM and by one-shot projection + fine-tuning at the same epoch budget, and measure
test accuracy. Writes ``results/pruning_accuracy.json`` (every run) and
``results/pruning_accuracy.md`` (the table quoted in the README).

Seeds change the train/test split, the initialisation and the batch order. Each seed runs
in its own process with one torch thread (small convs run best single-threaded; ``--jobs``
sets how many seeds run at once).

    python scripts/prune_accuracy.py                  # defaults below, ~10-15 min on 2 cores
    python scripts/prune_accuracy.py --seeds 0 --dense-epochs 2 --admm-epochs 1 --retrain-epochs 1  # smoke
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from pconv_mlir.data import load_digits  # noqa: E402
from pconv_mlir.models import small_cnn  # noqa: E402
from pconv_mlir.pruning import PruningConfig, evaluate, fit, prune_and_retrain  # noqa: E402

MODES = ("oneshot", "admm")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--groups", type=int, nargs="+", default=[1, 8], help="group sizes G")
    p.add_argument("--width", type=int, default=32, help="small_cnn width")
    p.add_argument("--image-size", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--dense-epochs", type=int, default=20)
    p.add_argument("--admm-epochs", type=int, default=10)
    p.add_argument("--retrain-epochs", type=int, default=10)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--rho", type=float, default=PruningConfig.rho)
    p.add_argument("--rho-growth", type=float, default=PruningConfig.rho_growth)
    p.add_argument("--jobs", type=int, default=5, help="seeds run in parallel (one process each)")
    p.add_argument("--out-dir", type=Path, default=ROOT / "results")
    p.add_argument("--render-only", action="store_true", help="rewrite the .md from the existing .json, no training")
    return p.parse_args()


def run_seed(args: argparse.Namespace, seed: int) -> list[dict[str, Any]]:
    """Dense training and every (G, mode) pruning run for one seed."""
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    data = load_digits(image_size=args.image_size, seed=seed)
    train, test = data.loaders(args.batch_size, seed)
    dense = small_cnn(num_classes=10, in_channels=1, width=args.width)
    start = time.process_time()
    fit(dense, train, args.dense_epochs, args.lr)
    rows = [dict(seed=seed, variant="dense", group_size=None, mode=None, accuracy=evaluate(dense, test),
                 compression=1.0, cpu_seconds=round(time.process_time() - start, 1))]
    for group_size in args.groups:
        for mode in MODES:
            torch.manual_seed(seed)
            model, start = copy.deepcopy(dense), time.process_time()
            # every 3x3 conv, the 1-channel stem included, as when results/pruning_accuracy.md was written
            config = PruningConfig(group_size=group_size, rho=args.rho, rho_growth=args.rho_growth,
                                   prune_unaccelerated=True)
            meta = prune_and_retrain(model, train, config, mode, admm_epochs=args.admm_epochs,
                                     retrain_epochs=args.retrain_epochs, admm_lr=args.lr, retrain_lr=args.lr)
            rows.append(dict(seed=seed, variant=f"G={group_size} {mode}", group_size=group_size, mode=mode,
                             accuracy=evaluate(model, test), compression=round(meta.compression(), 3),
                             cpu_seconds=round(time.process_time() - start, 1)))
            print(f"seed {seed} {rows[-1]['variant']}: {rows[-1]['accuracy']:.2f}%", flush=True)
    return rows


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean accuracy per variant and its difference to the dense mean, in run order."""
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    dense = statistics.mean(r["accuracy"] for r in rows if r["variant"] == "dense")
    table = []
    for v in variants:
        accs = [r["accuracy"] for r in rows if r["variant"] == v]
        comp = [r["compression"] for r in rows if r["variant"] == v]
        table.append(dict(variant=v, accuracies=accs, mean=statistics.mean(accs),
                          std=statistics.stdev(accs) if len(accs) > 1 else 0.0,
                          delta=statistics.mean(accs) - dense, compression=statistics.mean(comp)))
    return table


def markdown(settings: dict[str, Any], table: list[dict[str, Any]], test_images: int) -> str:
    seeds = settings["seeds"]
    head = "| variant | conv compression | " + " | ".join(f"seed {s}" for s in seeds) + " | mean ± sd | vs dense |"
    lines = [
        "# Pruning accuracy on scikit-learn digits",
        "",
        f"Written by `scripts/prune_accuracy.py` on {settings['date']} ({settings['machine']}, torch "
        f"{settings['torch']}, {settings['threads_per_seed']} thread per seed, {settings['jobs']} seeds at a time, "
        f"{settings['wall_seconds']:.0f} s wall, {settings['cpu_seconds']:.0f} CPU-seconds in all).",
        "",
        f"Model `small_cnn(width={settings['width']})` (six 3x3 conv+BN+ReLU layers) on digits resized to "
        f"{settings['image_size']}x{settings['image_size']}; {test_images} test images per seed (one image = "
        f"{100 / test_images:.2f} pt); each seed has its own stratified split, initialisation and batch order.",
        f"Dense: {settings['dense_epochs']} epochs. Pruned from that dense model to {settings['patterns']} patterns "
        f"x keep {settings['keep']:.4f}: ADMM {settings['admm_epochs']} epochs (rho {settings['rho']}, growth "
        f"{settings['rho_growth']}/epoch) + {settings['retrain_epochs']} masked retraining; one-shot "
        f"{settings['admm_epochs'] + settings['retrain_epochs']} masked retraining (same budget). Adam, lr "
        f"{settings['lr']}, cosine decay per phase, batch {settings['batch_size']}.",
        "",
        head,
        "|" + "---|" * (len(seeds) + 4),
    ]
    for row in table:
        accs = " | ".join(f"{a:.2f}" for a in row["accuracies"])
        delta = "" if row["variant"] == "dense" else f"{row['delta']:+.2f}"
        lines.append(f"| {row['variant']} | {row['compression']:.2f}x | {accs} | "
                     f"{row['mean']:.2f} ± {row['std']:.2f} | {delta} |")
    return "\n".join(lines) + "\n"


def write_table(out_dir: Path, settings: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    """Write the JSON (settings, every run, summary) and the Markdown table; print the table."""
    table = summarize(rows)
    test_images = len(load_digits(image_size=settings["image_size"], seed=settings["seeds"][0]).y_test)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "pruning_accuracy.json").write_text(
        json.dumps(dict(settings=settings, runs=rows, summary=table), indent=2) + "\n")
    text = markdown(settings, table, test_images)
    (out_dir / "pruning_accuracy.md").write_text(text)
    print(text)


def main() -> int:
    args = parse_args()
    if args.render_only:
        saved = json.loads((args.out_dir / "pruning_accuracy.json").read_text())
        write_table(args.out_dir, saved["settings"], saved["runs"])
        return 0
    start = time.time()
    with ProcessPoolExecutor(max_workers=max(1, min(args.jobs, len(args.seeds)))) as pool:
        per_seed = list(pool.map(run_seed, [args] * len(args.seeds), args.seeds))
    rows = [r for seed_rows in per_seed for r in seed_rows]
    config = PruningConfig()
    settings = dict(
        {k: v for k, v in vars(args).items() if k not in ("out_dir", "render_only")},
        patterns=config.num_patterns, keep=config.keep, threads_per_seed=1,
        date=datetime.datetime.now().isoformat(timespec="seconds"),
        machine=f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
        torch=torch.__version__, wall_seconds=round(time.time() - start, 1),
        cpu_seconds=round(sum(r["cpu_seconds"] for r in rows), 1),
    )
    write_table(args.out_dir, settings, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
