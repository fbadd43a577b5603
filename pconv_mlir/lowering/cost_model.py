"""Every policy decision of the compiler, in one place, with where each number came from.

Passes and emitters ask this module; none keeps a threshold of its own:

- which filter block size to pack a conv with no shared structure (:data:`DEFAULT_BLOCK_SIZE`);
- whether packing, reordering or lowering a conv as a pattern conv pays
  (:func:`pattern_refusal`, :func:`reorder_pays_off`, :data:`MIN_MAC_REDUCTION`);
- whether merging two filter blocks pays (:func:`merge_pays_off`);
- how to cut a layer into chunks that stay in cache (:func:`chunk_plan`);
- whether a 1x1 conv's block connectivity pays, when raising it and when lowering it
  (:func:`block_refusal`, :func:`block_lowering_refusal`);
- which tiles a dense 1x1 conv's matmul gets, or IREE's data tiling (:func:`pointwise_tiles`),
  and those of a channels-last 1x1 block conv's GEMM (:func:`pixel_gather_tiles`).

The rates were fitted on x86 (AVX2/AVX-512), llvm-cpu, IREE 3.13, 1 thread
(``results/layer_bench.md``); they only have to rank "pattern" against "dense" with a margin.
"""

from __future__ import annotations

from .spec import ConvSpec

# -- structure --------------------------------------------------------------------------------
#: Filters per block when a conv has no shared structure (the compact pass's default G).
DEFAULT_BLOCK_SIZE = 8
#: Blocks are merged (load elimination) up to this many filters.
MAX_BLOCK_SIZE = 64
#: Gathered rows per block are padded to a multiple of this (the matmul's reduction).
ROW_MULTIPLE = 8

# -- when a pattern conv pays -----------------------------------------------------------------
#: Fewer input channels per group than this: rows of a few channels make the gather and a
#: K<8 matmul dominate (measured 0.15-0.9x on 3->64@32). Such convs (stems) stay dense.
MIN_CHANNELS = 8
#: The blocks' rows must cut the dense MACs by at least this. G=1 VGG-16 64->128@16 merged into
#: 64-filter blocks of 568 rows (1.01x fewer MACs) ran 1.10 ms vs 0.80 ms dense; also the bar
#: for packing (compact pass) and for reordering filters (reorder pass).
MIN_MAC_REDUCTION = 2.0
#: The predicted speed-up over dense a pattern conv must reach.
MIN_PREDICTED_SPEEDUP = 1.3

# -- 1x1 blocks -------------------------------------------------------------------------------
#: A 1x1 block conv gathers each block's kept input-channel planes: ``blocks * kept / C`` times
#: the input (the gather amplification). Above this the gathers cost more than the saved MACs:
#: expand layers such as ResNet-50's 256->1024@14 at G=8, half the channels kept (amplification
#: 64), measured 0.4-0.8x against IREE's dense NHWC matmul.
MAX_AMPLIFICATION_1X1 = 4.0
#: The block GEMMs must cut the dense 1x1 MACs by at least this to be lowered as blocks (a 1x1
#: dense conv is one well-tuned matmul; the gather has to be paid for by fewer MACs).
MIN_LOWERED_REDUCTION_1X1 = 1.5
#: Each block must keep at least this many input channels: a block GEMM reduces over its kept
#: rows, and a short reduction leaves the vector units idle. MobileNet-V2's 112x112 16->96 at
#: keep 0.5 (8 rows) ran at 14% of peak, 1.29 ms vs 0.56 dense
#: (``results/dispatch_profile_mobilenet_v2_blocks_llvm-cpu.md`` as of commit bf5101c).
MIN_ROWS_1X1 = 16
#: The compact pass's bar for packing a 1x1 block conv (``min-mac-reduction`` = 0).
MIN_MAC_REDUCTION_1X1 = 1.25

DENSE_MAC_RATE = 11.5e9  # dense conv (best of default / im2col), MAC/s
BMM_MAC_RATE = {1: 2e9, 2: 4e9, 4: 8e9, 8: 15e9, 16: 18e9, 32: 20e9}  # batch_matmul by block size
GATHER_S_PER_ELEM = 0.25e-9  # contiguous row gather, s/element
DISPATCH_S = 20e-6

# -- load elimination -------------------------------------------------------------------------
#: One gathered element costs this many MACs (llvm-cpu, measured): blocks are merged while
#: ``blocks * rows * (GATHER_COST + G)`` per pixel drops.
GATHER_COST = 16.0

# -- chunks -----------------------------------------------------------------------------------
#: Chunk only layers whose gathered rows exceed this: rows that fit in the last-level cache
#: gain little on one thread from chunking, and each chunk is two more dispatches, which cost most
#: on several threads (VGG-16 CIFAR G=8: 181 -> 39 dispatches, 2.21x -> 3.56x over TFLite on two
#: threads; results/peers_bench_vgg16_cifar_g8.md, NOTES.md). Above it chunking wins big (512@7 G=8, 9 MB:
#: 12.3 -> 3.9 ms; 64@56 G=8, 7.5 MB: 3.7-8.7 -> 1.45 ms).
CHUNK_ABOVE_BYTES = 4 << 20
#: Gathered bytes per pixel chunk, at most MAX_CHUNKS chunks.
CHUNK_BYTES = 128 << 10
MAX_CHUNKS = 32
#: Pixel chunks narrower than this make skinny GEMMs: cut the filter blocks instead, into
#: chunks of about BLOCK_CHUNK_FACTOR * CHUNK_BYTES of rows (VGG-16 512@4 G=8 had one-row pixel
#: chunks of 4 pixels: 3.37 -> 2.21 ms, ``results/model_bench.md``).
MIN_CHUNK_PIXELS = 64
BLOCK_CHUNK_FACTOR = 4


# -- GEMM tiles ---------------------------------------------------------------------------------
#: Tiles of a pattern conv's batched GEMM (dims: block, filter, pixel, row) on x86 with AVX-512,
#: as an IREE CPU lowering config. A sweep over 8 VGG/ResNet layer shapes (G=8 and 32, 2x2 to
#: 56x56) put this within 1.14x of each layer's best on average (IREE's own choice: 1.39x;
#: 512@7 G=32: 0.70 -> 0.36 ms). A tagged GEMM also keeps its layout under IREE's data tiling,
#: which slows the gathers feeding it (VGG-16 CIFAR G=32: 1.0 -> 1.45 ms).
CPU_GEMM_VECTOR_TILES = (1, 8, 32, 0)
CPU_GEMM_PIXEL_DISTRIBUTION = 64
CPU_GEMM_REDUCTION_TILE = 1


def cpu_gemm_tiles(g: int) -> str:
    """The lowering config (IREE ``#iree_cpu.lowering_config`` fields) of a block GEMM with
    ``g`` filters per block."""
    return (f"distribution = [1, {g}, {CPU_GEMM_PIXEL_DISTRIBUTION}, 0], "
            f"vector_common_parallel = [{', '.join(map(str, CPU_GEMM_VECTOR_TILES))}], "
            f"vector_reduction = [0, 0, 0, {CPU_GEMM_REDUCTION_TILE}]")


#: A dense 1x1 conv on NHWC is a matmul (pixels x C) . (C x F). IREE's data tiling (mmt4d
#: ukernels) packs the activations and unpacks the result on every call, which costs most where K
#: is small and the map large (MobileNet-V2's 112x112 16->96: 1.14 ms data-tiled, 0.74 ms with
#: the tiles below, 1 thread; results/pointwise_bench.md). It still wins where the weight rows sit
#: a multiple of 2 KiB apart (F a multiple of 512) on a small map (ResNet-50 14x14 512->1024:
#: 2.2 vs 3.3 ms): the Kx64 weight panels then alias in L1.
POINTWISE_DATA_TILED_FILTERS = 512
POINTWISE_DATA_TILED_BELOW_PIXELS = 784


def pointwise_tiles(pixels: int, filters: int, channels: int, always: bool = False) -> str | None:
    """pconv's lowering config (IREE ``#iree_cpu.lowering_config`` fields) for a dense 1x1
    conv's ``pixels x channels . channels x filters`` matmul on the x86 host, or None to leave
    it to IREE's data tiling (never with ``always``). Register tile: 8 (or 7, 6: no remainder)
    pixels x 16 filters; workgroups of up to 64 pixels x 64 filters that divide the matmul."""
    if not always and filters % POINTWISE_DATA_TILED_FILTERS == 0 and pixels < POINTWISE_DATA_TILED_BELOW_PIXELS:
        return None
    dm, dn, mv, kr = _pixel_matmul_tiles(pixels, filters, channels)
    kr = 16 if kr < 4 and channels > 16 else kr
    return (f"distribution = [{dm}, {dn}, 0], vector_common_parallel = [{mv}, 16, 0], "
            f"vector_reduction = [0, 0, {kr}]")


def _pixel_matmul_tiles(pixels: int, filters: int, reduction: int) -> tuple[int, int, int, int]:
    """(pixel and filter workgroup tiles, pixel register tile, reduction tile) of a matmul with
    the pixels on its rows: register tiles of 8 (or 7, 6: no remainder) pixels, workgroups of up
    to 64 x 64 that divide the matmul, the largest reduction tile up to 16 that divides it."""
    mv = next((d for d in (8, 7, 6) if pixels % d == 0), min(8, pixels))
    kr = max(d for d in range(1, 17) if reduction % d == 0)
    dn = filters if filters <= 64 else max([t for t in (16, 32, 48, 64) if filters % t == 0] or [64])
    dm = max([t for t in range(mv, 65, mv) if pixels % t == 0] or [64])
    return dm, dn, mv, kr


#: pconv-eliminate-dead-channels cuts a conv's dead input channels only when at least this share of
#: them is dead: a few cut channels save little and leave odd channel counts (959 of 960) that the
#: vectorized depthwise and GEMM loops pay for with remainders. Ad hoc A/B on MobileNet-V2 with 3x3
#: patterns + 1x1 blocks (interleaved, 5 rounds): cutting at any share, or from 10%, was clearly
#: slower than from 25%; from 40% about the same.
DEAD_CHANNELS_MIN_SHARE = 0.25


#: Block GEMMs over at most this many pixels put the pixels on the GEMM's rows and the filters on
#: the vector lanes (``[blocks, pixels, R] . [blocks, R, G]``): with pixels as the vector dim, 4 of
#: them fill a quarter of a 16-lane FMA (VGG-16 CIFAR's 512@2x2 layers,
#: ``results/dispatch_profile_vgg16_cifar_llvm-cpu.md``).
PIXEL_ROWS_MAX_PIXELS = 8


def pixel_gather_tiles(pixels: int, g: int, rows: int) -> str:
    """The lowering config of a block GEMM with pixels on its rows, ``[blocks, pixels, rows] .
    [blocks, rows, g]`` (a pixel-gather 1x1 conv, a small map): per block, the dense 1x1 conv's
    tiles (:func:`pointwise_tiles`); register tiles of fewer than 8 pixels are 32 filters wide
    where G allows, to keep enough accumulators busy."""
    dm, dn, mv, kr = _pixel_matmul_tiles(pixels, g, rows)
    nv = 32 if g % 32 == 0 and mv < 8 else min(16, g)
    return (f"distribution = [1, {dm}, {dn}, 0], vector_common_parallel = [1, {mv}, {nv}, 0], "
            f"vector_reduction = [0, 0, 0, {kr}]")


def _bmm_rate(g: int) -> float:
    return max(rate for size, rate in BMM_MAC_RATE.items() if size <= max(1, g))


def predict_times(spec: ConvSpec, blocks: int, g: int, rows: int, pixels: int) -> dict[str, float]:
    """Predicted seconds of the dense conv and of the gather + batched GEMM over ``pixels``."""
    bmm_macs = blocks * g * rows * pixels
    return {"dense": spec.dense_macs / DENSE_MAC_RATE + DISPATCH_S,
            "bmm": bmm_macs / _bmm_rate(g) + blocks * rows * pixels * GATHER_S_PER_ELEM + 2 * DISPATCH_S}


def min_mac_reduction(kernel: tuple[int, int]) -> float:
    """The compact pass's default bar: patterns must halve the MACs, 1x1 blocks cut them 1.25x."""
    return MIN_MAC_REDUCTION_1X1 if tuple(kernel) == (1, 1) else MIN_MAC_REDUCTION


def block_refusal(in_channels: int, dense_macs_per_pixel: int, blocks: int, g: int, rows: int) -> str | None:
    """Why a 1x1 conv with block connectivity (``blocks`` blocks of ``g`` filters, at most
    ``rows`` kept input channels per block, padded here to :data:`ROW_MULTIPLE` as the
    lowering pads them) should stay a dense matmul, or None."""
    if in_channels < MIN_CHANNELS:
        return f"only {in_channels} input channels (< {MIN_CHANNELS}): a dense matmul is as fast"
    if rows < MIN_ROWS_1X1:
        return (f"each block keeps only {rows} input channels (< {MIN_ROWS_1X1}): a block GEMM with so "
                "short a reduction runs far below the dense matmul's rate")
    rows = -(-rows // ROW_MULTIPLE) * ROW_MULTIPLE  # the lowering pads each block's rows
    amplification = blocks * rows / in_channels
    if amplification > MAX_AMPLIFICATION_1X1:
        return (f"the blocks would gather {amplification:.1f}x the input ({blocks} blocks of {g} filters, "
                f"{rows} of {in_channels} channels each; > {MAX_AMPLIFICATION_1X1:g}x): gathers cost more "
                "than the MACs saved")
    macs = blocks * g * rows
    if macs * MIN_LOWERED_REDUCTION_1X1 > dense_macs_per_pixel:
        return (f"the blocks keep most of the dense MACs ({macs} vs {dense_macs_per_pixel} per pixel, "
                f"< {MIN_LOWERED_REDUCTION_1X1:g}x fewer)")
    return None


def block_lowering_refusal(spec: ConvSpec, blocks: int, g: int, rows: int) -> str | None:
    """:func:`block_refusal` for a 1x1 conv as the lowering sees it."""
    return block_refusal(spec.Cg, spec.K * spec.Cg, blocks, g, rows)


def pattern_refusal(spec: ConvSpec, macs: int, blocks: int, g: int, rows: int, pixels: int) -> str | None:
    """Why the pattern (or, for 1x1, block) lowering would not beat dense for this layer, or
    None when it would."""
    if (spec.KH, spec.KW) == (1, 1):
        return block_lowering_refusal(spec, blocks, g, rows)
    if spec.Cg < MIN_CHANNELS:
        return (f"only {spec.Cg} input channels per group (< {MIN_CHANNELS}): rows of a few channels make "
                "the gather and a K<8 matmul dominate (measured 0.15-0.9x on 3->64@32)")
    if macs * MIN_MAC_REDUCTION > spec.dense_macs:
        return (f"the filter blocks' rows cover most of the dense kernel (MACs {macs} vs dense "
                f"{spec.dense_macs}, < {MIN_MAC_REDUCTION}x fewer): gathers with no MAC saving")
    t = predict_times(spec, blocks, g, rows, pixels)
    speedup = t["dense"] / t["bmm"]
    if speedup < MIN_PREDICTED_SPEEDUP:
        return (f"predicted {speedup:.2f}x vs dense (G={g}, rows/block={rows}, MACs {macs} vs dense "
                f"{spec.dense_macs})")
    return None


def predicted_speedup(spec: ConvSpec, blocks: int, g: int, rows: int, pixels: int) -> float:
    t = predict_times(spec, blocks, g, rows, pixels)
    return t["dense"] / t["bmm"]


def packing_pays_off(packed_macs_per_pixel: int, dense_macs_per_pixel: int) -> bool:
    """Whether packed weights cut MACs enough for the pattern lowering to take the conv."""
    return packed_macs_per_pixel * MIN_MAC_REDUCTION <= dense_macs_per_pixel


def reorder_pays_off(packed_macs_per_pixel: int, dense_macs_per_pixel: int) -> bool:
    """Whether reordered filters, packed in default blocks, let the conv take the pattern
    lowering. Otherwise reordering only adds a channel gather to a conv that stays dense
    (G=1 ResNet-50 3x3 convs: 7% slower)."""
    return packing_pays_off(packed_macs_per_pixel, dense_macs_per_pixel)


def merge_cost(blocks: int, g: int, rows: int, gather_cost: float = GATHER_COST) -> float:
    """Per-pixel cost of gathering ``rows`` per block and multiplying them by ``g`` filters."""
    return blocks * rows * (gather_cost + g)


def chunk_plan(blocks: int, rows: int, batch: int, out_rows: int, row_width: int,
               chunk_bytes: int | None = CHUNK_BYTES, max_chunks: int = MAX_CHUNKS,
               chunk_above_bytes: int = CHUNK_ABOVE_BYTES) -> list[tuple[int, int, int, int]]:
    """Chunks ``(b0, b1, r0, r1)`` (blocks b0..b1-1 over output rows r0..r1-1), one gather +
    GEMM each, so a layer's gathered rows stay in cache between the two dispatches."""
    whole = [(0, blocks, 0, out_rows)]
    pixels = batch * out_rows * row_width
    total = blocks * rows * pixels * 4
    if not chunk_bytes or total <= chunk_above_bytes:
        return whole
    chunks = max(1, min(out_rows, max_chunks, -(-total // chunk_bytes)))
    chunks = -(-out_rows // -(-out_rows // chunks))  # no empty trailing chunk
    if chunks <= 1:
        return whole
    per = -(-out_rows // chunks)
    if batch * per * row_width >= MIN_CHUNK_PIXELS:
        return [(0, blocks, r0, min(out_rows, r0 + per)) for r0 in range(0, out_rows, per)]
    nchunks = max(1, min(blocks, max_chunks, -(-total // (BLOCK_CHUNK_FACTOR * chunk_bytes))))
    per_blocks = -(-blocks // nchunks)
    return [(b0, min(blocks, b0 + per_blocks), 0, out_rows) for b0 in range(0, blocks, per_blocks)]
