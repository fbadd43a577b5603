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

from pconv_mlir.errors import PconvCompileError, PconvInputError
from pconv_mlir.fileio import atomic_write, check_output_dir, check_output_paths
from pconv_mlir.mlir.ir import MLIRError, ir
from pconv_mlir.mlir.pipeline import cleanup_pipeline, pconv_pipeline  # noqa: F401 - re-exported

# The compile pipeline is defined once, in pconv_mlir.mlir.pipeline (named there: pconv-opt runs
# it as `-p pconv-pipeline{layout=...},pconv-cleanup{own-dense-convs=...}`).
PCONV_PIPELINE = pconv_pipeline()
CLEANUP_PIPELINE = cleanup_pipeline(own_dense_convs=False)


@dataclasses.dataclass
class ConvReport:
    """How one convolution was compiled."""

    index: int
    kind: str  # linalg op name of the imported conv
    input_shape: list  # ints, "?" for a dynamic dim
    output_shape: list
    lowering: str  # "pattern (...)", "blocks (...)" (1x1) or "dense (reason)"
    storage: dict | None = None  # bytes: dense fp32, bare non-zeros, packed weights, index tables


@dataclasses.dataclass
class CompiledModel:
    """A compiled module with its per-layer report; ``run`` executes it on ``device``."""

    vmfb: bytes
    target: str
    report: list[ConvReport]
    mlir: str
    device: str = "local-task"
    _loaded: Any = dataclasses.field(default=None, repr=False)

    def run(self, *inputs, device: str | None = None, threads: int | None = None, allow_nonfinite: bool = False):
        """Outputs for ``inputs``; Inf/NaN inputs are refused unless ``allow_nonfinite``
        (:func:`pconv_mlir.runtime.check_finite` says why)."""
        from pconv_mlir.runtime import load_module

        if self._loaded is None or device not in (None, self.device):
            self.device = device or self.device
            self._loaded = load_module(self.vmfb, device=self.device, threads=threads)
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


def _collect_lowerings(module: ir.Operation, report: dict) -> None:
    """What the passes recorded: a lowered pconv op's call says how it was lowered (and why)
    and, when packed, its weight storage; a conv never raised keeps its reason and gains the
    form its layout pass chose."""
    from pconv_mlir.dialects.pconv import CONV_INDEX_ATTR, LOWERING_ATTR, STORAGE_ATTR

    def visit(op):
        attrs = op.attributes
        if CONV_INDEX_ATTR in attrs and LOWERING_ATTR in attrs:
            entry = report[ir.IntegerAttr(attrs[CONV_INDEX_ATTR]).value]
            how = ir.StringAttr(attrs[LOWERING_ATTR]).value
            entry.lowering = how if op.name == "func.call" else f"{entry.lowering}, {how}"
            if STORAGE_ATTR in attrs:
                facts = ir.DictAttr(attrs[STORAGE_ATTR])
                entry.storage = {facts[i].name: ir.IntegerAttr(facts[i].attr).value for i in range(len(facts))}
        return ir.WalkResult.ADVANCE

    module.walk(visit)


def _strip_tags(module: ir.Operation) -> None:
    """IREE need not see pconv's bookkeeping attributes (tile hints stay: the handoff to IREE,
    :func:`pconv_mlir.targets.compile_mlir`, turns them into its own or drops them)."""
    from pconv_mlir.dialects.pconv import TILES_ATTR

    def visit(op):
        attrs = op.attributes
        for name in [attrs[i].name for i in range(len(attrs))
                     if attrs[i].name.startswith("pconv.") and attrs[i].name != TILES_ATTR]:
            del attrs[name]
        return ir.WalkResult.ADVANCE

    module.walk(visit)


def run_pconv_passes(mlir_text: str, dense: bool = False, dump_dir: str | None = None,
                     own_dense_convs: bool = False, layout: str = "nchw",
                     trusted: bool = False) -> tuple[str, list[ConvReport]]:
    """Run the pconv pipeline (none with ``dense``); return the lowered text and the report.
    ``own_dense_convs`` (not with ``dense``): the convs left dense become im2col + batched GEMM
    too (``pconv-im2col-dense-convs``), for targets whose IREE conv code is wrong. ``layout``:
    the target's (``Target.layout``); "nhwc" runs the network channels-last. ``trusted``: the
    text is torch-mlir's own output, parsed without the crash check of untrusted input
    (:mod:`pconv_mlir.mlir.parsing`)."""
    from pconv_mlir.dialects.pconv import CONV_INDEX_ATTR, load_pconv_dialect
    from pconv_mlir.mlir.constants import ResourceTable, check_resource_sizes
    from pconv_mlir.mlir.parsing import ParseRejected, parse_module
    from pconv_mlir.mlir.pass_infra import ops_named
    from pconv_mlir.passes.raise_pattern_conv import CONV_OPS, OTHER_CONV_OPS, analyze

    with ir.Context() as ctx:
        load_pconv_dialect(ctx)
        try:
            module = parse_module(mlir_text, trusted=trusted)
        except ParseRejected as rejected:
            d = rejected.diagnostic
            raise PconvCompileError(f"the input is not valid MLIR: {d.line}:{d.column}: {d.message}") from None
        except MLIRError as err:
            raise PconvCompileError("the input is not valid MLIR", str(err)) from None
        resources = ResourceTable(module.operation)
        try:  # a short blob would be read past its end: NaNs or garbage, exit 0
            check_resource_sizes(module.operation, resources)
        except ValueError as err:
            raise PconvCompileError(f"the input is not valid: {err}") from None
        report = {}
        i64 = ir.IntegerType.get_signless(64)
        for i, conv in enumerate(ops_named(module.operation, *CONV_OPS, *OTHER_CONV_OPS)):
            why = "dense build requested" if dense else analyze(conv, resources)
            report[i] = ConvReport(i, conv.name, _shape(conv.operands[0].type), _shape(conv.results[0].type),
                                   f"dense ({why})" if isinstance(why, str) else why.kind)
            conv.attributes[CONV_INDEX_ATTR] = ir.IntegerAttr.get(i64, i)
        if not dense:
            for number, flag in enumerate(pconv_pipeline(layout).split(","), start=1):
                _run_with_repro(flag, module, ctx, dump_dir, number)
                if dump_dir:
                    _dump(dump_dir, f"{number:02d}-{flag}.mlir", str(module))
            _collect_lowerings(module.operation, report)
        _strip_tags(module.operation)
        _run_with_repro(cleanup_pipeline(own_dense_convs and not dense), module, ctx, dump_dir, 99)
        text = str(module)
        if dump_dir:
            _dump(dump_dir, "99-cleanup.mlir", text)
        return text, [report[i] for i in sorted(report)]


def _shape(t: ir.Type) -> list:
    """A tensor type's dims, "?" for a dynamic one (not ShapedType's -2^63 marker)."""
    return ["?" if ir.ShapedType.is_dynamic_size(d) else d for d in ir.RankedTensorType(t).shape]


def _run_with_repro(pipeline: str, module: ir.Module, ctx: ir.Context, dump_dir: str | None, number: int) -> None:
    """Run ``pipeline`` on ``module``. When it fails, the IR it started from goes to a file
    (in ``dump_dir``, else a new temporary folder) and the error names the ``pconv-opt``
    command that reproduces the failure (as torch-mlir's run_pipeline_with_repro_report does)."""
    import shlex
    import tempfile

    from pconv_mlir.mlir.pipeline import build_pass_manager

    pm = build_pass_manager(pipeline, ctx)
    before = module.operation.clone()  # cheap: resource blobs are shared, not copied
    try:
        pm.run(module.operation)
    except Exception as err:
        name = f"repro-{number:02d}-{pipeline.split(',')[0].split('{')[0]}.mlir"
        try:
            folder = dump_dir or tempfile.mkdtemp(prefix="pconv-repro-")
            _dump(folder, name, str(before))
            how = f"reproduce: pconv-opt -p {shlex.quote(pipeline)} {shlex.quote(str(Path(folder) / name))}"
        except Exception as write_err:  # noqa: BLE001 - the pass failure is what to report
            how = f"no reproducer written: {write_err}"
        if isinstance(err, MLIRError):
            raise PconvCompileError(f"pass {pipeline} failed ({how})", str(err)) from None
        raise RuntimeError(f"pass {pipeline} raised {type(err).__name__}: {err} ({how})") from err
    finally:
        before.erase()


def _dump(dump_dir: str | os.PathLike, name: str, text: str) -> None:
    try:
        Path(dump_dir).mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PconvInputError(f"cannot create {dump_dir}: {err.strerror or err}") from None
    atomic_write(Path(dump_dir) / name, text)


def compile(model_or_mlir, example_inputs: Sequence | None = None, target: str = "llvm-cpu", *,
            dense: bool = False, dump_ir: str | None = None, extra_flags: Sequence[str] = ()) -> CompiledModel:
    """Compile a pruned ``nn.Module`` (with ``example_inputs``) or linalg MLIR (text or a
    ``.mlir`` path) for ``target`` (see :mod:`pconv_mlir.targets`). ``dense=True`` skips the
    pconv passes: IREE's own dense compile with the best dense flags, for comparison."""
    from pconv_mlir.targets import compile_mlir, get_target

    check_output_dir("dump_ir", dump_ir)
    trusted = False
    if isinstance(model_or_mlir, (str, os.PathLike)) and str(model_or_mlir).endswith(".mlir"):
        try:
            text = Path(model_or_mlir).read_text(encoding="utf-8")
        except OSError as err:
            raise PconvInputError(f"cannot read {model_or_mlir}: {err.strerror or err}") from None
        except UnicodeDecodeError as err:
            raise PconvInputError(f"cannot read {model_or_mlir}: not UTF-8 text (byte at offset {err.start})") from None
    elif isinstance(model_or_mlir, str):
        text = model_or_mlir
    else:
        if example_inputs is None:
            raise PconvInputError("compiling a model needs example_inputs")
        text = import_model(model_or_mlir, example_inputs)
        trusted = True  # torch-mlir printed it
    t = get_target(target)
    lowered, report = run_pconv_passes(text, dense=dense, dump_dir=dump_ir,
                                       own_dense_convs=t.im2col_dense_convs, layout=t.layout, trusted=trusted)
    vmfb = compile_mlir(lowered, target, extra_flags=get_target(target).dense_flags + tuple(extra_flags))
    return CompiledModel(vmfb, target, report, lowered)
