"""Parsing MLIR text safely: inputs known to crash the upstream parser are refused first."""

from __future__ import annotations

import re

from pconv_mlir.mlir.diagnostics import Diagnostic
from pconv_mlir.mlir.ir import ir

# Upstream MLIR (torch-mlir's and IREE's builds) segfaults instead of reporting an error
# when the custom form of linalg.broadcast / linalg.transpose has a malformed
# `dimensions = [...]` / `permutation = [...]` list (BroadcastOp::parse / TransposeOp::parse
# store the null attribute of the failed parse). Such input is rejected here, before MLIR
# sees it; a well-formed list of i64 literals is left to MLIR.
_PARSER_CRASH = re.compile(r'(?<!")\blinalg\.(broadcast|transpose)\b[^\n"]*?\b(dimensions|permutation)[ \t]*=[ \t]*')
_I64_LIST = re.compile(r"\[[ \t]*(?:(-?\d+)(?:[ \t]*,[ \t]*(-?\d+))*)?[ \t]*\]")
_INT = re.compile(r"-?\d+")


class ParseRejected(Exception):
    """Input refused before MLIR parses it; ``diagnostic`` says where and why."""

    def __init__(self, diagnostic: Diagnostic):
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def known_parser_crash(text: str, offset: int) -> Diagnostic | None:
    for m in _PARSER_CRASH.finditer(text):
        body = _I64_LIST.match(text, m.end())
        if body and all(-2**63 <= int(v) < 2**63 for v in _INT.findall(body.group())):
            continue
        line = offset + text.count("\n", 0, m.end()) + 1
        column = m.end() - (text.rfind("\n", 0, m.end()) + 1) + 1
        return Diagnostic("error", f"expected a list of i64 integers '[...]' after '{m.group(2)} =' of "
                                   f"linalg.{m.group(1)}", line, column)
    return None


# Upstream MLIR also segfaults (printing the verifier's diagnostic) on a tensor.pad whose
# static low/high amounts are near the i64 limits (found by fuzzing; torch-mlir-opt crashes
# too). No real model pads by more than 2^31, so such amounts are refused here.
_PAD_AMOUNTS = re.compile(r"\btensor\.pad\b[^\n]*?\b(low|high)\[([^\]]*)\]")
_PAD_LIMIT = 2**31


def _huge_pad(text: str, offset: int) -> Diagnostic | None:
    for m in _PAD_AMOUNTS.finditer(text):
        if any(abs(int(v)) >= _PAD_LIMIT for v in _INT.findall(m.group(2))):
            line = offset + text.count("\n", 0, m.start(2)) + 1
            column = m.start(2) - (text.rfind("\n", 0, m.start(2)) + 1) + 1
            return Diagnostic("error", f"tensor.pad {m.group(1)} amounts beyond +-2^31 are not supported", line, column)
    return None


def parse_module(text: str, line_offset: int = 0) -> ir.Module:
    """Parse ``text`` in the current context; its first line is line ``line_offset + 1``
    in diagnostics. Raises ParseRejected (known parser crash) or ir.MLIRError."""
    crash = known_parser_crash(text, line_offset) or _huge_pad(text, line_offset)
    if crash is not None:
        raise ParseRejected(crash)
    # The lexer can read past the end of a buffer that stops inside a string literal (a
    # truncated resource blob segfaulted); a trailing newline ends every literal in bounds.
    return ir.Module.parse("\n" * line_offset + text + "\n")
