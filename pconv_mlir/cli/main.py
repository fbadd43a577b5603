"""The ``pconv`` command: prune, compile, run, bench, android.

Each subcommand lives in its own module of :mod:`pconv_mlir.cli` exposing
``add_parser(subparsers)``, which sets ``args.handler``. Errors the user can fix are
:class:`~pconv_mlir.errors.PconvError`: one line on stderr, exit code 1, no traceback.

Signals: SIGTERM and SIGHUP end the command as Ctrl-C does (an exception, so that a running
child such as iree-compile is killed on the way out and no temporary file is left), exit
128 + the signal number. Standard streams: a closed one acts as /dev/null; standard output
that cannot be written (a closed pipe, a full disk) is one error line and exit 1.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
import threading

from pconv_mlir import __version__
from pconv_mlir.errors import PconvError

# Modules contributing subcommands, in the order --help lists them.
SUBCOMMAND_MODULES = (
    "pconv_mlir.cli.prune",
    "pconv_mlir.cli.compile",
    "pconv_mlir.cli.import_model",
    "pconv_mlir.cli.runtime",
    "pconv_mlir.cli.android",
)
TERMINATING_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Terminated(BaseException):
    """A terminating signal arrived. BaseException, so that ``except Exception`` does not stop
    it, and subprocess.run kills its child while it unwinds."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


class StdoutError(Exception):
    """Writing standard output failed (EPIPE, ENOSPC, ...)."""


class _CheckedStdout:
    """Wraps sys.stdout: a failed write or flush raises StdoutError and points file descriptor 1
    at /dev/null, so that the interpreter's own flush at exit does not print a second error."""

    def __init__(self, stream):
        self._stream = stream

    def _failed(self, err: OSError) -> StdoutError:
        with contextlib.suppress(Exception):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        return StdoutError(err.strerror or str(err))

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError as err:
            raise self._failed(err) from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as err:
            raise self._failed(err) from None

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def _open_closed_std_fds() -> None:
    """Point closed file descriptors 0-2 at /dev/null: otherwise the next file opened (a module
    being written) would get one of them, and anything printed would land in it."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            new = os.open(os.devnull, os.O_RDWR)
            if new != fd:
                os.dup2(new, fd)
                os.close(new)


def _raise_terminated(signum, frame):
    raise Terminated(signum)


@contextlib.contextmanager
def _signals_and_stdout():
    """Install the SIGTERM/SIGHUP handlers and the checked stdout for one command, then restore
    them (tests call :func:`main` in-process, maybe off the main thread)."""
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {s: signal.signal(s, _raise_terminated) for s in TERMINATING_SIGNALS}
    stdout = sys.stdout
    if stdout is not None:
        sys.stdout = _CheckedStdout(stdout)
    try:
        yield
    finally:
        sys.stdout = stdout
        for s, handler in previous.items():
            signal.signal(s, handler)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pconv", description="PCONV pattern pruning and compilation of CNNs for mobile GPUs and CPUs.")
    parser.add_argument("--version", action="version", version=f"pconv-mlir {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).add_parser(subparsers)
    return parser


def _run(argv: list[str] | None, prog: list[str]) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit:  # --help, --version, usage errors: argparse has printed; flush it here
        if sys.stdout is not None:
            sys.stdout.flush()
        raise
    prog.append(f"pconv {args.command}" if args.command else "pconv")
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        rc = 0 if args.command is None else 2
    else:
        rc = int(handler(args) or 0)
    if sys.stdout is not None:
        sys.stdout.flush()
    return rc


def main(argv: list[str] | None = None) -> int:
    _open_closed_std_fds()
    if sys.stderr is None:  # stderr was closed when Python started: errors go nowhere, not to stdout
        sys.stderr = open(os.devnull, "w")
    prog: list[str] = []  # filled once the command is known

    def name() -> str:
        return prog[-1] if prog else "pconv"

    with _signals_and_stdout():
        try:
            return _run(argv, prog)
        except StdoutError as err:
            print(f"{name()}: error: cannot write to standard output: {err}", file=sys.stderr)
            return 1
        except PconvError as err:
            print(f"{name()}: error: {err}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print(f"{name()}: interrupted", file=sys.stderr)
            return 130
        except Terminated as t:
            print(f"{name()}: terminated by {signal.Signals(t.signum).name}", file=sys.stderr)
            return 128 + t.signum
        except Exception as err:  # a bug of ours: one line, exit 1; PCONV_DEBUG=1 shows the traceback
            if os.environ.get("PCONV_DEBUG"):
                raise
            print(f"{name()}: internal error: {type(err).__name__}: {err} "
                  "(rerun with PCONV_DEBUG=1 for details)", file=sys.stderr)
            return 1


if __name__ == "__main__":
    sys.exit(main())
