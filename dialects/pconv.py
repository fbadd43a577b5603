"""The ``pconv`` dialect: pattern-sparse and block-sparse convolution, defined from Python.

The dialect is declared with the upstream ``dialects.ext`` bindings (lowered to IRDL and
verified by MLIR itself); ops therefore print in generic form, with attributes in a
``{...}`` dictionary. Each op's verifier rejects, with a located diagnostic, what the
passes must never see: illegal patterns, out-of-range ids, shapes that do not agree.

Passes create and read pconv ops only through the classes below: ``Op.build(...)`` makes
one, ``Op.of(operation)`` views one, and properties such as ``geometry``, ``block``,
``library`` and ``kernel_pattern_ids`` read its attributes as Python values.

Ops, in the order the pipeline produces them:

- ``pconv.conv2d``: a 3x3 convolution whose constant weights are pattern-sparse, with the
  pattern table and each kernel's pattern id (raised from linalg).
- ``pconv.block_conv2d``: a 1x1 convolution whose filters, in consecutive blocks of
  ``block_size``, share the input channels they keep (raised from linalg).
- ``pconv.packed_conv2d``: either convolution after compact storage: per filter block, a
  packed weight matrix over the block's (input channel, tap) rows.
- ``pconv.permute_channels``: a channel permutation left behind by kernel reordering.

Vocabulary: a *tap* is a position of the KHxKW window (row-major; the 3x3 centre is 4); a
*pattern* is a set of 4 taps with the centre, the *library* the conv's patterns; a *block* is
G = ``block_size`` consecutive output filters that share their rows; a *row* is one (input
channel, tap) pair a block reads, i.e. one shifted input-channel plane. The conv's
``groups`` keeps PyTorch's meaning (never G's filter sets).
"""

# No `from __future__ import annotations` here: dialects.ext reads the field annotations as types.

from typing import Any  # elements attributes have no IRDL name here: checked by the verifiers

import numpy as np

from pconv_mlir.mlir.constants import dense_attr
from pconv_mlir.mlir.ir import dialect_ext, ir
from pconv_mlir.patterns import PRUNED, TAPS_PER_PATTERN, pattern_error

Operand = dialect_ext.Operand
Result = dialect_ext.Result

# Discardable attributes the passes and the driver put on ops (carried by every rewrite, see
# ``pass_infra.discardable_attributes``).
#: Tags each imported conv with its index in the compile report.
CONV_INDEX_ATTR = "pconv.conv_index"
#: On the call a conv became: which lowering it got, and why.
LOWERING_ATTR = "pconv.lowering"
#: On a block GEMM: CPU tile sizes, which targets with tile hints hand to IREE.
TILES_ATTR = "pconv.tiles"
#: On a packed conv: its weight storage (a DictAttr of byte counts) for the compile report.
STORAGE_ATTR = "pconv.storage"
#: On the call a conv became: the precision its GEMM runs in ("fp32", "fp16-storage", "fp16").
PRECISION_ATTR = "pconv.precision"
#: On a conv whose filters or input channels pconv-eliminate-dead-channels cut: how many, and why.
DEAD_CHANNELS_ATTR = "pconv.dead_channels"


class _DenseI64Array(ir.DenseI64ArrayAttr):
    """IRDL constraint: a ``array<i64: ...>`` attribute (the bindings give it no name)."""

    attr_name = "builtin.dense_array"


class Pconv(dialect_ext.Dialect, name="pconv"):
    """Pattern-sparse convolution (PCONV / PatDNN) and 1x1 block connectivity."""


class _VerifyError(Exception):
    pass


def _i64(value: int) -> ir.IntegerAttr:
    return ir.IntegerAttr.get(ir.IntegerType.get_signless(64), int(value))


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


def _verify_geometry(op: ir.OpView, in_channels_per_group: int, out_channels: int,
                     kernel: tuple[int, int] = (3, 3)) -> None:
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
    if ir.IntegerAttr(attrs["block_size"]).value < 1:
        raise _VerifyError("block_size must be positive")
    x = _ranked(op.input, "input", 4)
    y = _ranked(op.result, "result", 4)
    n, c, h, w = x.shape
    if c != in_channels_per_group * groups:
        raise _VerifyError(
            f"input has {c} channels but weights expect {in_channels_per_group} per group x {groups} groups")
    if out_channels % groups:
        raise _VerifyError(f"{out_channels} output channels are not divisible by groups = {groups}")
    out_hw = []
    for size, lo, hi, s, d, k in ((h, padding[0], padding[2], strides[0], dilations[0], kernel[0]),
                                  (w, padding[1], padding[3], strides[1], dilations[1], kernel[1])):
        span = size + lo + hi - d * (k - 1) - 1
        if span < 0:
            raise _VerifyError(f"the dilated {kernel[0]}x{kernel[1]} window (dilation {d}) does not fit the "
                               f"padded input extent {size + lo + hi}")
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


def _check_block_conv2d(op) -> None:
    wt = _ranked(op.weight, "weight", 4)
    k, cg, kh, kw = wt.shape
    if (kh, kw) != (1, 1):
        raise _VerifyError(f"weight must hold 1x1 kernels, got {kh}x{kw}")
    if ir.IntegerAttr(op.operation.attributes["groups"]).value != 1:
        raise _VerifyError(f"block convs cover groups = 1 only, got {ir.IntegerAttr(op.operation.attributes['groups']).value}")
    _verify_geometry(op, cg, k, (1, 1))


def _check_packed_conv2d(op) -> None:
    pw = _ranked(op.packed_weights, "packed_weights", 3)
    num_blocks, block_size, rows = pw.shape
    out_channels = op.result.type.shape[1] if isinstance(op.result.type, ir.RankedTensorType) else -1
    if ir.IntegerAttr(op.operation.attributes["block_size"]).value != block_size:
        raise _VerifyError(f"block_size attribute does not match packed_weights' block dimension {block_size}")
    if num_blocks != -(-out_channels // block_size):
        raise _VerifyError(
            f"{out_channels} output channels in blocks of {block_size} need {-(-out_channels // block_size)} "
            f"blocks, packed_weights has {num_blocks}")
    groups = ir.IntegerAttr(op.operation.attributes["groups"]).value
    if groups != 1:
        raise _VerifyError(f"the packed form covers groups = 1 only, got {groups}")
    kernel = _i64_array(op, "kernel_size", 2)
    if kernel not in ([3, 3], [1, 1]):
        raise _VerifyError(f"kernel_size must be [3, 3] (patterns) or [1, 1] (blocks), got {kernel}")
    in_channels = _ranked(op.input, "input", 4).shape[1]
    _verify_geometry(op, in_channels, out_channels, tuple(kernel))
    channels = _int_elements(op.operation.attributes["row_channels"], "row_channels")
    taps = _int_elements(op.operation.attributes["row_taps"], "row_taps")
    for name, table, hi in (("row_channels", channels, in_channels), ("row_taps", taps, kernel[0] * kernel[1])):
        if table.shape != (num_blocks, rows):
            raise _VerifyError(f"'{name}' shape {list(table.shape)} does not match packed_weights' [{num_blocks}, {rows}]")
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


class Geometry:
    """The attributes every conv op shares, as Python values."""

    def __init__(self, strides, dilations, padding, groups: int):
        self.strides, self.dilations, self.padding = list(strides), list(dilations), list(padding)
        self.groups = int(groups)

    def attributes(self) -> dict:
        return {"strides": ir.DenseI64ArrayAttr.get(self.strides),
                "dilations": ir.DenseI64ArrayAttr.get(self.dilations),
                "padding": ir.DenseI64ArrayAttr.get(self.padding), "groups": _i64(self.groups)}


def _create(cls, result_type, operands, attributes: dict, at: ir.Operation):
    """Create a ``cls`` op before ``at`` (at its location), viewed as ``cls``."""
    with ir.InsertionPoint(at), at.location:
        op = ir.Operation.create(cls.OPERATION_NAME, results=[result_type], operands=operands,
                                 attributes=attributes)
    return cls.of(op)


def _of(cls, op):
    """``Op.of(op)``: ``op`` (an ir.Operation or OpView of this op) viewed as ``Op``. One
    function shared by the op classes (nanobind types take a single base, so no mixin)."""
    op = op.operation if isinstance(op, ir.OpView) else op
    if op.name != cls.OPERATION_NAME:
        raise TypeError(f"expected {cls.OPERATION_NAME}, got {op.name}")
    view = op.opview
    if isinstance(view, cls):
        return view
    view = cls.__new__(cls)  # the generated __init__ builds a new op: view this one instead
    ir.OpView.__init__(view, op)
    return view


class _Conv(Pconv.Operation):
    """What every pconv conv has: the NCHW input, the geometry, and ``block_size`` (G, the
    consecutive filters known to share their rows; 1: no shared structure). ``padding`` is
    (top, left, bottom, right); ``groups`` is the conv's PyTorch groups."""

    input: Operand[ir.RankedTensorType]
    strides: _DenseI64Array
    dilations: _DenseI64Array
    padding: _DenseI64Array
    groups: ir.IntegerAttr
    block_size: ir.IntegerAttr

    of = classmethod(_of)
    @property
    def geometry(self) -> Geometry:
        a = self.operation.attributes
        return Geometry(ir.DenseI64ArrayAttr(a["strides"]), ir.DenseI64ArrayAttr(a["dilations"]),
                        ir.DenseI64ArrayAttr(a["padding"]), ir.IntegerAttr(a["groups"]).value)

    @property
    def block(self) -> int:
        return ir.IntegerAttr(self.operation.attributes["block_size"]).value

    def set_block(self, size: int) -> None:
        self.operation.attributes["block_size"] = _i64(size)

    @property
    def out_channels(self) -> int:
        return ir.RankedTensorType(self.operation.results[0].type).shape[1]

    @property
    def in_channels(self) -> int:
        return ir.RankedTensorType(self.operation.operands[0].type).shape[1]


class Conv2dOp(_Conv, name="conv2d"):
    """Pattern-sparse 3x3 convolution, NCHW input, FCHW weights.

    ``weight`` is the constant dense weight (zeros outside patterns). ``patterns`` lists
    the pattern table, 4 taps each (taps row-major in the 3x3 window, centre = 4);
    ``kernel_patterns[k, c]`` is kernel (k, c)'s pattern id, -1 when the kernel is pruned.
    ``block_size`` is the number of consecutive filters known to share kept channels and
    patterns (1: no shared structure).

    Example::

      %y = "pconv.conv2d"(%x, %w, %b) {strides = array<i64: 1, 1>,
             dilations = array<i64: 1, 1>, padding = array<i64: 1, 1, 1, 1>,
             groups = 1 : i64, patterns = array<i64: 1, 3, 4, 5>,
             kernel_patterns = dense<[[0, -1]]> : tensor<1x2xi8>, block_size = 1 : i64}
           : (tensor<1x2x8x8xf32>, tensor<1x2x3x3xf32>, tensor<1xf32>) -> tensor<1x1x8x8xf32>
    """

    weight: Operand[ir.RankedTensorType]
    bias: Operand[ir.RankedTensorType]
    patterns: _DenseI64Array
    kernel_patterns: Any
    result: Result[ir.RankedTensorType]

    verify_invariants = _verified(_check_conv2d)

    @classmethod
    def build(cls, at: ir.Operation, result_type, input, weight, bias, geometry: Geometry,
              library, kernel_pattern_ids: np.ndarray, block_size: int, extra: dict | None = None):
        """A new pconv.conv2d before ``at``."""
        attrs = {**geometry.attributes(), "patterns": ir.DenseI64ArrayAttr.get([t for p in library for t in p]),
                 "kernel_patterns": dense_attr(np.ascontiguousarray(kernel_pattern_ids, np.int8)),
                 "block_size": _i64(block_size), **(extra or {})}
        return _create(cls, result_type, [input, weight, bias], attrs, at)

    @property
    def library(self) -> list[tuple[int, ...]]:
        flat = list(ir.DenseI64ArrayAttr(self.operation.attributes["patterns"]))
        return [tuple(flat[i:i + TAPS_PER_PATTERN]) for i in range(0, len(flat), TAPS_PER_PATTERN)]

    @property
    def kernel_pattern_ids(self) -> np.ndarray:
        return np.array(ir.DenseIntElementsAttr(self.operation.attributes["kernel_patterns"]))

    def set_kernel_pattern_ids(self, ids: np.ndarray) -> None:
        self.operation.attributes["kernel_patterns"] = dense_attr(np.ascontiguousarray(ids, np.int8))


class BlockConv2dOp(_Conv, name="block_conv2d"):
    """1x1 convolution with block connectivity sparsity, NCHW input, FCHW weights.

    The filters, in consecutive blocks of ``block_size`` (the last block may be partial),
    each keep the same subset of input channels: a block reads its kept input-channel planes
    once and multiplies them by a dense ``[G, kept]`` matrix. ``weight`` is the constant
    dense weight (zeros on the dropped channels); the kept channels are read off it.

    Example::

      %y = "pconv.block_conv2d"(%x, %w, %b) {strides = array<i64: 1, 1>,
             dilations = array<i64: 1, 1>, padding = array<i64: 0, 0, 0, 0>,
             groups = 1 : i64, block_size = 2 : i64}
           : (tensor<1x4x8x8xf32>, tensor<4x4x1x1xf32>, tensor<4xf32>) -> tensor<1x4x8x8xf32>
    """

    weight: Operand[ir.RankedTensorType]
    bias: Operand[ir.RankedTensorType]
    result: Result[ir.RankedTensorType]

    verify_invariants = _verified(_check_block_conv2d)

    @classmethod
    def build(cls, at: ir.Operation, result_type, input, weight, bias, geometry: Geometry, block_size: int,
              extra: dict | None = None):
        """A new pconv.block_conv2d before ``at``."""
        attrs = {**geometry.attributes(), "block_size": _i64(block_size), **(extra or {})}
        return _create(cls, result_type, [input, weight, bias], attrs, at)


class PackedConv2dOp(_Conv, name="packed_conv2d"):
    """A pattern (3x3) or block (1x1) convolution in compact storage (PatDNN's FKW,
    arranged for a batched GEMM).

    Output filters are split into blocks of ``block_size`` consecutive filters (the last
    block may be padded with zero filters). Block ``b`` reads ``R`` rows of the input,
    row ``r`` being input channel ``row_channels[b, r]`` shifted by tap ``row_taps[b, r]``
    of the ``kernel_size`` window (row-major; always 0 for 1x1); ``packed_weights[b, f, r]``
    is the weight of filter ``f`` of the block on that row. Rows are ordered by (tap, channel)
    so equal taps are adjacent; blocks with fewer rows are padded with zero-weight rows.

    Example::

      %y = "pconv.packed_conv2d"(%x, %pw, %b) {strides = array<i64: 1, 1>,
             dilations = array<i64: 1, 1>, padding = array<i64: 1, 1, 1, 1>,
             groups = 1 : i64, block_size = 2 : i64, kernel_size = array<i64: 3, 3>,
             row_channels = dense<[[0, 0, 1, 1]]> : tensor<1x4xi32>,
             row_taps = dense<[[1, 4, 4, 5]]> : tensor<1x4xi32>}
           : (tensor<1x2x8x8xf32>, tensor<1x2x4xf32>, tensor<2xf32>) -> tensor<1x2x8x8xf32>
    """

    packed_weights: Operand[ir.RankedTensorType]
    bias: Operand[ir.RankedTensorType]
    kernel_size: _DenseI64Array
    row_channels: Any
    row_taps: Any
    result: Result[ir.RankedTensorType]

    verify_invariants = _verified(_check_packed_conv2d)

    @classmethod
    def build(cls, at: ir.Operation, result_type, input, packed_weights, bias, geometry: Geometry,
              kernel: tuple[int, int], channel_table: np.ndarray, tap_table: np.ndarray,
              extra: dict | None = None):
        """A new pconv.packed_conv2d before ``at``; ``block_size`` is the packed weights' G."""
        g = ir.RankedTensorType(packed_weights.type).shape[1]
        attrs = {**geometry.attributes(), "block_size": _i64(g), "kernel_size": ir.DenseI64ArrayAttr.get(list(kernel)),
                 "row_channels": dense_attr(np.ascontiguousarray(channel_table, np.int32)),
                 "row_taps": dense_attr(np.ascontiguousarray(tap_table, np.int32)), **(extra or {})}
        return _create(cls, result_type, [input, packed_weights, bias], attrs, at)

    @property
    def kernel(self) -> tuple[int, int]:
        kh, kw = ir.DenseI64ArrayAttr(self.operation.attributes["kernel_size"])
        return int(kh), int(kw)

    @property
    def channel_table(self) -> np.ndarray:
        return np.array(ir.DenseIntElementsAttr(self.operation.attributes["row_channels"]))

    @property
    def tap_table(self) -> np.ndarray:
        return np.array(ir.DenseIntElementsAttr(self.operation.attributes["row_taps"]))

    def set_packing(self, packed_weights: ir.Value, channel_table: np.ndarray, tap_table: np.ndarray) -> None:
        """Replace the packed weights and their row tables (``block_size`` follows the weights)."""
        self.operation.operands[1] = packed_weights
        self.set_block(ir.RankedTensorType(packed_weights.type).shape[1])
        self.operation.attributes["row_channels"] = dense_attr(np.ascontiguousarray(channel_table, np.int32))
        self.operation.attributes["row_taps"] = dense_attr(np.ascontiguousarray(tap_table, np.int32))


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

    of = classmethod(_of)

    @classmethod
    def build(cls, value: ir.Value, permutation, after: ir.Operation):
        """A new permute_channels of ``value``, right after ``after``."""
        op = _create(cls, value.type, [value],
                     {"permutation": ir.DenseI64ArrayAttr.get([int(p) for p in permutation])}, after)
        op.operation.move_after(after)
        return op

    @property
    def order(self) -> np.ndarray:
        return np.array(list(ir.DenseI64ArrayAttr(self.operation.attributes["permutation"])), np.int64)


CONV_OPS = (Conv2dOp, BlockConv2dOp, PackedConv2dOp)
OPS = (Conv2dOp, BlockConv2dOp, PackedConv2dOp, PermuteChannelsOp)
OP_NAMES = tuple(op.OPERATION_NAME for op in OPS)


def load_pconv_dialect(context=None) -> None:
    """Load the pconv dialect into ``context`` (default: the current one); idempotent."""
    context = context or ir.Context.current
    if context.is_dialect_loaded(Pconv.DIALECT_NAMESPACE):
        return
    with context, ir.Location.unknown(context):
        Pconv.load()
        for op in OPS:
            dialect_ext.Pure.attach(op.OPERATION_NAME)
