"""``pconv_mlir.compile``: a PyTorch model or linalg MLIR -> an IREE module, pattern convs fast.

Flow: torch-mlir FX import (linalg on tensors) -> pconv passes (raise, reorder, compact,
eliminate redundant loads, lower) -> inline/canonicalize -> iree-compile for a target.
Every convolution gets a line in ``.report``: lowered as a pattern conv or kept dense, and why.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import threading
import warnings
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
    tuning: dict | None = None  # tuned convs: the choice, predicted and measured ms (pconv_mlir.tuning)
    precision: str = "fp32"  # the conv's GEMM: fp32, fp16-storage or fp16 (dense and depthwise: fp32)
    dead_channels: list = dataclasses.field(default_factory=list)  # what pconv-eliminate-dead-channels cut


@dataclasses.dataclass(repr=False)
class CompiledModel:
    """A compiled module with its per-layer report; ``run`` executes it on ``device`` (None:
    the device of its target, ``vulkan`` for the Vulkan targets, else ``local-task``).
    ``mlir`` is the IR handed to iree-compile (None for a module read by :func:`load`)."""

    vmfb: bytes
    target: str | None
    report: list[ConvReport]
    mlir: str | None
    device: str | None = None
    _loaded: Any = dataclasses.field(default=None, repr=False)

    def __repr__(self) -> str:
        pattern = sum(r.lowering.startswith("pattern") for r in self.report)
        loaded = f", loaded on {self._loaded.device}" if self._loaded is not None else ""
        return (f"CompiledModel(target={self.target!r}, {len(self.report)} convs: {pattern} pattern, "
                f"{len(self.report) - pattern} dense, module {len(self.vmfb):,} bytes{loaded})")

    def run(self, *inputs, device: str | None = None, threads: int | None = None, allow_nonfinite: bool = False,
            cpu_affinity=None):
        """Outputs for ``inputs``: one numpy array, or a list for several outputs. Inf/NaN inputs
        are refused unless ``allow_nonfinite`` (:func:`pconv_mlir.runtime.check_finite` says why).
        The module is loaded on the first call; a later ``device`` or ``threads`` that differs
        from the loaded one loads it again, or raises PconvRuntimeError where that cannot be
        done in this process (IREE fixes the local-task thread count once per process).
        ``cpu_affinity`` (CPU ids): pins local-task's workers (:mod:`pconv_mlir.runtime.topology`)."""
        from pconv_mlir.runtime import load_module

        loaded = self._loaded
        if (loaded is None or device not in (None, loaded.device)
                or (threads is not None and threads != loaded.threads) or cpu_affinity is not None):
            want = device or self.device or (loaded.device if loaded is not None else None)
            self._loaded = load_module(self.vmfb, device=want, threads=threads, cpu_affinity=cpu_affinity)
            self.device = self._loaded.device
        return self._loaded.run(*inputs, allow_nonfinite=allow_nonfinite)

    def save(self, path: str | os.PathLike, report_path: str | os.PathLike | None = None) -> None:
        """Write the module (and the report as JSON) atomically: a failed write leaves the old
        files as they were. Both paths are checked before either is written. :func:`load`
        reads them back."""
        check_output_paths([("module path", path), ("report path", report_path)])
        atomic_write(path, self.vmfb)
        if report_path:
            atomic_write(report_path, json.dumps(self.report_dict(), indent=2) + "\n")

    def report_dict(self) -> dict:
        return {"target": self.target, "convolutions": [dataclasses.asdict(r) for r in self.report]}


def load(path: str | os.PathLike, report_path: str | os.PathLike | None = None, *,
         device: str | None = None) -> CompiledModel:
    """A :class:`CompiledModel` from what :meth:`CompiledModel.save` wrote: the module (checked
    as :func:`pconv_mlir.runtime.read_vmfb` checks it; its target is the one recorded in it) and,
    with ``report_path``, its report. ``device`` as for ``run``."""
    from pconv_mlir.errors import PconvRuntimeError
    from pconv_mlir.runtime.module import read_vmfb
    from pconv_mlir.runtime.module_info import module_info

    data, _ = read_vmfb(path)
    target = module_info(data).target
    report = []
    if report_path is not None:
        try:
            saved = json.loads(Path(report_path).read_text())
            report = [ConvReport(**conv) for conv in saved["convolutions"]]
        except OSError as err:
            raise PconvInputError(f"cannot read {report_path}: {err.strerror or err}") from None
        except (ValueError, KeyError, TypeError) as err:
            raise PconvInputError(f"{report_path}: not a pconv report ({type(err).__name__}: {err})") from None
        if target and saved.get("target") not in (None, target):
            raise PconvRuntimeError(f"{report_path} is the report of a {saved.get('target')} module, but {path} "
                                    f"was compiled for {target}")
        target = target or saved.get("target")
    return CompiledModel(data, target, report, None, device)


# torch.export traces under a process-wide dispatch mode (one ProxyTorchDispatchMode slot):
# two imports at once in one process fail, so they take turns.
_IMPORT_LOCK = threading.Lock()


def import_model(model, example_inputs: Sequence | None) -> str:
    """torch-mlir FX import of an ``nn.Module`` (traced on ``example_inputs``) or an
    ExportedProgram to linalg-on-tensors text (one import at a time per process). The model's
    train/eval modes are as they were afterwards."""
    import torch
    from torch.export import ExportedProgram
    from torch_mlir import fx

    if isinstance(example_inputs, torch.Tensor):  # one input given bare: iterating it would split its batch
        example_inputs = [example_inputs]
    exported = isinstance(model, ExportedProgram)
    if not exported and not isinstance(model, torch.nn.Module):
        raise PconvInputError(f"expected an nn.Module, a torch.export ExportedProgram, a .pt2/.mlir path or MLIR "
                              f"text, got {type(model).__name__}")
    modes = {} if exported else {m: m.training for m in model.modules()}  # restored after: the user's model
    # The modes are restored under the lock: another thread's import of the same model traces in eval mode.
    with _IMPORT_LOCK:
        try:
            with torch.no_grad(), warnings.catch_warnings():
                # torch.export's own deprecation noise, printed on every import; nothing a user can act on
                warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
                                        category=FutureWarning)
                if not exported:
                    model.eval()
                module = fx.export_and_import(model, *([] if exported else example_inputs),
                                              output_type="linalg-on-tensors", func_name="main")
        except Exception as err:  # torch.export / torch-mlir refuse it (data-dependent control flow, unsupported ops)
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            hint = ""
            if re.search(r"expected \d+D input \(got \d+D input\)", first):
                hint = " (example inputs need the batch dimension: x.unsqueeze(0) for one image)"
            raise PconvCompileError(f"cannot import the model to MLIR (torch.export / torch-mlir): "
                                    f"{type(err).__name__}: {first}{hint}") from None
        finally:
            for m, training in modes.items():
                m.training = training
    return str(module)


def _collect_lowerings(module: ir.Operation, report: dict) -> None:
    """What the passes recorded: a lowered pconv op's call says how it was lowered (and why)
    and, when packed, its weight storage; a conv never raised keeps its reason and gains the
    form its layout pass chose."""
    from pconv_mlir.dialects.pconv import (
        CONV_INDEX_ATTR,
        DEAD_CHANNELS_ATTR,
        LOWERING_ATTR,
        PRECISION_ATTR,
        STORAGE_ATTR,
    )

    def visit(op):
        attrs = op.attributes
        if CONV_INDEX_ATTR in attrs and DEAD_CHANNELS_ATTR in attrs:
            entry = report[ir.IntegerAttr(attrs[CONV_INDEX_ATTR]).value]
            dead = ir.StringAttr(attrs[DEAD_CHANNELS_ATTR]).value
            if dead not in entry.dead_channels:
                entry.dead_channels.append(dead)
        if CONV_INDEX_ATTR in attrs and LOWERING_ATTR in attrs:
            entry = report[ir.IntegerAttr(attrs[CONV_INDEX_ATTR]).value]
            how = ir.StringAttr(attrs[LOWERING_ATTR]).value
            entry.lowering = how if op.name == "func.call" else f"{entry.lowering}, {how}"
            if PRECISION_ATTR in attrs:
                entry.precision = ir.StringAttr(attrs[PRECISION_ATTR]).value
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


def _record_target(module: ir.Operation, target: str) -> None:
    """Name the target in the module: an ``iree.reflection`` entry on each public function,
    which IREE keeps in the .vmfb, so that running it can pick its device
    (:mod:`pconv_mlir.runtime.module_info`)."""
    from pconv_mlir.runtime.module_info import TARGET_KEY

    for op in module.regions[0].blocks[0].operations:
        op = op.operation
        if op.name != "func.func" or "sym_visibility" in op.attributes:
            continue
        entries = {}
        if "iree.reflection" in op.attributes:
            old = ir.DictAttr(op.attributes["iree.reflection"])
            entries = {old[i].name: old[i].attr for i in range(len(old))}
        entries[TARGET_KEY] = ir.StringAttr.get(target)
        op.attributes["iree.reflection"] = ir.DictAttr.get(entries)


def run_pconv_passes(mlir_text: str, dense: bool = False, dump_dir: str | None = None,
                     own_dense_convs: bool = False, layout: str = "nchw",
                     trusted: bool = False, target: str | None = None,
                     before_lowering=None, precision: str = "fp32") -> tuple[str, list[ConvReport]]:
    """Run the pconv pipeline (none with ``dense``); return the lowered text and the report.
    ``own_dense_convs`` (not with ``dense``): the convs left dense become im2col + batched GEMM
    too (``pconv-im2col-dense-convs``), for targets whose IREE conv code is wrong. ``layout``:
    the target's (``Target.layout``); "nhwc" runs the network channels-last. ``trusted``: the
    text is torch-mlir's own output, parsed without the crash check of untrusted input
    (:mod:`pconv_mlir.mlir.parsing`). ``target``: a name recorded in the module
    (:func:`_record_target`). ``before_lowering``: called on the module just before
    ``pconv-lower-to-linalg`` (tuning: :mod:`pconv_mlir.tuning`). ``precision``: the pattern
    GEMMs' (checked against the target by :func:`check_precision`)."""
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
            for number, flag in enumerate(pconv_pipeline(layout, precision).split(","), start=1):
                if flag.startswith("pconv-lower-to-linalg") and before_lowering is not None:
                    before_lowering(module.operation)
                _run_with_repro(flag, module, ctx, dump_dir, number)
                if flag == "pconv-eliminate-dead-channels":
                    _reanalyze_cut_convs(module.operation, report, resources)
                if dump_dir:
                    _dump(dump_dir, f"{number:02d}-{flag.split('{')[0]}.mlir", str(module))
            _collect_lowerings(module.operation, report)
        _strip_tags(module.operation)
        _run_with_repro(cleanup_pipeline(own_dense_convs and not dense), module, ctx, dump_dir, 99)
        if target:
            _record_target(module.operation, target)
        text = str(module)
        if dump_dir:
            _dump(dump_dir, "99-cleanup.mlir", text)
        return text, [report[i] for i in sorted(report)]


def _reanalyze_cut_convs(module: ir.Operation, report: dict, resources) -> None:
    """A conv whose filters or inputs were cut may no longer be what the raise saw before (a 1x1
    block conv that lost half its filters is a dense conv now): its report starts from its new form."""
    from pconv_mlir.dialects.pconv import CONV_INDEX_ATTR, DEAD_CHANNELS_ATTR
    from pconv_mlir.mlir.pass_infra import ops_named
    from pconv_mlir.passes.raise_pattern_conv import CONV_OPS, analyze

    for conv in ops_named(module, *CONV_OPS):
        if CONV_INDEX_ATTR in conv.attributes and DEAD_CHANNELS_ATTR in conv.attributes:
            why = analyze(conv, resources)
            report[ir.IntegerAttr(conv.attributes[CONV_INDEX_ATTR]).value].lowering = (
                f"dense ({why})" if isinstance(why, str) else why.kind)


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


def check_precision(target, precision: str, dense: bool = False) -> None:
    """PconvInputError unless ``target`` (a :class:`~pconv_mlir.targets.Target`) can run
    ``precision``: fp16 storage needs 16-bit storage buffers (Vulkan) or fp16 conversions
    (aarch64); fp16 compute needs shaderFloat16 (Vulkan) or Armv8.2-A FP16 arithmetic."""
    from pconv_mlir.mlir.pipeline import PRECISIONS

    if precision not in PRECISIONS:
        raise PconvInputError(f"unknown precision {precision!r}; choices: {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return
    if dense:
        raise PconvInputError(f"precision {precision} applies to pconv's lowering; the dense build "
                              "(IREE's own compile) is fp32 only")
    if precision not in target.precisions:
        offered = ", ".join(target.precisions)
        why = target.no_fp16_reason or "its capabilities do not include it"
        raise PconvInputError(f"target {target.name} cannot run precision {precision}: {why} "
                              f"(this target takes: {offered})")


def depthwise_convs(report: Sequence[ConvReport]) -> list[ConvReport]:
    """The depthwise convs of a network's report: any of them give its build the target's
    ``depthwise_flags`` (:meth:`pconv_mlir.targets.Target.iree_flags`)."""
    return [r for r in report if r.kind.startswith("linalg.depthwise")]


def compile(model_or_mlir, example_inputs: Sequence | None = None, target: str = "llvm-cpu", *,
            dense: bool = False, dump_ir: str | None = None, extra_flags: Sequence[str] = (),
            tuning=None, precision: str = "fp32") -> CompiledModel:
    """Compile a pruned ``nn.Module`` (with ``example_inputs``: a list of tensors, or one
    tensor), a ``torch.export`` ExportedProgram (or its ``.pt2`` file) or linalg MLIR (text or a
    ``.mlir`` path) for ``target`` (see :mod:`pconv_mlir.targets`). ``dense=True`` skips the
    pconv passes: IREE's own dense compile with the best dense flags, for comparison.
    ``tuning``: a tuning file from ``pconv tune`` (path or its dict; :mod:`pconv_mlir.tuning`).
    ``precision``: "fp32" (default), "fp16-storage" (weights packed as f16, f32 math) or "fp16"
    (f16 weights, rows and accumulation) for the pattern convs' GEMMs, on the Vulkan targets
    and arm64-android whose capabilities allow it (:func:`check_precision`); the module's
    inputs and outputs stay f32, and ``report[i].precision`` says what each conv got."""
    from pconv_mlir.targets import compile_mlir, get_target

    check_output_dir("dump_ir", dump_ir)
    t = get_target(target)
    check_precision(t, precision, dense)
    tuned = None
    if tuning is not None and not dense:  # a bad tuning file fails before the (long) import
        from pconv_mlir.tuning.apply import TuningApplier

        tuned = TuningApplier(tuning, t.name)
    trusted = False
    path = str(model_or_mlir) if isinstance(model_or_mlir, (str, os.PathLike)) else ""
    if path.endswith(".mlir"):
        try:
            text = Path(model_or_mlir).read_text(encoding="utf-8")
        except OSError as err:
            raise PconvInputError(f"cannot read {model_or_mlir}: {err.strerror or err}") from None
        except UnicodeDecodeError as err:
            raise PconvInputError(f"cannot read {model_or_mlir}: not UTF-8 text (byte at offset {err.start})") from None
    elif path.endswith(".pt2"):
        from pconv_mlir.frontend import load_exported_program

        text = import_model(load_exported_program(path), None)
        trusted = True  # torch-mlir printed it
    elif isinstance(model_or_mlir, str):
        text = model_or_mlir
    else:
        if example_inputs is None and type(model_or_mlir).__name__ != "ExportedProgram":
            raise PconvInputError("compiling a model needs example_inputs")
        text = import_model(model_or_mlir, example_inputs)
        trusted = True  # torch-mlir printed it
    lowered, report = run_pconv_passes(text, dense=dense, dump_dir=dump_ir,
                                       own_dense_convs=t.im2col_dense_convs, layout=t.layout, trusted=trusted,
                                       target=t.name, before_lowering=tuned, precision=precision)
    if tuned is not None:
        tuned.annotate(report)
    depthwise = depthwise_convs(report)
    flags = t.iree_flags(dense, depthwise=bool(depthwise))
    if not dense and t.depthwise_flags:
        for entry in depthwise:
            entry.lowering += ", any pad of its input fused into it (IREE)"
    vmfb = compile_mlir(lowered, target, extra_flags=flags + tuple(extra_flags))
    return CompiledModel(vmfb, target, report, lowered)
