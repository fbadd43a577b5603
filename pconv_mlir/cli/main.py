"""The ``pconv`` command: prune, compile, run, bench, android.

Each subcommand lives in its own module of :mod:`pconv_mlir.cli` exposing
``add_parser(subparsers)``, which sets ``args.handler``. Errors the user can fix are
:class:`~pconv_mlir.errors.PconvError`: one line on stderr, exit code 1, no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from pconv_mlir import __version__
from pconv_mlir.errors import PconvError

# Modules contributing subcommands, in the order --help lists them.
SUBCOMMAND_MODULES = (
    "pconv_mlir.cli.prune",
    "pconv_mlir.cli.compile",
    "pconv_mlir.cli.runtime",
    "pconv_mlir.cli.android",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pconv", description="PCONV pattern pruning and compilation of CNNs for mobile GPUs and CPUs.")
    parser.add_argument("--version", action="version", version=f"pconv-mlir {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        return int(handler(args) or 0)
    except PconvError as err:
        print(f"pconv {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # a bug of ours: one line, exit 1; PCONV_DEBUG=1 shows the traceback
        if os.environ.get("PCONV_DEBUG"):
            raise
        print(f"pconv {args.command}: internal error: {type(err).__name__}: {err} "
              "(rerun with PCONV_DEBUG=1 for details)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
