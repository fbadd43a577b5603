"""pconv-opt: the mlir-opt of pconv-mlir.

Reads MLIR (a file or stdin), runs a pipeline of pconv and upstream passes, writes the
result (stdout or ``-o``, replaced atomically and only on success). Diagnostics print as
``file:line:col: error: message`` and make the exit code 1; a Python traceback is never the
answer to bad input. Input that crashes the upstream MLIR parser is refused with a located
error (:mod:`pconv_mlir.mlir.parsing`). Ctrl-C, SIGTERM and SIGHUP: one line, exit 128 + signal.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from pconv_mlir.errors import PconvError
from pconv_mlir.mlir.diagnostics import DiagnosticCollector, check_expected, format_diagnostic
from pconv_mlir.mlir.ir import MLIRError, ir
from pconv_mlir.mlir.parsing import ParseRejected, parse_module
from pconv_mlir.mlir.pipeline import NAMED_PIPELINES, PipelineError, build_pass_manager
from pconv_mlir.passes import PASSES, pass_class

SPLIT_MARKER = "// -----"


def _pass_list() -> str:
    lines = ["pconv passes (-p NAME{option=value ...}):"]
    for flag in PASSES:
        cls = pass_class(flag)
        lines.append(f"  {flag:<34} {cls.summary}")
        lines += [f"  {'':<36}{opt}" for opt in cls.option_help()]
    lines.append("Named pipelines (what `pconv compile` runs):")
    for name, (summary, options, _) in NAMED_PIPELINES.items():
        lines.append(f"  {name:<34} {summary}")
        lines += [f"  {'':<36}{opt}={default}  {text}" for opt, (default, text) in options.items()]
    lines.append("Upstream MLIR passes (canonicalize, cse, inline, symbol-dce, func.func(...), ...) mix freely.")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pconv-opt", description="Run pconv and MLIR passes over an MLIR file.",
        epilog=_pass_list(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", nargs="?", default="-", help="input .mlir file ('-' or none: stdin)")
    p.add_argument("-o", dest="output", default="-", help="output file (default: stdout)")
    p.add_argument("-p", "--pass-pipeline", default="", help="comma-separated pass pipeline")
    p.add_argument("--split-input-file", action="store_true",
                   help=f"split the input on '{SPLIT_MARKER}' lines and process each chunk alone")
    p.add_argument("--verify-diagnostics", action="store_true",
                   help="check emitted diagnostics against expected-error/warning/remark comments")
    p.add_argument("--mlir-print-ir-after-all", action="store_true", help="print the IR after every pass (stderr)")
    return p


def _chunks(text: str, split: bool) -> list[tuple[str, int]]:
    """(chunk text, line offset) pairs; offsets keep diagnostics on the file's own lines."""
    if not split:
        return [(text, 0)]
    chunks, current, start = [], [], 0
    for number, line in enumerate(text.splitlines(keepends=True)):
        if line.strip() == SPLIT_MARKER:
            chunks.append(("".join(current), start))
            current, start = [], number + 1
        else:
            current.append(line)
    chunks.append(("".join(current), start))
    return chunks


def _process(chunk: str, offset: int, args, filename: str, out: list[str]) -> bool:
    """Parse, run and print one chunk; return False on failure (diagnostics reported)."""
    from pconv_mlir.dialects.pconv import load_pconv_dialect

    with ir.Context() as ctx:
        load_pconv_dialect(ctx)
        collector = DiagnosticCollector(ctx)
        module = None
        try:
            module = parse_module(chunk, offset)
            if args.pass_pipeline:
                pm = build_pass_manager(args.pass_pipeline, ctx)
                if args.mlir_print_ir_after_all:
                    pm.enable_ir_printing(print_after_all=True)
                pm.run(module.operation)
        except ParseRejected as rejected:
            collector.diagnostics.append(rejected.diagnostic)
        except MLIRError as err:
            collector.add_error(err)
            module = None
        if args.verify_diagnostics:
            return check_expected(chunk, offset, collector.diagnostics, filename)
        for diag in collector.diagnostics:
            print(format_diagnostic(diag, filename), file=sys.stderr)
        if module is None:
            return False
        out.append(str(module))
        return True


def main(argv: list[str] | None = None) -> int:
    from pconv_mlir.cli.main import StdoutError, Terminated, _open_closed_std_fds, _signals_and_stdout

    _open_closed_std_fds()  # a closed stdin, stdout or stderr acts as /dev/null
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")
    with _signals_and_stdout():
        try:
            return _main(argv)
        except KeyboardInterrupt:
            print("pconv-opt: interrupted", file=sys.stderr)
            return 128 + signal.SIGINT
        except Terminated as t:
            print(f"pconv-opt: terminated by {signal.Signals(t.signum).name}", file=sys.stderr)
            return 128 + t.signum
        except StdoutError as err:
            print(f"pconv-opt: cannot write to standard output: {err}", file=sys.stderr)
            return 1
        except PconvError as err:
            print(f"pconv-opt: {err}", file=sys.stderr)
            return 1
        except Exception as err:  # a bug of ours: still one line and exit 1; PCONV_DEBUG=1 shows it
            if os.environ.get("PCONV_DEBUG"):
                raise
            print(f"pconv-opt: internal error: {type(err).__name__}: {err} (rerun with PCONV_DEBUG=1 for details)",
                  file=sys.stderr)
            return 1


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read() if sys.stdin is not None else ""
    with open(path, "rb") as f:
        data = f.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise PconvError(f"cannot read '{path}': not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start})"
                         ) from None


def _main(argv: list[str] | None) -> int:
    from pconv_mlir.fileio import atomic_write, check_output_paths

    args = _parser().parse_args(argv)
    filename = "<stdin>" if args.input == "-" else args.input
    if args.output != "-" and not args.verify_diagnostics:  # before the work; never the input
        check_output_paths([("-o", args.output)], inputs=[] if args.input == "-" else [args.input])
    try:
        text = _read(args.input)
    except (OSError, UnicodeDecodeError) as err:
        print(f"pconv-opt: cannot read '{filename}': {getattr(err, 'strerror', None) or err}", file=sys.stderr)
        return 1
    if args.pass_pipeline:
        try:  # reject a bad pipeline once, before any input is processed
            with ir.Context() as ctx:
                build_pass_manager(args.pass_pipeline, ctx)
        except PipelineError as err:
            print(f"pconv-opt: {err}", file=sys.stderr)
            return 1
    outputs: list[str] = []
    ok = True
    for chunk, offset in _chunks(text, args.split_input_file):
        ok &= _process(chunk, offset, args, filename, outputs)
    if not args.verify_diagnostics:
        result = f"\n{SPLIT_MARKER}\n".join(o.rstrip("\n") for o in outputs) + ("\n" if outputs else "")
        if args.output == "-":
            if sys.stdout is None:  # closed when Python started: as /dev/null
                return 0 if ok else 1
            sys.stdout.write(result)
            sys.stdout.flush()
        elif ok:  # a failed run leaves the old output file as it was
            atomic_write(args.output, result)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
