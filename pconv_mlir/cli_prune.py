"""``pconv prune``: train a model densely, prune it (ADMM or one-shot), save it for the compiler.

The ``pconv`` entry point calls :func:`add_parser` on its subparsers; the subcommand sets
``handler=run``. Bad options or data raise :class:`~pconv_mlir.errors.PconvInputError`,
which the entry point prints as one line.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import torch

from pconv_mlir.data import DATASETS, load_dataset
from pconv_mlir.errors import PconvInputError
from pconv_mlir.models import MODELS, build_model
from pconv_mlir.pruning import PruningConfig, evaluate, fit, prune_and_retrain, save_pruned, summarize

__all__ = ["add_parser", "run"]

#: Input size per model when the dataset is resizable (digits); 32 for the rest.
_IMAGE_SIZE = {"small_cnn": 16, "small_resnet": 16, "small_mobilenet": 16}


def _model_arg(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with VALUE read as JSON when it parses (16, 0.5, true), else a string."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def add_parser(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> argparse.ArgumentParser:
    """Add the ``prune`` subcommand to ``subparsers`` and return its parser."""
    p = subparsers.add_parser(
        "prune",
        help="train, PCONV-prune (patterns + connectivity) and save a model",
        description="Train a model on a dataset, prune its 3x3 convs to a pattern library with "
        "connectivity pruning (ADMM or one-shot), retrain with masks, and save model + metadata.",
    )
    p.add_argument("--model", default="small_cnn", choices=sorted(MODELS))
    p.add_argument("--model-arg", type=_model_arg, action="append", default=[], metavar="KEY=VALUE",
                   help="extra constructor argument, e.g. width=16 (repeatable)")
    p.add_argument("--dataset", default="digits", choices=DATASETS)
    p.add_argument("--data-dir", help="folder with the CIFAR-10 python batches")
    p.add_argument("--image-size", type=int, help="digits resize (default 16 for the small_* models, else 32)")
    p.add_argument("--mode", default="admm", choices=("admm", "oneshot"))
    p.add_argument("--group-size", "-G", type=int, default=PruningConfig.group_size,
                   help=f"G filters share structure (default {PruningConfig.group_size}: the compiler keeps G < 8 dense)")
    p.add_argument("--patterns", type=int, default=8, help="pattern library size, 4..12 (default 8)")
    p.add_argument("--keep", type=float, default=1 / 3.6, help="kernels kept per 3x3 filter (default 1/3.6)")
    p.add_argument("--prune-1x1", action="store_true", help="block-connectivity-prune 1x1 convs too")
    p.add_argument("--keep-1x1", type=float, default=PruningConfig.keep_1x1,
                   help=f"input channels kept per 1x1 block (default {PruningConfig.keep_1x1})")
    p.add_argument("--group-size-1x1", type=int, help="filters per 1x1 block (default: --group-size)")
    p.add_argument("--prune-unaccelerated", action="store_true",
                   help="also prune convs the compiler keeps dense (3x3 with < 8 input channels, grouped)")
    p.add_argument("--exclude", action="append", default=[], metavar="NAME", help="conv left dense (repeatable)")
    p.add_argument("--epochs", type=int, default=20, help="dense training epochs (default 20)")
    p.add_argument("--admm-epochs", type=int, default=10, help="ADMM epochs; one-shot retrains that much longer")
    p.add_argument("--retrain-epochs", type=int, default=10, help="masked retraining epochs")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate of every phase")
    p.add_argument("--rho", type=float, default=PruningConfig.rho)
    p.add_argument("--rho-growth", type=float, default=PruningConfig.rho_growth)
    p.add_argument("--rho-max", type=float, default=PruningConfig.rho_max)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, help="torch CPU threads (small models run best on 1)")
    p.add_argument("--out", required=True, help="output file (.pt)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or summary")
    p.set_defaults(handler=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Execute ``pconv prune``; returns the exit status."""
    try:
        config = PruningConfig(
            num_patterns=args.patterns, keep=args.keep, group_size=args.group_size, prune_1x1=args.prune_1x1,
            keep_1x1=args.keep_1x1, group_size_1x1=args.group_size_1x1, prune_unaccelerated=args.prune_unaccelerated,
            exclude=tuple(args.exclude), rho=args.rho, rho_growth=args.rho_growth, rho_max=args.rho_max,
        )
        data = load_dataset(args.dataset, data_dir=args.data_dir, seed=args.seed,
                            image_size=args.image_size or _IMAGE_SIZE.get(args.model, 32))
        torch.manual_seed(args.seed)
        model = build_model(args.model, num_classes=data.num_classes, in_channels=data.in_channels, **dict(args.model_arg))
    except (ValueError, FileNotFoundError, TypeError) as e:
        raise PconvInputError(str(e)) from e
    if args.threads:
        torch.set_num_threads(args.threads)
    progress = not args.quiet and sys.stderr.isatty()
    train, test = data.loaders(args.batch_size, args.seed)
    fit(model, train, args.epochs, args.lr, progress=progress, desc="dense")
    dense = evaluate(model, test)
    meta = prune_and_retrain(
        model, train, config, args.mode, admm_epochs=args.admm_epochs, retrain_epochs=args.retrain_epochs,
        admm_lr=args.lr, retrain_lr=args.lr, progress=progress,
    )
    pruned = evaluate(model, test)
    summary = summarize(model, meta)
    meta.input_shape = [1, *data.x_test.shape[1:]]
    meta.info.update(dataset=args.dataset, seed=args.seed, dense_epochs=args.epochs, dense_accuracy=dense,
                     accuracy=pruned, compression=meta.compression(), pattern_convs=summary.pattern_convs,
                     dense_convs=summary.dense_convs)
    save_pruned(args.out, model, meta)
    if not args.quiet:
        print(f"{args.model} on {args.dataset}: dense {dense:.2f}% -> pruned {pruned:.2f}% ({args.mode}); wrote {args.out}")
        print(summary.text())
    return 0
