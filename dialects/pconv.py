"""The ``pconv`` dialect: pattern-sparse convolution, defined from Python.

The dialect is declared with the upstream ``dialects.ext`` bindings (lowered to IRDL and
verified by MLIR itself); ops therefore print in generic form, with attributes in a
``{...}`` dictionary. Each op's verifier rejects, with a located diagnostic, what the
passes must never see: illegal patterns, out-of-range ids, shapes that do not agree.

Ops, in the order the pipeline produces them:

- ``pconv.conv2d``: a 3x3 convolution whose constant weights are pattern-sparse, with the
  pattern table and each kernel's pattern id (raised from linalg).
- ``pconv.packed_conv2d``: the same convolution after compact storage: per filter group,
  a packed weight matrix over the group's (input channel, tap) rows.
- ``pconv.permute_channels``: a channel permutation left behind by kernel reordering.
"""



from typing import Any  # elements attributes have no IRDL name here: checked by the verifiers

import numpy as np

from pconv_mlir.mlir.ir import dialect_ext, ir
from pconv_mlir.patterns import KERNEL_TAPS, PRUNED, TAPS_PER_PATTERN, pattern_error

Operand = dialect_ext.Operand
Result = dialect_ext.Result


class _DenseI64Array(ir.DenseI64ArrayAttr):
    """IRDL constraint: a ``array<i64: ...>`` attribute (the bindings give it no name)."""

    attr_name = "builtin.dense_array"




class Pconv(dialect_ext.Dialect, name="pconv"):
    """Pattern-sparse convolution (PCONV / PatDNN)."""


class _VerifyError(Exception):
    pass


def _int_elements(attr: ir.Attribute, what: str) -> np.ndarray:
    if not isinstance(attr, ir.DenseIntElementsAttr):
        try:
            attr = ir.DenseIntElementsAttr(attr)
        except (ValueError, TypeError):
            raise _VerifyError(f"'{what}' must be a dense integer elements attribute, got {attr}")
    return np.array(attr)


def _i64_array(op: ir.OpView, name: str, size: int) -> list[int]:
    values = list(ir.DenseI64ArrayAttr(op.operation.attributes[name]))
    if len(values) != size:
        raise _VerifyError(f"'{name}' must have {size} entries, got {len(values)}")
    return values


def _ranked(value: ir.Value, what: str, rank: int) -> ir.RankedTensorType:
    t = value.type
    if not isinstance(t, ir.RankedTensorType) or t.rank != rank or not t.has_static_shape:
        raise _VerifyError(f"{what} must be a statically shaped rank-{rank} tensor, got {t}")
    if not isinstance(t.element_type, ir.F32Type):
        raise _VerifyError(f"{what} must have f32 elements, got {t.element_type}")
    return t


def _verify_geometry(op: ir.OpView, in_channels_per_group: int, out_channels: int) -> None:
    """Checks shared by the conv ops: attributes in range and output shape consistent."""
    attrs = op.operation.attributes
    strides = _i64_array(op, "strides", 2)
    dilations = _i64_array(op, "dilations", 2)
    padding = _i64_array(op, "padding", 4)
    groups = ir.IntegerAttr(attrs["groups"]).value
    if min(strides) < 1:
        raise _VerifyError(f"strides must be positive, got {strides}")
    if min(dilations) < 1:
        raise _VerifyError(f"dilations must be positive, got {dilations}")
    if min(padding) < 0:
        raise _VerifyError(f"padding (top, left, bottom, right) must be non-negative, got {padding}")
    if groups < 1:
        raise _VerifyError(f"groups must be positive, got {groups}")
    x = _ranked(op.input, "input", 4)
    y = _ranked(op.result, "result", 4)
    n, c, h, w = x.shape
    if c != in_channels_per_group * groups:
        raise _VerifyError(
            f"input has {c} channels but weights expect {in_channels_per_group} per group x {groups} groups")
    if out_channels % groups:
        raise _VerifyError(f"{out_channels} output channels are not divisible by groups = {groups}")
    out_hw = []
    for size, lo, hi, s, d in ((h, padding[0], padding[2], strides[0], dilations[0]),
                               (w, padding[1], padding[3], strides[1], dilations[1])):
        span = size + lo + hi - d * 2 - 1
        if span < 0:
            raise _VerifyError(
                f"the dilated 3x3 window (dilation {d}) does not fit the padded input extent {size + lo + hi}")
        out_hw.append(span // s + 1)
    expected = [n, out_channels, *out_hw]
    if list(y.shape) != expected:
        raise _VerifyError(f"result shape {list(y.shape)} does not match the convolution's {expected}")
    bias = _ranked(op.bias, "bias", 1)
    if bias.shape[0] != out_channels:
        raise _VerifyError(f"bias has {bias.shape[0]} entries, expected {out_channels}")


def _verify_patterns(op: ir.OpView) -> int:
    flat = list(ir.DenseI64ArrayAttr(op.operation.attributes["patterns"]))
    if not flat or len(flat) % TAPS_PER_PATTERN:
        raise _VerifyError(f"'patterns' must hold {TAPS_PER_PATTERN} taps per pattern, got {len(flat)} entries")
    for i in range(0, len(flat), TAPS_PER_PATTERN):
        err = pattern_error(flat[i:i + TAPS_PER_PATTERN])
        if err:
            raise _VerifyError(f"pattern {i // TAPS_PER_PATTERN}: {err}")
    return len(flat) // TAPS_PER_PATTERN


def _verified(check):
    """Turn a check that raises _VerifyError into an MLIR verifier emitting a diagnostic."""

    def verify_invariants(self) -> bool:
        try:
            check(self)
        except _VerifyError as err:
            message = str(err)
        except KeyError:
            # Iterating an op's attributes yields their names (str) in these bindings.
            present = ", ".join(str(getattr(a, "name", a)) for a in self.operation.attributes)
            message = f"is missing a required attribute (has: {present or 'none'})"
        except (ValueError, TypeError) as err:
            message = f"has a malformed attribute: {err}"
        else:
            return True
        self.location.emit_error(f"'{self.operation.name}' op {message}")
        return False

    return verify_invariants


def _check_conv2d(op) -> None:
    wt = _ranked(op.weight, "weight", 4)
    k, cg, kh, kw = wt.shape
    if (kh, kw) != (3, 3):
        raise _VerifyError(f"weight must hold 3x3 kernels, got {kh}x{kw}")
    _verify_geometry(op, cg, k)
    num_patterns = _verify_patterns(op)
    ids = _int_elements(op.operation.attributes["kernel_patterns"], "kernel_patterns")
    if ids.shape != (k, cg):
        raise _VerifyError(f"'kernel_patterns' shape {list(ids.shape)} does not match the weight's kernels [{k}, {cg}]")
    if ids.size and (ids.min() < PRUNED or ids.max() >= num_patterns):
        raise _VerifyError(f"pattern ids must lie in [{PRUNED}, {num_patterns}), got [{ids.min()}, {ids.max()}]")
    if ir.IntegerAttr(op.operation.attributes["group_size"]).value < 1:
        raise _VerifyError("group_size must be positive")


def _check_packed_conv2d(op) -> None:
    pw = _ranked(op.packed_weights, "packed_weights", 3)
    num_groups, group_size, rows = pw.shape
    out_channels = op.result.type.shape[1] if isinstance(op.result.type, ir.RankedTensorType) else -1
    if ir.IntegerAttr(op.operation.attributes["group_size"]).value != group_size:
        raise _VerifyError(f"group_size attribute does not match packed_weights' group dimension {group_size}")
    if num_groups != -(-out_channels // group_size):
        raise _VerifyError(
            f"{out_channels} output channels in groups of {group_size} need {-(-out_channels // group_size)} "
            f"groups, packed_weights has {num_groups}")
    groups = ir.IntegerAttr(op.operation.attributes["groups"]).value
    if groups != 1:
        raise _VerifyError(f"the packed form covers groups = 1 only, got {groups}")
    in_channels = _ranked(op.input, "input", 4).shape[1]
    _verify_geometry(op, in_channels, out_channels)
    channels = _int_elements(op.operation.attributes["row_channels"], "row_channels")
    taps = _int_elements(op.operation.attributes["row_taps"], "row_taps")
    for name, table, hi in (("row_channels", channels, in_channels), ("row_taps", taps, KERNEL_TAPS)):
        if table.shape != (num_groups, rows):
            raise _VerifyError(f"'{name}' shape {list(table.shape)} does not match packed_weights' [{num_groups}, {rows}]")
        if table.size and (table.min() < 0 or table.max() >= hi):
            raise _VerifyError(f"'{name}' entries must lie in [0, {hi}), got [{table.min()}, {table.max()}]")


def _check_permute_channels(op) -> None:
    x = _ranked(op.input, "input", 4)
    y = _ranked(op.result, "result", 4)
    if x.shape != y.shape:
        raise _VerifyError(f"result shape {y.shape} differs from input shape {x.shape}")
    perm = list(ir.DenseI64ArrayAttr(op.operation.attributes["permutation"]))
    if sorted(perm) != list(range(x.shape[1])):
        raise _VerifyError(f"'permutation' must be a permutation of the {x.shape[1]} channels, got {perm}")


class Conv2dOp(Pconv.Operation, name="conv2d"):
    """Pattern-sparse 3x3 convolution, NCHW input, FCHW weights.

    ``weight`` is the constant dense weight (zeros outside patterns). ``patterns`` lists
    the pattern table, 4 taps each (taps row-major in the 3x3 window, centre = 4);
    ``kernel_patterns[k, c]`` is kernel (k, c)'s pattern id, -1 when the kernel is pruned.
    ``group_size`` is the number of consecutive filters known to share kept channels and
    patterns (1: no shared structure). ``padding`` is (top, left, bottom, right).

    Example::

      %y = "pconv.conv2d"(%x, %w, %b) {strides = array<i64: 1, 1>,
             dilations = array<i64: 1, 1>, padding = array<i64: 1, 1, 1, 1>,
             groups = 1 : i64, patterns = array<i64: 1, 3, 4, 5>,
             kernel_patterns = dense<[[0, -1]]> : tensor<1x2xi8>, group_size = 1 : i64}
           : (tensor<1x2x8x8xf32>, tensor<1x2x3x3xf32>, tensor<1xf32>) -> tensor<1x1x8x8xf32>
    """

    input: Operand[ir.RankedTensorType]
    weight: Operand[ir.RankedTensorType]
    bias: Operand[ir.RankedTensorType]
    strides: _DenseI64Array
    dilations: _DenseI64Array
    padding: _DenseI64Array
    groups: ir.IntegerAttr
    patterns: _DenseI64Array
    kernel_patterns: Any
    group_size: ir.IntegerAttr
    result: Result[ir.RankedTensorType]

    verify_invariants = _verified(_check_conv2d)


class PackedConv2dOp(Pconv.Operation, name="packed_conv2d"):
    """Pattern convolution in compact storage (PatDNN's FKW, arranged for a batched GEMM).

    Output filters are split into groups of ``group_size`` consecutive filters (the last
    group may be padded with zero filters). Group ``g`` reads ``R`` rows of the input,
    row ``r`` being input channel ``row_channels[g, r]`` shifted by 3x3 tap
    ``row_taps[g, r]``; ``packed_weights[g, f, r]`` is the weight of filter ``f`` of the
    group on that row. Rows are ordered by (tap, channel) so equal taps are adjacent;
    groups with fewer rows are padded with zero-weight rows.

    Example::

      %y = "pconv.packed_conv2d"(%x, %pw, %b) {strides = array<i64: 1, 1>,
             dilations = array<i64: 1, 1>, padding = array<i64: 1, 1, 1, 1>,
             groups = 1 : i64, group_size = 2 : i64,
             row_channels = dense<[[0, 0, 1, 1]]> : tensor<1x4xi32>,
             row_taps = dense<[[1, 4, 4, 5]]> : tensor<1x4xi32>}
           : (tensor<1x2x8x8xf32>, tensor<1x2x4xf32>, tensor<2xf32>) -> tensor<1x2x8x8xf32>
    """

    input: Operand[ir.RankedTensorType]
    packed_weights: Operand[ir.RankedTensorType]
    bias: Operand[ir.RankedTensorType]
    strides: _DenseI64Array
    dilations: _DenseI64Array
    padding: _DenseI64Array
    groups: ir.IntegerAttr
    group_size: ir.IntegerAttr
    row_channels: Any
    row_taps: Any
    result: Result[ir.RankedTensorType]

    verify_invariants = _verified(_check_packed_conv2d)


class PermuteChannelsOp(Pconv.Operation, name="permute_channels"):
    """``result[:, j] = input[:, permutation[j]]`` on an NCHW tensor.

    Left behind by kernel reordering where a permutation could not be folded away.

    Example::

      %y = "pconv.permute_channels"(%x) {permutation = array<i64: 1, 0>}
           : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
    """

    input: Operand[ir.RankedTensorType]
    permutation: _DenseI64Array
    result: Result[ir.RankedTensorType]

    verify_invariants = _verified(_check_permute_channels)


OPS = (Conv2dOp, PackedConv2dOp, PermuteChannelsOp)


def load_pconv_dialect(context=None) -> None:
    """Load the pconv dialect into ``context`` (default: the current one); idempotent."""
    context = context or ir.Context.current
    if context.is_dialect_loaded(Pconv.DIALECT_NAMESPACE):
        return
    with context, ir.Location.unknown(context):
        Pconv.load()
        for op in OPS:
            dialect_ext.Pure.attach(op.OPERATION_NAME)
