"""`pconv run` and `pconv bench` subcommands.

The `pconv` entry point calls :func:`add_parser` with its subparsers object;
each subcommand sets ``handler`` (via ``set_defaults``). The device follows the module's
target unless ``--device`` overrides it (:mod:`pconv_mlir.runtime.module_info`).  Handlers return an exit
code; errors print one line to stderr and return 1 (no traceback).

    pconv run MODULE.vmfb --input x.npy [--input y.npy] [--device vulkan] \
        [--output out.npy ...] [--function main] [--params model.irpa]
    pconv bench MODULE.vmfb [--device local-task] [--threads 1] [--repeats 20] \
        [--warmup 3] [--input x.npy ...]     (random inputs if none given)
"""

from __future__ import annotations

import argparse
import json
import sys

from pconv_mlir.errors import PconvError, PconvInputError
from pconv_mlir.runtime.device import DEVICES

__all__ = ["add_parser", "cmd_run", "cmd_bench"]


def _load_inputs(paths):
    import numpy as np

    arrays = []
    for p in paths or []:
        try:
            arrays.append(np.load(p, allow_pickle=False))
        except FileNotFoundError:
            raise PconvInputError(f"input file not found: {p}") from None
        except Exception as e:
            kind = _not_npy_kind(p)
            if kind:
                raise PconvInputError(f"{p} is {kind}, not a .npy array: save the model's input tensor with "
                                      "np.save('x.npy', x) (e.g. the preprocessed image, shape N,C,H,W)") from None
            raise PconvInputError(f"cannot read {p} as .npy: {e}") from None
    return arrays


# Leading bytes of files people give as --input by mistake (np.load's own message is about pickles).
_MAGIC = ((b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
          (b"BM", "a BMP image"), (b"PK\x03\x04", "a zip archive (a .npz or torch.save file?)"))


def _not_npy_kind(path) -> str | None:
    """What ``path`` is when its first bytes name a known non-.npy format, else None."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return None
    return next((kind for magic, kind in _MAGIC if head.startswith(magic)), None)


def _random_inputs(mod, function):
    import numpy as np

    specs, _ = mod.signature(function)
    rng = np.random.default_rng(0)
    arrays = []
    for i, s in enumerate(specs):
        if any(d is None for d in s.shape) or s.dtype is None:
            raise PconvInputError(
                f"input {i} ({s.mlir_type}) has a dynamic shape or unknown dtype: pass --input"
            )
        if s.dtype.kind == "f":
            arrays.append(rng.standard_normal(s.shape).astype(s.dtype))
        elif s.dtype.kind == "b":
            arrays.append(rng.integers(0, 2, s.shape).astype(s.dtype))
        else:
            arrays.append(rng.integers(0, 8, s.shape).astype(s.dtype))
    return arrays


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("module", metavar="MODULE", help="compiled module (.vmfb)")
    p.add_argument("--device", "-d", default=None, choices=DEVICES,
                   help="IREE device (default: the module's: vulkan for Vulkan targets, else local-task)")
    p.add_argument("--function", "-f", default="main", help="function to call (default: main)")
    p.add_argument("--input", "-i", action="append", default=[], metavar="X.npy",
                   help="input tensor (.npy), in order; repeat for several")
    p.add_argument("--params", metavar="FILE.irpa", default=None,
                   help="parameter archive for modules with external weights")
    p.add_argument("--threads", "-t", type=int, default=None, help="local-task worker threads (default: all cores)")
    p.add_argument("--allow-nonfinite", action="store_true",
                   help="run inputs holding Inf/NaN (refused by default: pruned taps are structurally absent, "
                        "so non-finite inputs do not propagate as in dense math)")


def add_parser(subparsers) -> None:
    """Adds the `run` and `bench` subcommands to an argparse subparsers object."""
    p = subparsers.add_parser("run", help="run a compiled module on inputs",
                              description="Run a compiled .vmfb with .npy inputs and print or save the outputs.")
    _common(p)
    p.add_argument("--output", "-o", action="append", default=[], metavar="OUT.npy",
                   help="where to save output k (repeat per output); printed if omitted")
    p.set_defaults(handler=cmd_run)

    b = subparsers.add_parser("bench", help="time a compiled module",
                              description="Time a compiled .vmfb (median and spread over repeats).")
    _common(b)
    b.add_argument("--repeats", "-r", type=int, default=20, help="timed runs (default 20)")
    b.add_argument("--warmup", "-w", type=int, default=3, help="untimed warm-up runs (default 3)")
    b.add_argument("--json", action="store_true", help="print the result as JSON")
    b.set_defaults(handler=cmd_bench)


def cmd_run(args) -> int:
    import numpy as np

    from pconv_mlir.fileio import check_output_paths, save_npy
    from pconv_mlir.runtime import load_module
    from pconv_mlir.runtime.device import check_thread_count

    try:
        check_thread_count(args.threads)
        check_output_paths([(f"--output {i}", p) for i, p in enumerate(args.output)],
                           inputs=[args.module, args.params, *args.input])
        mod = load_module(args.module, device=args.device, threads=args.threads, parameters=args.params)
        inputs = _load_inputs(args.input)
        outs = mod.run_all(*inputs, function=args.function, allow_nonfinite=args.allow_nonfinite)
        if args.output and len(args.output) != len(outs):
            raise PconvInputError(f"{args.function} returned {len(outs)} output(s) but {len(args.output)} "
                                  "--output path(s) were given")
        for i, o in enumerate(outs):
            if args.output:
                save_npy(args.output[i], o)
                print(f"output {i}: {o.dtype}{list(o.shape)} -> {args.output[i]}")
            else:
                with np.printoptions(threshold=50, precision=6):
                    print(f"output {i}: {o.dtype}{list(o.shape)}\n{o}")
        return 0
    except PconvError as e:
        print(f"pconv run: error: {e}", file=sys.stderr)
        return 1


def cmd_bench(args) -> int:
    from pconv_mlir.runtime import bench, load_module
    from pconv_mlir.runtime.device import check_thread_count

    try:
        check_thread_count(args.threads)
        if args.repeats < 1 or args.warmup < 0:
            raise PconvInputError(f"--repeats must be >= 1 and --warmup >= 0, got {args.repeats} and {args.warmup}")
        mod = load_module(args.module, device=args.device, threads=args.threads, parameters=args.params)
        inputs = _load_inputs(args.input) or _random_inputs(mod, args.function)
        r = bench(mod, inputs, warmup=args.warmup, repeats=args.repeats, function=args.function,
                  allow_nonfinite=args.allow_nonfinite)
        if args.json:
            print(json.dumps(r))
        else:
            thr = r["threads"] if r["threads"] is not None else "-"
            print(
                f"{args.module}: {r['device']}, threads {thr}: median {r['median_ms']:.3f} ms "
                f"(p10 {r['p10']:.3f}, p90 {r['p90']:.3f}, min {r['min']:.3f} ms; {r['repeats']} runs)"
            )
        return 0
    except PconvError as e:
        print(f"pconv bench: error: {e}", file=sys.stderr)
        return 1
