"""An accelerated conv as the tuner sees it: its data, its key, its candidate lowerings.

A layer is a ``pconv.packed_conv2d`` just before ``pconv-lower-to-linalg``: the point where the
passes have fixed its blocks and rows and the lowering is still to choose. The tuner reads the
layers there (:func:`layers_of`), and :mod:`pconv_mlir.tuning.apply` finds them there again by
the same key, so a tuning entry is applied to exactly the structure that was measured.

Key: target, layout, shape (N, C, H, W, K, kernel, stride, padding, dilation, groups), G and a
hash of the block structure (blocks, rows, the row tables; not the weight values, which do not
change the time). Identical layers share one key, hence one measurement.
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np

from pconv_mlir.lowering import ConvSpec, cost_model
from pconv_mlir.lowering.plan import plan_from_packed
from pconv_mlir.lowering.rows import row_geometry

PACKED_OP = "pconv.packed_conv2d"
DENSE = "dense"
PATTERN = "pattern"


@dataclasses.dataclass
class Layer:
    """One packed conv: what the lowering pass would be given (numpy copies, no MLIR context)."""

    index: int  # the compiler's conv number (``pconv.conv_index``), for the report
    spec: ConvSpec
    weight: np.ndarray  # packed [blocks, G, R]
    row_channels: np.ndarray
    row_taps: np.ndarray
    bias: np.ndarray
    group_size: int
    layout: str  # "nhwc" between the NHWC transposes, else "nchw"
    dense: np.ndarray  # the dense (K, C, KH, KW) weights, for the dense candidate

    def structure_hash(self) -> str:
        h = hashlib.sha256()
        for a in (np.asarray(self.weight.shape), self.row_channels, self.row_taps):
            h.update(np.ascontiguousarray(a, np.int64).tobytes())
        return h.hexdigest()[:16]

    def describe(self) -> dict:
        s = self.spec
        return {"N": s.N, "C": s.C, "H": s.H, "W": s.W, "K": s.K, "kernel": [s.KH, s.KW], "stride": list(s.stride),
                "padding": list(s.padding), "dilation": list(s.dilation), "groups": s.groups, "G": self.group_size,
                "blocks": int(self.weight.shape[0]), "rows": int(self.weight.shape[2]), "layout": self.layout,
                "structure": self.structure_hash()}

    def key(self, target: str) -> str:
        d = self.describe()
        return (f"{target}/{d['layout']}/N{d['N']}-C{d['C']}-{d['H']}x{d['W']}-K{d['K']}/k{d['kernel'][0]}x"
                f"{d['kernel'][1]}-s{d['stride'][0]}x{d['stride'][1]}-p{'.'.join(map(str, d['padding']))}"
                f"-d{d['dilation'][0]}x{d['dilation'][1]}-g{d['groups']}/G{d['G']}/{d['structure']}")

    def short(self) -> str:
        s = self.spec
        return f"{s.C}->{s.K}@{s.H}x{s.W}/s{s.stride[0]} G={self.group_size}"

    def dense_weight(self) -> np.ndarray:
        return self.dense

    def predicted_ms(self) -> dict[str, float]:
        """The cost model's times (ms) of the dense conv and of the pattern lowering."""
        plan = plan_from_packed(self.spec, self.weight, self.row_channels, self.row_taps, cost_model.ROW_MULTIPLE)
        s = self.spec
        pixels = s.N * s.OH * row_geometry(s).row_width
        t = cost_model.predict_times(s, plan.nb, plan.G, plan.R, pixels)
        return {DENSE: t["dense"] * 1e3, PATTERN: t["bmm"] * 1e3}


def layers_of(module, conv_index_attr: str) -> list[Layer]:
    """Every packed conv of ``module`` (an ``ir.Operation`` after the passes before the lowering)."""
    from pconv_mlir.mlir.constants import ResourceTable, constant_array
    from pconv_mlir.mlir.ir import ir
    from pconv_mlir.mlir.pass_infra import ops_named
    from pconv_mlir.passes.lower_to_linalg import nhwc_sandwich, spec_of, unpack_op, view

    resources = ResourceTable(module)
    found = []
    for op in ops_named(module, PACKED_OP):
        weight, bias = constant_array(op.operands[1], resources), constant_array(op.operands[2], resources)
        if weight is None or bias is None:
            continue  # the lowering refuses it anyway
        conv = view(op)
        index = ir.IntegerAttr(op.attributes[conv_index_attr]).value if conv_index_attr in op.attributes else -1
        found.append(Layer(index, spec_of(op), np.array(weight), conv.channel_table, conv.tap_table, np.array(bias),
                           conv.block, "nhwc" if nhwc_sandwich(op)[0] is not None else "nchw",
                           unpack_op(op, np.array(weight))))
    return found
