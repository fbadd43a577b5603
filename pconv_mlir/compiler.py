"""``pconv_mlir.compile``: a PyTorch model or linalg MLIR -> an IREE module, pattern convs fast.

Flow: torch-mlir FX import (linalg on tensors) -> pconv passes (raise, reorder, compact,
eliminate redundant loads, lower) -> inline/canonicalize -> iree-compile for a target.
Every convolution gets a line in ``.report``: lowered as a pattern conv or kept dense, and why.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Sequence

from pconv_mlir.errors import PconvCompileError, PconvInputError
from pconv_mlir.ir import MLIRError, ir

PCONV_PIPELINE = ("pconv-raise-pattern-conv,pconv-reorder-kernels,pconv-compact-weights,"
                  "pconv-eliminate-redundant-loads,pconv-lower-to-linalg")
CLEANUP_PIPELINE = "inline,symbol-dce,canonicalize,cse"
DENSE_FLAGS = ("--iree-global-opt-use-im2col-for-convs",)  # best dense flags measured (architecture.md)


@dataclasses.dataclass
class ConvReport:
    """How one convolution was compiled."""

    index: int
    kind: str  # linalg op name of the imported conv
    input_shape: list[int]
    output_shape: list[int]
    lowering: str  # "pattern (...)" or "dense (reason)"


@dataclasses.dataclass
class CompiledModel:
    """A compiled module with its per-layer report; ``run`` executes it on ``device``."""

    vmfb: bytes
    target: str
    report: list[ConvReport]
    mlir: str
    device: str = "local-task"
    _loaded: Any = dataclasses.field(default=None, repr=False)

    def run(self, *inputs, device: str | None = None, threads: int | None = None):
        from pconv_mlir.runtime import load_module

        if self._loaded is None or device not in (None, self.device):
            self.device = device or self.device
            self._loaded = load_module(self.vmfb, device=self.device, threads=threads)
        outputs = self._loaded.run(*inputs)
        return outputs[0] if len(outputs) == 1 else outputs

    def save(self, path: str | os.PathLike, report_path: str | os.PathLike | None = None) -> None:
        Path(path).write_bytes(self.vmfb)
        if report_path:
            Path(report_path).write_text(json.dumps(self.report_dict(), indent=2) + "\n")

    def report_dict(self) -> dict:
        return {"target": self.target, "convolutions": [dataclasses.asdict(r) for r in self.report]}


def import_model(model, example_inputs: Sequence) -> str:
    """torch-mlir FX import to linalg-on-tensors text."""
    import torch
    from torch_mlir import fx

    model = model.eval()
    with torch.no_grad():
        module = fx.export_and_import(model, *example_inputs, output_type="linalg-on-tensors", func_name="main")
    return str(module)


def run_pconv_passes(mlir_text: str, dense: bool = False, dump_dir: str | None = None) -> tuple[str, list[ConvReport]]:
    """Run the pconv pipeline (or none with ``dense``); returns lowered text and the report."""
    from pconv_mlir.dialects.pconv import load_pconv_dialect
    from pconv_mlir.constants import ResourceTable
    from pconv_mlir.pass_infra import ops_named
    from pconv_mlir.passes.lower_to_linalg import LOWERING_ATTR
    from pconv_mlir.passes.raise_pattern_conv import CONV_OPS, analyze
    from pconv_mlir.pipeline import build_pass_manager

    with ir.Context() as ctx:
        load_pconv_dialect(ctx)
        try:
            module = ir.Module.parse(mlir_text)
        except MLIRError as err:
            raise PconvCompileError("the input is not valid MLIR", str(err)) from None
        resources = ResourceTable(module.operation)
        report = []
        for i, conv in enumerate(ops_named(module.operation, *CONV_OPS)):
            why = "dense build requested" if dense else analyze(conv, resources)
            report.append(ConvReport(i, conv.name, ir.RankedTensorType(conv.operands[0].type).shape,
                                     ir.RankedTensorType(conv.results[0].type).shape,
                                     f"dense ({why})" if isinstance(why, str) else "pattern"))
        if dense:
            return mlir_text, report
        stages = [(name, name) for name in PCONV_PIPELINE.split(",")]
        for index, (label, pipeline) in enumerate(stages):
            try:
                build_pass_manager(pipeline, ctx).run(module.operation)
            except MLIRError as err:
                raise PconvCompileError(f"pass {label} failed", str(err)) from None
            if dump_dir:
                Path(dump_dir).mkdir(parents=True, exist_ok=True)
                (Path(dump_dir) / f"{index + 1:02d}-{label}.mlir").write_text(str(module))
            if label == "pconv-lower-to-linalg":
                lowered = [op.attributes[LOWERING_ATTR].value for op in ops_named(module.operation, "func.call")
                           if LOWERING_ATTR in op.attributes and str(op.attributes["callee"]).startswith("@pconv_conv_")]
                pattern_rows = iter(lowered)
                for entry in report:
                    if entry.lowering == "pattern":
                        entry.lowering = next(pattern_rows, "pattern")
        build_pass_manager(CLEANUP_PIPELINE, ctx).run(module.operation)
        text = str(module)
        if dump_dir:
            (Path(dump_dir) / f"{len(stages) + 1:02d}-cleanup.mlir").write_text(text)
        return text, report


def compile(model_or_mlir, example_inputs: Sequence | None = None, target: str = "llvm-cpu", *,
            dense: bool = False, dump_ir: str | None = None, extra_flags: Sequence[str] = ()) -> CompiledModel:
    """Compile a pruned ``nn.Module`` (with ``example_inputs``) or linalg MLIR (text or a
    ``.mlir`` path) for ``target`` (see :mod:`pconv_mlir.targets`). ``dense=True`` skips the
    pconv passes: IREE's own dense compile with the best dense flags, for comparison."""
    from pconv_mlir.targets import compile_mlir

    if isinstance(model_or_mlir, (str, os.PathLike)) and str(model_or_mlir).endswith(".mlir"):
        try:
            text = Path(model_or_mlir).read_text()
        except OSError as err:
            raise PconvInputError(f"cannot read {model_or_mlir}: {err}") from None
    elif isinstance(model_or_mlir, str):
        text = model_or_mlir
    else:
        if example_inputs is None:
            raise PconvInputError("compiling a model needs example_inputs")
        text = import_model(model_or_mlir, example_inputs)
    lowered, report = run_pconv_passes(text, dense=dense, dump_dir=dump_ir)
    vmfb = compile_mlir(lowered, target, extra_flags=tuple(DENSE_FLAGS) + tuple(extra_flags))
    return CompiledModel(vmfb, target, report, lowered)
