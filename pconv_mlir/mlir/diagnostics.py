"""Collecting MLIR diagnostics, printing them like mlir-opt, and --verify-diagnostics."""

from __future__ import annotations

import dataclasses
import re
import sys

from pconv_mlir.mlir.ir import ir

_LOC = re.compile(r'loc\("[^"]*":(\d+):(\d+)\)')
_EXPECTED = re.compile(r"//\s*expected-(error|warning|remark|note)\s*(@(above|below|[+-]\d+))?\s*\{\{(.*)\}\}")
_SEVERITY = {
    ir.DiagnosticSeverity.ERROR: "error", ir.DiagnosticSeverity.WARNING: "warning",
    ir.DiagnosticSeverity.REMARK: "remark", ir.DiagnosticSeverity.NOTE: "note",
}


@dataclasses.dataclass
class Diagnostic:
    severity: str
    message: str
    line: int | None
    column: int | None


def _from_mlir(diag) -> list[Diagnostic]:
    m = _LOC.search(str(diag.location))
    line, col = (int(m.group(1)), int(m.group(2))) if m else (None, None)
    out = [Diagnostic(_SEVERITY.get(diag.severity, "error"), diag.message, line, col)]
    for note in diag.notes:
        out.extend(_from_mlir(note))
    return out


class DiagnosticCollector:
    """Captures every diagnostic of a context: those MLIR hands to handlers (warnings,
    remarks) and those an MLIRError carries (parse, verification and pass failures)."""

    def __init__(self, context: ir.Context):
        self.diagnostics: list[Diagnostic] = []

        def handler(diag) -> bool:
            self.diagnostics.extend(_from_mlir(diag))
            return True

        context.attach_diagnostic_handler(handler)

    def add_error(self, err: ir.MLIRError) -> None:
        if not err.error_diagnostics:
            self.diagnostics.append(Diagnostic("error", err.message or str(err), None, None))
        for diag in err.error_diagnostics:
            self.diagnostics.extend(_from_mlir(diag))


def format_diagnostic(diag: Diagnostic, filename: str) -> str:
    where = f"{filename}:{diag.line}:{diag.column}" if diag.line is not None else filename
    return f"{where}: {diag.severity}: {diag.message}"


def check_expected(chunk: str, offset: int, emitted: list[Diagnostic], filename: str) -> bool:
    """mlir-opt's --verify-diagnostics: every expected-* comment is matched by an emitted
    diagnostic on its line (message contains the text) and nothing else is emitted."""
    expected = []
    for index, line in enumerate(chunk.splitlines()):
        number = offset + index + 1
        for m in _EXPECTED.finditer(line):
            where = m.group(3)
            target = number
            if where == "above":
                target = number - 1
            elif where == "below":
                target = number + 1
            elif where:
                target = number + int(where)
            expected.append([m.group(1), m.group(4).strip(), target, number, False])
    ok = True
    for diag in emitted:
        hit = next((e for e in expected if not e[4] and e[0] == diag.severity and e[2] == diag.line
                    and e[1] in diag.message), None)
        if hit:
            hit[4] = True
        else:
            ok = False
            print(f"{format_diagnostic(diag, filename)}\n{filename}:{diag.line}: error: unexpected {diag.severity}: "
                  f"{diag.message}", file=sys.stderr)
    for severity, text, target, number, seen in expected:
        if not seen:
            ok = False
            print(f"{filename}:{number}: error: expected {severity} \"{text}\" was not produced on line {target}",
                  file=sys.stderr)
    return ok
