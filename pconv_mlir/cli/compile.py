"""``pconv compile INPUT --target T -o OUT.vmfb [--report FILE.json] [--dump-ir DIR]``."""

from __future__ import annotations

import argparse
import math

from pconv_mlir.errors import PconvInputError

#: Most elements an example input may have (1 GiB of fp32): a shape asking for more (a typo, or a
#: checkpoint's input_shape) is an error rather than an allocation.
MAX_INPUT_ELEMENTS = 1 << 28
MAX_INPUT_RANK = 8


def add_parser(subparsers) -> None:
    from pconv_mlir.targets import TARGETS

    p = subparsers.add_parser("compile", help="compile a model (.pt2, .mlir, pruned .pt) to an IREE module",
                              description="Compile INPUT for a target: a torch.export program (.pt2,\n"
                                          "torch.export.save), linalg-on-tensors .mlir with constant weights (as\n"
                                          "torch-mlir emits it; `pconv import` writes one), or a model saved by\n"
                                          "`pconv prune` (.pt).",
                              epilog="targets:\n" + "\n".join(f"  {t.name:24} {t.description}"
                                                                for t in TARGETS.values()),
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", help=".pt2 (torch.export.save), .mlir, or a pruned model saved by pconv prune (.pt)")
    p.add_argument("--target", default="llvm-cpu", metavar="TARGET",
                   help=f"compile target: {', '.join(TARGETS)} (default llvm-cpu; the list below says what each is)")
    p.add_argument("-o", "--output", required=True, help="output .vmfb")
    p.add_argument("--report", help="write the per-convolution report (JSON) here")
    p.add_argument("--dump-ir", metavar="DIR", help="keep each stage's IR in DIR")
    p.add_argument("--dense", action="store_true", help="skip the pconv passes (IREE's dense compile, best flags)")
    p.add_argument("--input-shape", help="for a .pt model: N,C,H,W of the example input (default from the model)")
    p.add_argument("--tuning", metavar="FILE.json", help="per-conv lowerings measured by `pconv tune`")
    p.add_argument("--precision", default="fp32", choices=("fp32", "fp16-storage", "fp16"),
                   help="pattern GEMMs: fp32 (default); fp16-storage: weights packed as f16, f32 math; fp16: f16 "
                        "weights, rows and accumulation. Vulkan targets with fp16 and arm64-android only; the "
                        "module's inputs and outputs stay f32")
    p.set_defaults(handler=run)


def check_input_shape(dims, where: str) -> list[int]:
    """``dims`` as a list of ints >= 1 whose product is at most MAX_INPUT_ELEMENTS."""
    if not isinstance(dims, (list, tuple)) or not 1 <= len(dims) <= MAX_INPUT_RANK:
        raise PconvInputError(f"{where}: expected 1 to {MAX_INPUT_RANK} dimensions, got {dims!r}")
    if not all(isinstance(d, int) and not isinstance(d, bool) for d in dims):
        raise PconvInputError(f"{where}: dimensions must be integers, got {dims!r}")
    if any(d < 1 for d in dims):
        raise PconvInputError(f"{where}: every dimension must be >= 1, got {list(dims)}")
    if math.prod(dims) > MAX_INPUT_ELEMENTS:
        raise PconvInputError(f"{where}: {list(dims)} is {math.prod(dims):,} elements (at most {MAX_INPUT_ELEMENTS:,})")
    return list(dims)


def _load_pruned(path: str, shape: str | None):
    import torch

    from pconv_mlir.pruning import load_pruned

    if shape is not None:  # checked before the (possibly large) model is loaded
        try:
            dims = [int(v) for v in shape.split(",")]
        except ValueError:
            raise PconvInputError(f"--input-shape expects N,C,H,W integers, got {shape!r}") from None
        dims = check_input_shape(dims, "--input-shape")
    try:  # a file that is not a pruned model, or metadata that does not match the weights
        model, meta = load_pruned(path)
    except (ValueError, OSError) as err:
        if "Unsupported global" in str(err):  # pickled classes: a torch.save(model) file, never unpickled
            from pconv_mlir.frontend import pickled_model_help

            raise PconvInputError(pickled_model_help(path)) from None
        raise PconvInputError(str(err)) from None
    if shape is None:
        stored = getattr(meta, "input_shape", None)
        if not stored:
            raise PconvInputError("a saved model needs --input-shape N,C,H,W")
        dims = check_input_shape(stored, f"{path}: stored input_shape")
    return model, [torch.zeros(*dims)]


def run(args: argparse.Namespace) -> int:
    import sys
    import warnings

    import pconv_mlir
    from pconv_mlir.fileio import check_output_dir, check_output_paths
    from pconv_mlir.tuning.tuning_file import PconvTuningWarning

    # Before any work: a bad output path must not cost a whole compile.
    check_output_paths([("-o", args.output), ("--report", args.report)], inputs=[args.input, args.tuning])
    check_output_dir("--dump-ir", args.dump_ir)
    source, example = args.input, None
    if args.input_shape is not None and not args.input.endswith(".pt"):  # a .pt2 or .mlir fixes its own shape
        raise PconvInputError("--input-shape applies to a pruned model (.pt) only; a .pt2 or .mlir has its shape")
    if args.input.endswith(".pt"):
        source, example = _load_pruned(args.input, args.input_shape)
    elif not args.input.endswith((".mlir", ".pt2")):
        raise PconvInputError(f"{args.input}: expected a .mlir file, a .pt2 (torch.export.save) or a pruned "
                              "model saved by pconv prune (.pt)")
    with warnings.catch_warnings(record=True) as caught:  # a stale tuning file: one line, not a warning dump
        warnings.simplefilter("always", PconvTuningWarning)
        compiled = pconv_mlir.compile(source, example, target=args.target, dense=args.dense, dump_ir=args.dump_ir,
                                      tuning=args.tuning, precision=args.precision)
    for w in caught:
        print(f"pconv compile: warning: {w.message}", file=sys.stderr)
    compiled.save(args.output, args.report)
    for r in compiled.report:
        shapes = [f"[{', '.join(map(str, dims))}]" for dims in (r.input_shape, r.output_shape)]  # '?': dynamic
        tuned = (f" [predicted {r.tuning['predicted_ms']:.3f} ms, measured {r.tuning['measured_ms']:.3f} ms]"
                 if r.tuning else "")
        dead = "".join(f"; {d}" for d in r.dead_channels)
        print(f"conv {r.index}: {r.kind} {shapes[0]} -> {shapes[1]}: {r.lowering}, {r.precision}{tuned}{dead}")
    print(f"wrote {args.output} ({len(compiled.vmfb)} bytes, target {args.target})")
    return 0
