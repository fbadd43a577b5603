"""Where a (channel, tap) row of a KHxKW conv (3x3 patterns, 1x1 blocks) lives in the padded input, per formulation.

Stride-1 convs read each row as one contiguous slice of the padded input flattened per
channel plane (``xf[n, c, off + q]``):

- **masked rows**, when the output is as wide as the input (3x3 pad 1; pad d at dilation d):
  the input is padded in H only, with one more zero row above and below so every shifted
  slice is in bounds; q = i*W + j runs over exactly the output pixels and the elements that
  wrapped around a row edge (where the width padding would be) are zeroed by ``mask[dx, q]``.
  Computing over the padded width instead costs Wp/W more MACs (1.25x at 8x8, 2x at 2x2).
  3x3 only: a 1x1 conv without padding already has Wp = W.
- **padded rows**, otherwise: padded in H and W (plus zero rows at the bottom), q = i*Wp + j
  runs over the padded width, and the Wp - OW extra columns are sliced off afterwards. For a
  1x1 conv without padding Wp = W and no extra rows: a row is one input-channel plane.

Strided convs use the **gather**: exact output pixels, ``x[n, c, i*sh + dy, j*sw + dx]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .spec import ConvSpec

__all__ = ["RowGeometry", "row_geometry", "exact_rows_ok", "row_edge_mask"]


def exact_rows_ok(s: ConvSpec) -> bool:
    """Stride-1 convs whose output is as wide as the input take the masked rows layout."""
    pl, pr = s.padding[1], s.padding[3]
    return (s.KW > 1 and s.stride == (1, 1) and pl + pr == (s.KW - 1) * s.dilation[1]
            and s.W >= max(pl, pr))


def row_edge_mask(out_h: int, out_w: int, dilation_w: int, pad_left: int, kw: int = 3) -> np.ndarray:
    """mask[kx, q] (i32 0/1) of masked rows: whether output pixel q = i*OW + j reads a real
    input column through tap column kx (0 where the row slice wrapped around a row edge)."""
    cols = np.arange(out_h * out_w) % out_w
    return np.ascontiguousarray(
        [(cols + kx * dilation_w - pad_left >= 0) & (cols + kx * dilation_w - pad_left < out_w) for kx in range(kw)],
        dtype=np.int32)


@dataclass(frozen=True)
class RowGeometry:
    """The padded input and pixel layout of one formulation.

    ``kind``: "masked-rows", "padded-rows" or "gather". ``pad_low``/``pad_high``: (H, W)
    padding of the input. ``row_width``: Qw, the pixel stride of one output row in the
    GEMM's columns (OW, or Wp for padded rows).
    """

    kind: str
    pad_low: tuple[int, int]
    pad_high: tuple[int, int]
    padded_h: int
    padded_w: int
    row_width: int

    @property
    def flat(self) -> bool:
        return self.kind != "gather"

    def offsets(self, s: ConvSpec, taps: np.ndarray) -> np.ndarray:
        """Flat offset of each row's first element (rows layouts): ``dy*Wp + dx`` (+ the
        extra top row, minus the left padding, for masked rows)."""
        dy, dx = (taps // s.KW) * s.dilation[0], (taps % s.KW) * s.dilation[1]
        shift = self.padded_w - s.padding[1] if self.kind == "masked-rows" else 0
        return np.ascontiguousarray(dy * self.padded_w + dx + shift, dtype=np.int32)


def row_geometry(s: ConvSpec, gather: bool = False) -> RowGeometry:
    """The layout of ``s``: rows for stride 1 (masked where possible), else (or with
    ``gather``) the exact-pixel gather."""
    pt, pl, pb, pr = s.padding
    if gather or s.stride != (1, 1):
        return RowGeometry("gather", (pt, pl), (pb, pr), s.Hp, s.Wp, s.OW)
    if exact_rows_ok(s):
        return RowGeometry("masked-rows", (pt + 1, 0), (pb + 1, 0), s.H + pt + pb + 2, s.W, s.W)
    extra = -(-((s.KW - 1) * s.dilation[1]) // s.Wp)  # zero rows so every shifted slice is in bounds
    return RowGeometry("padded-rows", (pt, pl), (pb + extra, pr), s.Hp + extra, s.Wp, s.Wp)
