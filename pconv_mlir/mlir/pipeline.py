"""Textual pass pipelines mixing pconv passes (Python) and upstream MLIR passes.

``pconv-raise-pattern-conv,canonicalize,pconv-x{opt=1},func.func(cse)``: top-level
elements are split on commas outside braces and parentheses; names in the pconv registry
become Python passes with their options, names in :data:`NAMED_PIPELINES` expand to their
passes, anything else is handed to MLIR's own pipeline parser (``PassManager.add``), which
reports unknown passes itself.

The named pipelines are the compile pipeline, defined once here: ``pconv_mlir.compile`` runs
``pconv-pipeline{layout=...}`` then ``pconv-cleanup{own-dense-convs=...}`` (the target says
which), and ``pconv-opt -p pconv-pipeline`` runs the same passes.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile

from pconv_mlir.lowering.pattern_conv import PRECISIONS
from pconv_mlir.mlir.ir import PassManager, ir
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


def pconv_pipeline(layout: str = "nchw", precision: str = "fp32") -> str:
    """The pconv passes for a target whose convolutions run in ``layout`` (``Target.layout``),
    the pattern GEMMs in ``precision`` (:data:`PRECISIONS`)."""
    if layout not in ("nchw", "nhwc"):
        raise PipelineError(f"layout must be nchw or nhwc, got '{layout}'")
    if precision not in PRECISIONS:
        raise PipelineError(f"precision must be one of {', '.join(PRECISIONS)}, got '{precision}'")
    passes = ["pconv-eliminate-dead-channels", "pconv-raise-pattern-conv", "pconv-reorder-kernels",
              "pconv-compact-weights", "pconv-eliminate-redundant-loads"]
    if layout == "nhwc":
        passes.append("pconv-convert-to-nhwc")
    lower = "pconv-lower-to-linalg" if precision == "fp32" else f"pconv-lower-to-linalg{{precision={precision}}}"
    return ",".join(passes + [lower])


def cleanup_pipeline(own_dense_convs: bool = False) -> str:
    """The passes between the pconv passes and iree-compile; ``own_dense_convs``: the convs left
    dense become im2col + batched GEMM too (``Target.im2col_dense_convs``)."""
    if own_dense_convs:
        return "inline,symbol-dce,pconv-trim-conv-inputs,pconv-im2col-dense-convs,inline,symbol-dce,canonicalize,cse"
    return "inline,symbol-dce,pconv-trim-conv-inputs,canonicalize,cse"


def _flag(text: str) -> bool:
    if text.lower() in ("1", "true"):
        return True
    if text.lower() in ("0", "false"):
        return False
    raise PassOptionError(f"expects true or false, got '{text}'")


#: name -> (summary, {option: (default, help)}, expansion from the option strings).
NAMED_PIPELINES = {
    "pconv-pipeline": ("The pconv passes of `pconv compile` (raise, reorder, compact, merge loads, lower)",
                       {"layout": ("nchw", "nchw, or nhwc: run the network channels-last (the CPU targets)"),
                        "precision": ("fp32", "fp32, fp16-storage or fp16: the pattern GEMMs' precision")},
                       lambda o: pconv_pipeline(o["layout"], o["precision"])),
    "pconv-cleanup": ("What `pconv compile` runs after the pconv passes, before iree-compile",
                      {"own-dense-convs": ("false", "dense convs become im2col + batched GEMM too (Vulkan targets)")},
                      lambda o: cleanup_pipeline(_flag(o["own-dense-convs"]))),
}


def _expand_named(name: str, options: dict[str, str]) -> str:
    summary, known, expand = NAMED_PIPELINES[name]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise PipelineError(f"pipeline '{name}' has no option '{unknown[0]}' (options: {', '.join(known)})")
    try:
        return expand({k: options.get(k, default) for k, (default, _) in known.items()})
    except PassOptionError as err:
        raise PipelineError(f"pipeline '{name}': {err}") from None


@contextlib.contextmanager
def _stderr_captured(sink: list[str]):
    """File descriptor 2 goes to a temporary file for the block; its text lands in ``sink``.
    MLIR reports some pipeline errors (an inliner ``default-pipeline`` it cannot parse) only
    by printing them, and then carries on."""
    if sys.stderr is not None:
        sys.stderr.flush()
    with tempfile.TemporaryFile() as tmp:
        try:
            saved = os.dup(2)
        except OSError:  # no standard error to capture
            yield
            return
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            sink.append(tmp.read().decode(errors="replace"))


def _add_upstream(pm: PassManager, element: str, context) -> None:
    try:
        pm.add(element)
    except ValueError as err:
        raise PipelineError(f"invalid pipeline element '{element}': {err}") from None
    if "{" not in element:
        return
    # Options are checked by running the element alone on an empty module, stderr captured
    # (only then: fd 2 is the whole process's, other threads' too).
    printed: list[str] = []
    probe = PassManager("builtin.module", context)
    probe.add(element)
    with context, ir.Location.unknown(), _stderr_captured(printed), contextlib.suppress(ir.MLIRError):
        probe.run(ir.Module.parse("func.func @f() {\n  return\n}").operation)
    said = [line for line in "".join(printed).splitlines() if "error" in line]
    if said:
        raise PipelineError(f"invalid pipeline element '{element}': {said[0].strip()}")


def build_pass_manager(pipeline: str, context) -> PassManager:
    """A PassManager on ``builtin.module`` running ``pipeline``."""
    pm = PassManager("builtin.module", context)
    _add_elements(pm, pipeline, context)
    return pm


def _add_elements(pm: PassManager, pipeline: str, context) -> None:
    for element in split_top_level(pipeline):
        name, _, rest = element.partition("{")
        name = name.strip()
        if rest and not rest.endswith("}"):
            if name in PASSES or name in NAMED_PIPELINES:
                raise PipelineError(f"malformed options in '{element}'")
        if name in NAMED_PIPELINES:
            _add_elements(pm, _expand_named(name, parse_options(rest[:-1] if rest else "")), context)
        elif name in PASSES:
            try:
                pass_class(name).from_options(parse_options(rest[:-1] if rest else "")).add_to(pm)
            except PassOptionError as err:
                raise PipelineError(str(err)) from None
        elif name.startswith("pconv-"):
            raise PipelineError(f"unknown pass '{name}' (pconv passes and pipelines: "
                                f"{', '.join([*PASSES, *NAMED_PIPELINES])})")
        else:
            _add_upstream(pm, element, context)
