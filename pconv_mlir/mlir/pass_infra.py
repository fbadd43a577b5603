"""What every pconv pass shares: options, failure reporting, registration in a PassManager.

A pconv pass is a dataclass whose fields are its options (``pconv-x{opt=3}`` on the
command line), each declared with :func:`option` (default, help text that ``pconv-opt --help``
shows, bounds), with a class-level ``name`` (its flag) and ``summary``. ``run`` gets the
top-level module operation and raises :class:`PassFailure` to fail with a located error.
Python passes are not in MLIR's registry, so pipelines are parsed by
:mod:`pconv_mlir.mlir.pipeline`, which adds these passes and upstream ones to one PassManager.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import numpy as np

from pconv_mlir.mlir.ir import PassManager, ir


class PassFailure(Exception):
    """Raised by a pass to fail with a diagnostic at ``location``."""

    def __init__(self, message: str, location: ir.Location | None = None):
        super().__init__(message)
        self.location = location


class PassOptionError(ValueError):
    """A pass option that the pass does not have, or whose value does not parse."""


def option(default: Any, help: str, minimum: float | None = None, maximum: float | None = None) -> Any:
    """A pass option: a dataclass field with its ``help`` text and the closed range
    [``minimum``, ``maximum``] its value must lie in (floats must also be finite)."""
    return dataclasses.field(default=default, metadata={"help": help, "minimum": minimum, "maximum": maximum})


def _kind(field: dataclasses.Field) -> type:
    named = {"int": int, "float": float, "bool": bool, "str": str}
    return field.type if isinstance(field.type, type) else named.get(str(field.type), str)


def _convert(field: dataclasses.Field, text: str) -> Any:
    flag, kind = field.name.replace("_", "-"), _kind(field)
    if kind is bool:
        if text.lower() in ("1", "true"):
            return True
        if text.lower() in ("0", "false"):
            return False
        raise PassOptionError(f"option '{flag}' expects true or false, got '{text}'")
    try:
        value = kind(text)
    except ValueError:
        raise PassOptionError(f"option '{flag}' expects {kind.__name__}, got '{text}'") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise PassOptionError(f"option '{flag}' expects a finite number, got '{text}'")
    low, high = field.metadata.get("minimum"), field.metadata.get("maximum")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"<= {high}" if low is None else f"in [{low}, {high}]"
        raise PassOptionError(f"option '{flag}' must be {bounds}, got '{text}'")
    return value


@dataclasses.dataclass
class PconvPass:
    """Base class of the pconv passes (see the module docstring)."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""

    @classmethod
    def from_options(cls, options: dict[str, str]) -> PconvPass:
        fields = {f.name.replace("_", "-"): f for f in dataclasses.fields(cls)}
        kwargs = {}
        for key, text in options.items():
            field = fields.get(key)
            if field is None:
                known = ", ".join(sorted(fields)) or "none"
                raise PassOptionError(f"pass '{cls.name}' has no option '{key}' (options: {known})")
            kwargs[field.name] = _convert(field, text)
        return cls(**kwargs)

    @classmethod
    def option_help(cls) -> list[str]:
        """One line per option: ``name=default  help``, for ``pconv-opt --help``."""
        lines = []
        for f in dataclasses.fields(cls):
            default = str(f.default).lower() if isinstance(f.default, bool) else f.default
            lines.append(f"{f.name.replace('_', '-')}={default}  {f.metadata.get('help', '')}".rstrip())
        return lines

    def run(self, module: ir.Operation) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def add_to(self, pm: PassManager) -> None:
        def run_pass(op: ir.Operation, pass_) -> None:
            try:
                self.run(op)
            except PassFailure as failure:
                (failure.location or op.location).emit_error(f"{self.name}: {failure}")
                pass_.signal_pass_failure()

        pm.add(run_pass, name=type(self).__name__, argument=self.name, description=self.summary)


def discardable_attributes(op: ir.Operation) -> dict[str, ir.Attribute]:
    """Namespaced (``dialect.name``) attributes of ``op``: tags such as ``pconv.conv_index``
    that a rewrite carries from the op it replaces to the op it creates."""
    attrs = op.attributes
    return {attrs[i].name: attrs[i].attr for i in range(len(attrs)) if "." in attrs[i].name}


def int_list(attr: ir.Attribute) -> list[int]:
    """The integers of a dense integer elements attribute (e.g. a linalg conv's ``strides``)."""
    return [int(v) for v in ir.DenseIntElementsAttr(attr)]


def ops_named(root: ir.Operation, *names: str) -> list[ir.Operation]:
    """All operations under ``root`` with one of ``names``, in pre-order, collected first
    so callers may rewrite while iterating."""
    found: list[ir.Operation] = []

    def visit(op: ir.Operation):
        if op.name in names:
            found.append(op)
        return ir.WalkResult.ADVANCE

    root.walk(visit)
    return found


def constant(at: ir.Operation, array: np.ndarray) -> ir.Value:
    """A new ``arith.constant`` holding ``array``, inserted before ``at``."""
    from pconv_mlir.mlir.constants import dense_attr
    from pconv_mlir.mlir.dtypes import mlir_element_type

    array = np.ascontiguousarray(array)
    with ir.InsertionPoint(at), at.location:
        t = ir.RankedTensorType.get(list(array.shape), ir.Type.parse(mlir_element_type(array.dtype)))
        return ir.Operation.create("arith.constant", results=[t], attributes={"value": dense_attr(array)}).result


def install_functions(module: ir.Operation, text: str) -> None:
    """Parse ``text`` (private helper functions) and append its functions to ``module``."""
    parsed = ir.Module.parse(text)
    with ir.InsertionPoint(module.regions[0].blocks[0]):
        for f in parsed.body.operations:
            f.operation.clone()


def take_function_text(name: str, t: ir.RankedTensorType, dim: int, keep: list[int]) -> str:
    """A private function ``@name`` gathering the ``keep`` entries, in that order, along ``dim`` of a
    tensor of type ``t`` (a permutation when ``keep`` orders every entry)."""
    rank = t.rank
    shape = list(t.shape)
    out_shape = shape[:dim] + [len(keep)] + shape[dim + 1:]
    elt = str(t.element_type)
    ty = lambda s: f"tensor<{'x'.join(map(str, s))}x{elt}>" if s else f"tensor<{elt}>"  # noqa: E731
    dims = ", ".join(f"d{i}" for i in range(rank))
    idx = "\n".join(f"    %i{i} = linalg.index {i} : index" for i in range(rank))
    src = ", ".join("%src" if i == dim else f"%i{i}" for i in range(rank))
    return f"""func.func private @{name}(%x: {ty(shape)}) -> {ty(out_shape)} {{
  %keep = arith.constant dense<[{", ".join(map(str, keep))}]> : tensor<{len(keep)}xi32>
  %e = tensor.empty() : {ty(out_shape)}
  %r = linalg.generic {{indexing_maps = [affine_map<({dims}) -> ({dims})>],
       iterator_types = [{", ".join(['"parallel"'] * rank)}]}} outs(%e : {ty(out_shape)}) {{
  ^bb0(%out: {elt}):
{idx}
    %k = tensor.extract %keep[%i{dim}] : tensor<{len(keep)}xi32>
    %src = arith.index_cast %k : i32 to index
    %v = tensor.extract %x[{src}] : {ty(shape)}
    linalg.yield %v : {elt}
  }} -> {ty(out_shape)}
  return %r : {ty(out_shape)}
}}"""


def replace_with_call(op: ir.Operation, callee: str, args: list[ir.Value], attributes: dict) -> None:
    """Replace ``op`` (one result) by ``func.call @callee(args)`` carrying ``attributes``, then
    erase ``op`` and the producers only it used."""
    with ir.InsertionPoint(op), op.location:
        call = ir.Operation.create("func.call", results=[op.results[0].type], operands=args,
                                   attributes={"callee": ir.FlatSymbolRefAttr.get(callee), **attributes})
    op.results[0].replace_all_uses_with(call.results[0])
    erase_dead(op)


_SIDE_EFFECT_FREE = ("arith.constant", "tensor.empty", "tensor.pad", "tensor.collapse_shape",
                     "tensor.expand_shape", "linalg.broadcast", "linalg.fill")


def erase_dead(op: ir.Operation) -> None:
    """Erase ``op`` (whose results must be unused) and then any of its producers that only
    fed it and have no side effects, so a rewrite leaves no dead pads or broadcasts."""
    producers = [v.owner.operation for v in op.operands if isinstance(v.owner, ir.OpView)]
    op.erase()
    for producer in producers:
        if producer.name in _SIDE_EFFECT_FREE and all(not list(r.uses) for r in producer.results):
            erase_dead(producer)
