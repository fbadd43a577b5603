"""Textual pass pipelines mixing pconv passes (Python) and upstream MLIR passes.

``pconv-raise-pattern-conv,canonicalize,pconv-x{opt=1},func.func(cse)``: top-level
elements are split on commas outside braces and parentheses; names in the pconv registry
become Python passes with their options, anything else is handed to MLIR's own pipeline
parser (``PassManager.add``), which reports unknown passes itself.
"""

from __future__ import annotations

import re

from pconv_mlir.mlir.ir import PassManager
from pconv_mlir.mlir.pass_infra import PassOptionError
from pconv_mlir.passes import PASSES, pass_class

_OPTION = re.compile(r"\s*([A-Za-z0-9_-]+)\s*=\s*(\"[^\"]*\"|[^\s\"]+)\s*")


class PipelineError(ValueError):
    """A pipeline string that cannot be parsed or names an unknown pass or option."""


def split_top_level(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "({":
            depth += 1
        elif ch in ")}":
            depth -= 1
            if depth < 0:
                raise PipelineError(f"unbalanced '{ch}' in pipeline '{text}'")
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth:
        raise PipelineError(f"unbalanced brackets in pipeline '{text}'")
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def parse_options(text: str) -> dict[str, str]:
    options, pos = {}, 0
    while pos < len(text):
        m = _OPTION.match(text, pos)
        if not m:
            raise PipelineError(f"cannot parse pass options '{text}'")
        options[m.group(1)] = m.group(2).strip('"')
        pos = m.end()
    return options


def build_pass_manager(pipeline: str, context) -> PassManager:
    """A PassManager on ``builtin.module`` running ``pipeline``."""
    pm = PassManager("builtin.module", context)
    for element in split_top_level(pipeline):
        name, _, rest = element.partition("{")
        name = name.strip()
        if name in PASSES:
            if rest and not rest.endswith("}"):
                raise PipelineError(f"malformed options in '{element}'")
            try:
                pass_class(name).from_options(parse_options(rest[:-1] if rest else "")).add_to(pm)
            except PassOptionError as err:
                raise PipelineError(str(err)) from None
        elif name.startswith("pconv-"):
            raise PipelineError(f"unknown pass '{name}' (pconv passes: {', '.join(PASSES)})")
        else:
            try:
                pm.add(element)
            except ValueError as err:
                raise PipelineError(f"invalid pipeline element '{element}': {err}") from None
    return pm
