"""Parsing MLIR text that may crash the upstream parser.

Upstream MLIR (the torch-mlir and IREE builds) does not always answer bad input with a
diagnostic: a malformed ``dimensions`` list of linalg.broadcast segfaults its custom parser,
attributes nested 10,000 deep overflow the stack, a resource blob with alignment 0 aborts
("LLVM ERROR: out of memory"), a tensor.pad whose amounts overflow i64 segfaults the verifier.
A crash cannot be caught in-process, and no text filter tells all of them from valid MLIR.

So untrusted text is parsed (and verified, and printed) first in a child process, which has
nothing to lose: when the child finishes, whatever it found, the same deterministic parse is
safe in this process; when it dies, the input is refused with a located error, the shortest
crashing prefix of the text found by bisection. One bug class is undefined behaviour rather
than a sure crash (a -2^63 "dynamic" marker in a static list with no operand for it: the
printer reads past the operands), so it is checked on the IR itself, in both processes.
Text that pconv printed itself (torch-mlir's import, pconv's templates) is trusted and
parsed directly.

The child is a ``fork`` of this process (about 20 ms). Beside other Python threads a fork is
less certain (:func:`_child_parse`): a crash there is confirmed in a fresh interpreter (about
a second), so that valid input is never refused for another thread's state.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading

from pconv_mlir.mlir.diagnostics import Diagnostic
from pconv_mlir.mlir.ir import ir

#: Most child parses spent on locating a crash (each parses a prefix of the text).
MAX_LOCATE_PROBES = 48
_STDERR_KEEP = 4096


class ParseRejected(Exception):
    """Input refused before MLIR parses it in-process; ``diagnostic`` says where and why."""

    def __init__(self, diagnostic: Diagnostic):
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def _framed(text: str, line_offset: int) -> str:
    # The lexer can read past the end of a buffer that stops inside a string literal (a
    # truncated resource blob segfaulted); a trailing newline ends every literal in bounds.
    return "\n" * line_offset + text + "\n"


class _Discard:
    def write(self, text) -> int:
        return len(text)


_DYNAMIC = -2**63  # ShapedType::kDynamic
_LOC = re.compile(r":(\d+):(\d+)")


def dynamic_marker_misuse(module_op: ir.Operation) -> Diagnostic | None:
    """An op whose ``static_*`` list (tensor.pad low/high, slice offsets, ...) holds more
    -2^63 entries, the "dynamic" marker, than it has index operands to stand for them. The
    verifier accepts it; printing or folding it reads an operand that is not there, a crash
    or garbage (undefined behaviour: a child's parse cannot be trusted to catch it)."""
    found: list[Diagnostic] = []

    def visit(op):
        attrs = op.attributes
        markers = [attrs[i].name for i in range(len(attrs)) if attrs[i].name.startswith("static_")
                   and isinstance(attrs[i].attr, ir.DenseI64ArrayAttr)
                   and _DYNAMIC in list(ir.DenseI64ArrayAttr(attrs[i].attr))]
        if markers:
            count = sum(list(ir.DenseI64ArrayAttr(attrs[n])).count(_DYNAMIC) for n in markers)
            if count > sum(isinstance(v.type, ir.IndexType) for v in op.operands):
                m = _LOC.search(str(op.location))
                found.append(Diagnostic("error", f"{op.name}: {markers[0]} holds -9223372036854775808 (the "
                                                 "'dynamic' marker) with no operand for it",
                                        int(m.group(1)) if m else None, int(m.group(2)) if m else None))
                return ir.WalkResult.INTERRUPT
        return ir.WalkResult.ADVANCE

    module_op.walk(visit)
    return found[0] if found else None


def _parse_discarding_errors(text: str, allow_unregistered: bool) -> None:
    """What the child does: parse ``text`` in a fresh context like the caller's (errors are
    fine), then print it: the printer crashes on some IR the verifier accepts (a tensor.pad
    amount of -2^63, the "dynamic" marker, with no operand for it). Big constants are elided."""
    from pconv_mlir.dialects.pconv import load_pconv_dialect

    with ir.Context() as ctx:
        ctx.allow_unregistered_dialects = allow_unregistered
        load_pconv_dialect(ctx)
        try:
            module = ir.Module.parse(text)
        except ir.MLIRError:
            return
        if dynamic_marker_misuse(module.operation) is not None:  # the parent refuses it
            return
        module.operation.print(large_elements_limit=16, large_resource_limit=64, file=_Discard())


def _child_main() -> None:
    """Entry of the spawned child: flag byte + MLIR text on stdin; exit 0 unless MLIR crashes."""
    data = sys.stdin.buffer.read()
    _parse_discarding_errors(data[1:].decode(), data[:1] == b"1")


def _describe(status: int, stderr: bytes) -> str:
    """``status``: a signal number (> 0) or a non-zero exit code (< 0) of the child."""
    lines = [line.strip() for line in stderr.decode(errors="replace").splitlines() if line.strip()]
    said = next((line for line in lines if "ERROR" in line or "error" in line), lines[0] if lines else "")
    if status > 0:
        try:
            how = f"crashed ({signal.Signals(status).name})"
        except ValueError:
            how = f"crashed (signal {status})"
    else:
        how = f"failed (exit code {-status})"
    return how + (f": {said[:200]}" if said else "")


def _run_forked(text: str, allow_unregistered: bool, timeout: float | None = None) -> tuple[int, bytes] | None:
    """(status, stderr) of a forked child parsing ``text``; None when it ran past ``timeout``."""
    import select
    import time

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: only os._exit leaves this block
        code = 0
        try:
            os.close(read_end)
            for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # the parent handles these
                signal.signal(s, signal.SIG_DFL)
            import faulthandler

            faulthandler.disable()  # a crash must stay a signal, not a Python traceback
            null = os.open(os.devnull, os.O_RDWR)
            os.dup2(null, 0)
            os.dup2(null, 1)
            os.dup2(write_end, 2)
            _parse_discarding_errors(text, allow_unregistered)
        except BaseException:
            code = 70
        os._exit(code)
    os.close(write_end)
    kept = b""
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        with os.fdopen(read_end, "rb", buffering=0) as pipe:
            while True:
                wait = None if deadline is None else max(0.0, deadline - time.monotonic())
                if not select.select([pipe], [], [], wait)[0]:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    return None
                chunk = pipe.read(65536)
                if not chunk:
                    break
                kept = (kept + chunk)[:_STDERR_KEEP]
        _, status = os.waitpid(pid, 0)
    except BaseException:  # Ctrl-C, SIGTERM: the child goes too
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        raise
    if os.WIFSIGNALED(status):
        return os.WTERMSIG(status), kept
    return -os.WEXITSTATUS(status), kept


def _run_spawned(text: str, allow_unregistered: bool) -> tuple[int, bytes]:
    proc = subprocess.run([sys.executable, "-c", "from pconv_mlir.mlir.parsing import _child_main; _child_main()"],
                          input=(b"1" if allow_unregistered else b"0") + text.encode(),
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return -proc.returncode, proc.stderr[:_STDERR_KEEP]


def _child_parse(text: str, allow_unregistered: bool, confirm: bool = True) -> tuple[int, bytes] | None:
    """None when a child parses ``text`` to the end (with or without errors); else how MLIR
    died: a signal number (> 0) or minus its exit code, and the start of its stderr.

    A fork is the child. Beside other threads, a fork may inherit a lock one of them holds
    (the child would hang: a timeout ends it) or data one of them is changing; so there, a
    crash is confirmed (``confirm``) and a hang redone in a fresh interpreter."""
    others = threading.active_count() > 1
    result = None
    if hasattr(os, "fork"):
        result = _run_forked(text, allow_unregistered, timeout=30 + len(text) / 1e6 if others else None)
        if result is not None and others and confirm and _died(*result):
            result = None
    if result is None:
        result = _run_spawned(text, allow_unregistered)
    status, stderr = result
    if status in (signal.SIGINT, -(128 + signal.SIGINT)):
        raise KeyboardInterrupt
    return result if _died(status, stderr) else None


def _died(status: int, stderr: bytes) -> bool:
    # A signal, or LLVM's report_fatal_error (exit 1): MLIR gave up. Any other exit code is the
    # child's own failure, which says nothing about the text: it is parsed here as if checked.
    return status > 0 or b"LLVM ERROR" in stderr


def _locate(text: str, line_offset: int, allow_unregistered: bool) -> tuple[int, int]:
    """(line, column), 1-based in the file, where the text first crashes the parser: the prefix
    ending there crashes it and the prefix before it does not (bisection, by lines then columns)."""
    lines = text.splitlines(keepends=True)
    probes = 0

    def crashes(prefix: str) -> bool:
        nonlocal probes
        probes += 1
        return _child_parse(_framed(prefix, line_offset), allow_unregistered, confirm=False) is not None

    lo, hi = 0, len(lines)  # prefix of lo lines parses; of hi lines crashes
    while hi - lo > 1 and probes < MAX_LOCATE_PROBES:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if crashes("".join(lines[:mid])) else (mid, hi)
    head, line = "".join(lines[:hi - 1]), lines[hi - 1] if lines else ""
    lo_c, hi_c = 0, len(line.rstrip("\n")) or 1  # prefix of the line up to column hi_c crashes
    while hi_c - lo_c > 1 and probes < MAX_LOCATE_PROBES:
        mid = (lo_c + hi_c) // 2
        lo_c, hi_c = (lo_c, mid) if crashes(head + line[:mid]) else (mid, hi_c)
    return line_offset + max(hi, 1), hi_c


def crash_check(text: str, line_offset: int = 0, allow_unregistered: bool = False) -> Diagnostic | None:
    """None when MLIR parses and verifies ``text`` without crashing (it may still be invalid);
    else an error located where the shortest crashing prefix of ``text`` ends."""
    crashed = _child_parse(_framed(text, line_offset), allow_unregistered)
    if crashed is None:
        return None
    line, column = _locate(text, line_offset, allow_unregistered)
    return Diagnostic("error", f"MLIR {_describe(*crashed)} reading the input up to here (an upstream MLIR bug); "
                               "the input is refused", line, column)


def parse_module(text: str, line_offset: int = 0, *, trusted: bool = False) -> ir.Module:
    """Parse ``text`` in the current context; its first line is line ``line_offset + 1``
    in diagnostics. Untrusted text (the default) is parsed in a child process first.
    Raises ParseRejected (the parser crashes on it) or ir.MLIRError (invalid MLIR)."""
    if not trusted:
        crash = crash_check(text, line_offset, ir.Context.current.allow_unregistered_dialects)
        if crash is not None:
            raise ParseRejected(crash)
    module = ir.Module.parse(_framed(text, line_offset))
    misuse = dynamic_marker_misuse(module.operation)
    if misuse is not None:
        raise ParseRejected(misuse)
    return module
