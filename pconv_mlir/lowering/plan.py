"""Filter blocks and their rows: the one packing of a pattern or block conv's weights.

A conv (3x3 patterns, or 1x1 block connectivity) is cut into *blocks* of G consecutive
output filters (never straddling a conv group). A block's *rows* are the (input channel, tap)
pairs any of its filters reads (taps row-major in the KHxKW window; a 1x1 conv has the one
tap 0, so its rows are the block's kept input channels); its weights pack into a dense
``[G, R]`` matrix over those rows. The compact pass, the load-elimination pass and the
emitters all pack through :func:`pack_rows`, and :func:`unpack` turns the packed form back
into dense ``(K, C, KH, KW)`` weights.

Row tables use channel -1 for padding rows (zero weights; the gather reads channel 0 and
zeroes the value) and the window's centre tap (``taps // 2``: 4 for 3x3, 0 for 1x1) for them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pconv_mlir.patterns import PRUNED

from .spec import ConvSpec, PatternConvRefused

__all__ = ["PatternPlan", "Packed", "pack_rows", "unpack", "rows_of_weights", "rows_of_patterns",
           "plan_from_weights", "plan_from_packed", "round_up", "pad_tap", "largest_shared_block",
           "KERNELS"]

PAD_CHANNEL = -1
PAD_TAP = 4  # of a 3x3 window
#: The windows the packed form covers: 3x3 patterns and 1x1 blocks.
KERNELS = ((3, 3), (1, 1))


def pad_tap(taps: int) -> int:
    """The tap padding rows name: the window's centre (every shifted slice of it is in bounds)."""
    return taps // 2


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple if multiple > 1 else value


@dataclass
class Packed:
    """Packed weights ``[blocks, G, R]`` and per-block row tables ``[blocks, R]``."""

    weights: np.ndarray
    channels: np.ndarray  # int32, PAD_CHANNEL on padding rows
    taps: np.ndarray  # int32, PAD_TAP on padding rows

    @property
    def macs_per_pixel(self) -> int:
        return int(np.prod(self.weights.shape))


def pack_rows(flat_weight: np.ndarray, blocks: list[np.ndarray], rows: list[list[tuple[int, int]]],
              row_multiple: int = 1, block_size: int | None = None) -> Packed:
    """Pack ``flat_weight`` (K, C, taps) by ``blocks`` (filter ids) and their ``rows``
    ((channel, tap) pairs, channels counted over all of C): ``weights[b, i, r]`` is filter
    ``blocks[b][i]``'s weight on row ``r`` of block ``b``."""
    g = block_size or max(len(b) for b in blocks)
    r_max = round_up(max(1, max(len(r) for r in rows)), row_multiple)
    weights = np.zeros((len(blocks), g, r_max), np.float32)
    channels = np.full((len(blocks), r_max), PAD_CHANNEL, np.int32)
    taps = np.full((len(blocks), r_max), pad_tap(flat_weight.shape[2]), np.int32)
    for b, (filters, block_rows) in enumerate(zip(blocks, rows)):
        if not block_rows:
            continue
        c = np.array([row[0] for row in block_rows])
        t = np.array([row[1] for row in block_rows])
        channels[b, :len(c)], taps[b, :len(t)] = c, t
        weights[b, :len(filters), :len(c)] = flat_weight[np.asarray(filters)][:, c, t]
    return Packed(weights, channels, taps)


def unpack(packed: np.ndarray, channels: np.ndarray, taps: np.ndarray, out_channels: int,
           in_channels: int, kernel: tuple[int, int] = (3, 3)) -> np.ndarray:
    """The dense (K, C, KH, KW) weights a packed form represents (blocks of consecutive filters)."""
    blocks, g, rows = packed.shape
    dense = np.zeros((blocks * g, in_channels, kernel[0] * kernel[1]), np.float32)
    for b in range(blocks):
        for r in range(rows):
            if channels[b, r] >= 0:
                dense[b * g:(b + 1) * g, channels[b, r], taps[b, r]] += packed[b, :, r]
    return dense[:out_channels].reshape(out_channels, in_channels, *kernel)


def rows_of_weights(flat_weight: np.ndarray, filters: np.ndarray, channel_offset: int = 0) -> list[tuple[int, int]]:
    """(channel, tap) rows where any filter of the block has a non-zero weight, channel-major."""
    used = (flat_weight[filters] != 0).any(axis=0)
    cs, ts = np.nonzero(used)
    return [(int(c) + channel_offset, int(t)) for c, t in zip(cs, ts)]


def rows_of_patterns(ids: np.ndarray, patterns: list[tuple[int, ...]], filters) -> list[tuple[int, int]]:
    """(channel, tap) rows the filters' kernel patterns read, tap-major (equal taps adjacent)."""
    rows = {(t, c) for k in filters for c in np.nonzero(ids[k] != PRUNED)[0] for t in patterns[ids[k, c]]}
    return [(int(c), int(t)) for t, c in sorted(rows)]


@dataclass
class PatternPlan:
    """How one conv's filters split into blocks, and what each block reads."""

    spec: ConvSpec
    blocks: list[np.ndarray]  # filter ids per block
    packed: Packed
    nnz_kernels: int
    nnz_weights: int

    @property
    def nb(self) -> int:
        return len(self.blocks)

    @property
    def G(self) -> int:
        return self.packed.weights.shape[1]

    @property
    def R(self) -> int:
        return self.packed.weights.shape[2]

    def macs(self) -> int:
        s = self.spec
        return self.nb * self.G * self.R * s.N * s.OH * s.OW


def plan_from_weights(spec: ConvSpec, weight: np.ndarray, block_size: int, row_multiple: int = 1) -> PatternPlan:
    """Blocks of ``block_size`` consecutive filters of dense pattern-sparse ``weight``; each
    block's rows are read off the weights, so the plan is exact for any weight."""
    s = spec
    w = np.asarray(weight, np.float32)
    if (s.KH, s.KW) not in KERNELS or w.shape != (s.K, s.Cg, s.KH, s.KW):
        raise PatternConvRefused(f"only 3x3 and 1x1 kernels: weight {w.shape}, spec K={s.K} Cg={s.Cg} "
                                 f"{s.KH}x{s.KW}")
    g = max(1, int(block_size))
    flat = w.reshape(s.K, s.Cg, s.KH * s.KW)
    blocks, rows = [], []
    for gi in range(s.groups):
        for b0 in range(0, s.Kg, g):
            filters = np.arange(gi * s.Kg + b0, gi * s.Kg + min(b0 + g, s.Kg))
            blocks.append(filters)
            rows.append(rows_of_weights(flat, filters, gi * s.Cg))
    # Rows index all C input channels; a grouped conv's weights only span its group's Cg.
    full = flat if s.groups == 1 else _expand_groups(flat, s)
    nz = flat != 0
    return PatternPlan(s, blocks, pack_rows(full, blocks, rows, row_multiple),
                       int(nz.any(axis=2).sum()), int(nz.sum()))


def _expand_groups(flat: np.ndarray, s: ConvSpec) -> np.ndarray:
    full = np.zeros((s.K, s.C, flat.shape[2]), np.float32)
    for gi in range(s.groups):
        full[gi * s.Kg:(gi + 1) * s.Kg, gi * s.Cg:(gi + 1) * s.Cg] = flat[gi * s.Kg:(gi + 1) * s.Kg]
    return full


def plan_from_packed(spec: ConvSpec, weights: np.ndarray, row_channels: np.ndarray, row_taps: np.ndarray,
                     row_multiple: int = 1) -> PatternPlan:
    """The plan of the compact form the passes build (``pconv.packed_conv2d``: filter
    ``b*G + i`` in slot ``i`` of block ``b``), keeping the passes' blocks and row order but
    dropping rows whose weights are all zero (the packing's padding)."""
    s = spec
    if s.groups != 1 or (s.KH, s.KW) not in KERNELS:
        raise PatternConvRefused(f"the packed form covers 3x3 and 1x1 convs without groups "
                                 f"(groups={s.groups}, {s.KH}x{s.KW})")
    weights = np.asarray(weights, np.float32)
    nb, g, _ = weights.shape
    blocks, rows = [], []
    for b in range(nb):
        blocks.append(np.arange(b * g, min(s.K, (b + 1) * g)))
        live = np.nonzero(np.abs(weights[b]).sum(axis=0))[0]
        rows.append([(int(row_channels[b, r]), int(row_taps[b, r])) for r in live])
    dense = unpack(weights, row_channels, row_taps, s.K, s.C, (s.KH, s.KW)).reshape(s.K, s.C, s.KH * s.KW)
    nz = dense != 0
    return PatternPlan(s, blocks, pack_rows(dense, blocks, rows, row_multiple),
                       int(nz.any(axis=2).sum()), int(nz.sum()))


def largest_shared_block(kernel_patterns: np.ndarray, groups: int) -> int:
    """The largest power of two G <= 64 such that every G consecutive filters have identical
    kernel pattern ids (same kept channels, same pattern per channel)."""
    if groups != 1:
        return 1
    k = kernel_patterns.shape[0]
    best = 1
    for g in (2, 4, 8, 16, 32, 64):
        if g > k:
            break
        blocks = [kernel_patterns[i:i + g] for i in range(0, k, g)]
        if all((b == b[0]).all() for b in blocks):
            best = g
        else:
            break
    return best
