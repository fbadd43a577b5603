"""``pconv prune``: train a model densely, prune it (ADMM or one-shot), save it for the compiler.

The ``pconv`` entry point calls :func:`add_parser` on its subparsers; the subcommand sets
``handler=run``. Bad options or data raise :class:`~pconv_mlir.errors.PconvInputError`,
which the entry point prints as one line.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from pconv_mlir.errors import PconvInputError

__all__ = ["add_parser", "run"]

#: Input size per model when the dataset is resizable (digits); 32 for the rest.
_IMAGE_SIZE = {"small_cnn": 16, "small_resnet": 16, "small_mobilenet": 16}
#: Largest --image-size: digits resized to it are held in memory (1,797 images).
MAX_IMAGE_SIZE = 256


def _model_arg(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with VALUE read as JSON when it parses (16, 0.5, true), else a string."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


class _LazyChoices:
    """argparse ``choices`` read from a registry on first use: building the parser (for
    ``pconv --help``) must not import torch; parsing ``pconv prune ...`` may."""

    def __init__(self, load: Callable[[], Sequence[str]]):
        self._load = load

    def __contains__(self, item: object) -> bool:
        return item in self._load()

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())


def _model_names() -> list[str]:
    from pconv_mlir.models import MODELS

    return sorted(MODELS)


def _dataset_names() -> Sequence[str]:
    from pconv_mlir.data import DATASETS

    return DATASETS


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Add the ``prune`` subcommand to ``subparsers`` and return its parser."""
    from pconv_mlir.pruning.config import PruningConfig  # plain dataclass: no torch at start-up

    p = subparsers.add_parser(
        "prune",
        help="train, PCONV-prune (patterns + connectivity) and save a model",
        description="Train a model on a dataset, prune its 3x3 convs to a pattern library with "
        "connectivity pruning (ADMM or one-shot), retrain with masks, and save model + metadata.",
    )
    # An explicit metavar keeps argparse from listing (loading) the choices while it builds the parser.
    p.add_argument("--model", default="small_cnn", choices=_LazyChoices(_model_names), metavar="MODEL",
                   help="one of %(choices)s (default %(default)s)")
    p.add_argument("--model-arg", type=_model_arg, action="append", default=[], metavar="KEY=VALUE",
                   help="extra constructor argument, e.g. width=16 (repeatable)")
    p.add_argument("--dataset", default="digits", choices=_LazyChoices(_dataset_names), metavar="DATASET",
                   help="one of %(choices)s (default %(default)s)")
    p.add_argument("--data-dir", help="folder with the CIFAR-10 python batches")
    p.add_argument("--image-size", type=int, help="digits resize (default 16 for the small_* models, else 32)")
    p.add_argument("--mode", default="admm", choices=("admm", "oneshot"))
    p.add_argument("--group-size", "-G", type=int, default=PruningConfig.group_size,
                   help=f"G filters share structure (default {PruningConfig.group_size}: "
                   "the compiler keeps G < 8 dense)")
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
    # ADMM penalty schedule; unset options keep PruningConfig's defaults.
    p.add_argument("--rho", type=float, help="ADMM penalty at the start")
    p.add_argument("--rho-growth", type=float, help="factor applied to rho each ADMM epoch")
    p.add_argument("--rho-max", type=float, help="upper bound of rho")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, help="torch CPU threads (small models run best on 1)")
    p.add_argument("--out", required=True, help="output file (.pt)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or summary")
    p.set_defaults(handler=run)
    return p


def _check_numbers(args: argparse.Namespace) -> None:
    """The numeric options, before any data is loaded (torch's own errors come late and as tracebacks)."""
    from pconv_mlir.runtime.device import MAX_THREADS

    if args.batch_size < 1:
        raise PconvInputError(f"--batch-size must be >= 1, got {args.batch_size}")
    for name in ("epochs", "admm_epochs", "retrain_epochs"):
        if getattr(args, name) < 0:
            raise PconvInputError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(args, name)}")
    if not math.isfinite(args.lr) or args.lr <= 0:
        raise PconvInputError(f"--lr must be a finite number > 0, got {args.lr}")
    if args.image_size is not None and not 1 <= args.image_size <= MAX_IMAGE_SIZE:
        raise PconvInputError(f"--image-size must be in 1..{MAX_IMAGE_SIZE}, got {args.image_size}")
    if args.threads is not None and not 1 <= args.threads <= MAX_THREADS:
        raise PconvInputError(f"--threads must be in 1..{MAX_THREADS}, got {args.threads}")
    if args.seed < 0:
        raise PconvInputError(f"--seed must be >= 0, got {args.seed}")


def run(args: argparse.Namespace) -> int:
    """Execute ``pconv prune``; returns the exit status."""
    import torch

    from pconv_mlir.data import load_dataset
    from pconv_mlir.fileio import check_output_paths
    from pconv_mlir.models import build_model
    from pconv_mlir.pruning import PruningConfig, evaluate, fit, prune_and_retrain, save_pruned, summarize

    # Everything that can be checked is, before the training: its result must not be lost.
    check_output_paths([("--out", args.out)])
    _check_numbers(args)
    schedule = {k: getattr(args, k) for k in ("rho", "rho_growth", "rho_max") if getattr(args, k) is not None}
    image_size = args.image_size if args.image_size is not None else _IMAGE_SIZE.get(args.model, 32)
    try:
        config = PruningConfig(
            num_patterns=args.patterns, keep=args.keep, group_size=args.group_size, prune_1x1=args.prune_1x1,
            keep_1x1=args.keep_1x1, group_size_1x1=args.group_size_1x1, prune_unaccelerated=args.prune_unaccelerated,
            exclude=tuple(args.exclude), **schedule,
        )
        data = load_dataset(args.dataset, data_dir=args.data_dir, seed=args.seed, image_size=image_size)
        torch.manual_seed(args.seed)
        model = build_model(args.model, num_classes=data.num_classes, in_channels=data.in_channels,
                            **dict(args.model_arg))
    except (ValueError, FileNotFoundError, TypeError) as e:
        raise PconvInputError(str(e)) from e
    try:  # one image through the model: widths or image sizes it cannot take fail here, not mid-training
        with torch.no_grad():
            model.eval()(torch.as_tensor(data.x_test[:1]))
    except RuntimeError as e:
        raise PconvInputError(f"{args.model} with {dict(args.model_arg) or 'its defaults'} cannot take "
                              f"{args.dataset} images of shape {tuple(data.x_test.shape[1:])}: "
                              f"{str(e).strip().splitlines()[0]}") from None
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
        print(f"{args.model} on {args.dataset}: dense {dense:.2f}% -> pruned {pruned:.2f}% ({args.mode}); "
              f"wrote {args.out}")
        print(summary.text())
    return 0
