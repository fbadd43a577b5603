"""``pconv_mlir.compile``: a PyTorch model or linalg MLIR -> an IREE module, pattern convs fast.

Flow: torch-mlir FX import (linalg on tensors) -> pconv passes (raise, reorder, compact,
eliminate redundant loads, lower) -> inline/canonicalize -> iree-compile for a target.
Every convolution gets a line in ``.report``: lowered as a pattern conv or kept dense, and why.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pconv_mlir.errors import PconvCompileError, PconvInputError
from pconv_mlir.fileio import atomic_write, check_output_dir, check_output_paths
from pconv_mlir.mlir.ir import MLIRError, ir


def pconv_pipeline(layout: str = "nchw") -> str:
    """The pconv passes for a target whose convolutions run in ``layout`` (``Target.layout``)."""
    passes = ["pconv-raise-pattern-conv", "pconv-reorder-kernels", "pconv-compact-weights",
              "pconv-eliminate-redundant-loads"]
    if layout == "nhwc":
        passes.append("pconv-convert-to-nhwc")
    return ",".join(passes + ["pconv-lower-to-linalg"])


PCONV_PIPELINE = pconv_pipeline()
CLEANUP_PIPELINE = "inline,symbol-dce,pconv-trim-conv-inputs,canonicalize,cse"
# Targets whose IREE conv code is wrong on some shapes (Vulkan): pconv lowers the dense convs too.
OWN_DENSE_CLEANUP_PIPELINE = ("inline,symbol-dce,pconv-trim-conv-inputs,pconv-im2col-dense-convs,inline,"
                              "symbol-dce,canonicalize,cse")


def cleanup_pipeline(own_dense_convs: bool) -> str:
    """The pipeline between the pconv passes and iree-compile (``Target.im2col_dense_convs``)."""
    return OWN_DENSE_CLEANUP_PIPELINE if own_dense_convs else CLEANUP_PIPELINE


@dataclasses.dataclass
class ConvReport:
    """How one convolution was compiled."""

    index: int
    kind: str  # linalg op name of the imported conv
    input_shape: list[int]
    output_shape: list[int]
    lowering: str  # "pattern (...)" or "dense (reason)"
    storage: dict | None = None  # bytes: dense fp32, bare non-zeros, packed weights, index tables
    tuning: dict | None = None  # tuned convs: the choice, predicted and measured ms (pconv_mlir.tuning)


@dataclasses.dataclass
class CompiledModel:
    """A compiled module with its per-layer report; ``run`` executes it on ``device``."""

    vmfb: bytes
    target: str
    report: list[ConvReport]
    mlir: str
    device: str = "local-task"
    _loaded: Any = dataclasses.field(default=None, repr=False)

    def run(self, *inputs, device: str | None = None, threads: int | None = None, allow_nonfinite: bool = False,
            cpu_affinity=None):
        """Outputs for ``inputs``; Inf/NaN inputs are refused unless ``allow_nonfinite``
        (:func:`pconv_mlir.runtime.check_finite` says why). ``threads`` / ``cpu_affinity``
        (CPU ids): local-task's workers (:mod:`pconv_mlir.runtime.topology`)."""
        from pconv_mlir.runtime import load_module

        if self._loaded is None or device not in (None, self.device):
            self.device = device or self.device
            self._loaded = load_module(self.vmfb, device=self.device, threads=threads, cpu_affinity=cpu_affinity)
        outputs = self._loaded.run(*inputs, allow_nonfinite=allow_nonfinite)
        return outputs[0] if len(outputs) == 1 else outputs

    def save(self, path: str | os.PathLike, report_path: str | os.PathLike | None = None) -> None:
        """Write the module (and the report as JSON) atomically: a failed write leaves the old
        files as they were. Both paths are checked before either is written."""
        check_output_paths([("module path", path), ("report path", report_path)])
        atomic_write(path, self.vmfb)
        if report_path:
            atomic_write(report_path, json.dumps(self.report_dict(), indent=2) + "\n")

    def report_dict(self) -> dict:
        return {"target": self.target, "convolutions": [dataclasses.asdict(r) for r in self.report]}


# torch.export traces under a process-wide dispatch mode (one ProxyTorchDispatchMode slot):
# two imports at once in one process fail, so they take turns.
_IMPORT_LOCK = threading.Lock()


def import_model(model, example_inputs: Sequence) -> str:
    """torch-mlir FX import to linalg-on-tensors text (one import at a time per process)."""
    import torch
    from torch_mlir import fx

    model = model.eval()
    try:
        with _IMPORT_LOCK, torch.no_grad():
            module = fx.export_and_import(model, *example_inputs, output_type="linalg-on-tensors", func_name="main")
    except Exception as err:  # torch.export / torch-mlir refuse it (data-dependent control flow, unsupported ops)
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise PconvCompileError(f"cannot import the model to MLIR (torch.export / torch-mlir): "
                                f"{type(err).__name__}: {first}") from None
    return str(module)


INDEX_ATTR = "pconv.conv_index"  # tags each imported conv; passes carry it to what replaces it


def _storage(op: ir.Operation, resources) -> dict:
    """Weight storage of a packed conv: dense fp32, bare non-zeros, packed form (+ tables)."""
    from pconv_mlir.mlir.constants import constant_array

    packed = constant_array(op.operands[1], resources)
    k = ir.RankedTensorType(op.results[0].type).shape[1]
    c = ir.RankedTensorType(op.operands[0].type).shape[1]
    tables = sum(ir.RankedTensorType(op.attributes[n].type).shape[0]
                 * ir.RankedTensorType(op.attributes[n].type).shape[1] for n in ("row_channels", "row_taps"))
    return {"dense_bytes": k * c * 9 * 4, "nonzero_bytes": int(np.count_nonzero(packed)) * 4,
            "packed_bytes": int(packed.size) * 4, "index_bytes": tables * 4}


def _collect_lowerings(module: ir.Operation, report: dict) -> None:
    """What the passes recorded: a lowered pconv op's call says how it was lowered (and why);
    a conv never raised keeps its reason and gains the form its layout pass chose."""
    from pconv_mlir.passes.lower_to_linalg import LOWERING_ATTR

    def visit(op):
        attrs = op.attributes
        if INDEX_ATTR in attrs and LOWERING_ATTR in attrs:
            entry = report[ir.IntegerAttr(attrs[INDEX_ATTR]).value]
            how = ir.StringAttr(attrs[LOWERING_ATTR]).value
            entry.lowering = how if op.name == "func.call" else f"{entry.lowering}, {how}"
        return ir.WalkResult.ADVANCE

    module.walk(visit)


def _strip_tags(module: ir.Operation) -> None:
    """IREE need not see pconv's bookkeeping attributes (tile hints stay: the handoff to IREE,
    :func:`pconv_mlir.targets.compile_mlir`, turns them into its own or drops them)."""
    from pconv_mlir.passes.lower_to_linalg import TILES_ATTR

    def visit(op):
        attrs = op.attributes
        for name in [attrs[i].name for i in range(len(attrs))
                     if attrs[i].name.startswith("pconv.") and attrs[i].name != TILES_ATTR]:
            del attrs[name]
        return ir.WalkResult.ADVANCE

    module.walk(visit)


def run_pconv_passes(mlir_text: str, dense: bool = False, dump_dir: str | None = None,
                     own_dense_convs: bool = False, layout: str = "nchw",
                     before_lowering=None) -> tuple[str, list[ConvReport]]:
    """Run the pconv pipeline (none with ``dense``); return the lowered text and the report.
    ``own_dense_convs`` (not with ``dense``): the convs left dense become im2col + batched GEMM
    too (``pconv-im2col-dense-convs``), for targets whose IREE conv code is wrong. ``layout``:
    the target's (``Target.layout``); "nhwc" runs the network channels-last. ``before_lowering``:
    called on the module just before ``pconv-lower-to-linalg`` (tuning: :mod:`pconv_mlir.tuning`)."""
    from pconv_mlir.dialects.pconv import load_pconv_dialect
    from pconv_mlir.mlir.constants import ResourceTable
    from pconv_mlir.mlir.parsing import ParseRejected, parse_module
    from pconv_mlir.mlir.pass_infra import ops_named
    from pconv_mlir.mlir.pipeline import build_pass_manager
    from pconv_mlir.passes.raise_pattern_conv import CONV_OPS, OTHER_CONV_OPS, analyze

    with ir.Context() as ctx:
        load_pconv_dialect(ctx)
        try:
            module = parse_module(mlir_text)
        except ParseRejected as rejected:
            d = rejected.diagnostic
            raise PconvCompileError(f"the input is not valid MLIR: {d.line}:{d.column}: {d.message}") from None
        except MLIRError as err:
            raise PconvCompileError("the input is not valid MLIR", str(err)) from None
        resources = ResourceTable(module.operation)
        report = {}
        i64 = ir.IntegerType.get_signless(64)
        for i, conv in enumerate(ops_named(module.operation, *CONV_OPS, *OTHER_CONV_OPS)):
            why = "dense build requested" if dense else analyze(conv, resources)
            report[i] = ConvReport(i, conv.name, ir.RankedTensorType(conv.operands[0].type).shape,
                                   ir.RankedTensorType(conv.results[0].type).shape,
                                   f"dense ({why})" if isinstance(why, str) else "pattern")
            conv.attributes[INDEX_ATTR] = ir.IntegerAttr.get(i64, i)
        if not dense:
            for number, flag in enumerate(pconv_pipeline(layout).split(","), start=1):
                if flag == "pconv-lower-to-linalg":
                    for op in ops_named(module.operation, "pconv.packed_conv2d"):
                        report[ir.IntegerAttr(op.attributes[INDEX_ATTR]).value].storage = _storage(op, resources)
                    if before_lowering is not None:
                        before_lowering(module.operation)
                try:
                    build_pass_manager(flag, ctx).run(module.operation)
                except MLIRError as err:
                    raise PconvCompileError(f"pass {flag} failed", str(err)) from None
                if dump_dir:
                    _dump(dump_dir, f"{number:02d}-{flag}.mlir", str(module))
            _collect_lowerings(module.operation, report)
        _strip_tags(module.operation)
        build_pass_manager(cleanup_pipeline(own_dense_convs and not dense), ctx).run(module.operation)
        text = str(module)
        if dump_dir:
            _dump(dump_dir, "99-cleanup.mlir", text)
        return text, [report[i] for i in sorted(report)]


def _dump(dump_dir: str | os.PathLike, name: str, text: str) -> None:
    try:
        Path(dump_dir).mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PconvInputError(f"cannot create {dump_dir}: {err.strerror or err}") from None
    atomic_write(Path(dump_dir) / name, text)


def compile(model_or_mlir, example_inputs: Sequence | None = None, target: str = "llvm-cpu", *,
            dense: bool = False, dump_ir: str | None = None, extra_flags: Sequence[str] = (),
            tuning=None) -> CompiledModel:
    """Compile a pruned ``nn.Module`` (with ``example_inputs``) or linalg MLIR (text or a
    ``.mlir`` path) for ``target`` (see :mod:`pconv_mlir.targets`). ``dense=True`` skips the
    pconv passes: IREE's own dense compile with the best dense flags, for comparison.
    ``tuning``: a tuning file from ``pconv tune`` (path or its dict; :mod:`pconv_mlir.tuning`)."""
    from pconv_mlir.targets import compile_mlir, get_target

    check_output_dir("dump_ir", dump_ir)
    t = get_target(target)
    tuned = None
    if tuning is not None and not dense:  # a bad tuning file fails before the (long) import
        from pconv_mlir.tuning.apply import TuningApplier

        tuned = TuningApplier(tuning, t.name)
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
    lowered, report = run_pconv_passes(text, dense=dense, dump_dir=dump_ir,
                                       own_dense_convs=t.im2col_dense_convs, layout=t.layout, before_lowering=tuned)
    if tuned is not None:
        tuned.annotate(report)
    vmfb = compile_mlir(lowered, target, extra_flags=get_target(target).dense_flags + tuple(extra_flags))
    return CompiledModel(vmfb, target, report, lowered)
