"""``pconv tune INPUT --target T -o TUNING.json [--device D] [--threads N] [--candidates ...]``.

Measures each accelerated conv's candidate lowerings on the device and writes the winners to a
tuning file for ``pconv compile --tuning``. Entries already in the output file are reused.
"""

from __future__ import annotations

import argparse

from pconv_mlir.runtime.device import DEVICES

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("tune", help="measure candidate lowerings per conv on the device; write a tuning file",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", help=".mlir file or saved pruned model (.pt)")
    p.add_argument("--target", default="llvm-cpu", help="compile target (default llvm-cpu)")
    p.add_argument("-o", "--output", required=True, help="tuning file (JSON; reused as a cache if it exists)")
    p.add_argument("--device", "-d", default=None, choices=(*DEVICES, "adb"),
                   help="where to measure (default: the target's runtime device here; adb: a phone)")
    p.add_argument("--serial", "-s", default=None, help="adb device serial (--device adb)")
    p.add_argument("--threads", "-t", type=int, default=None, help="local-task worker threads while measuring")
    p.add_argument("--cpu-affinity", metavar="CPUS", default=None, help="pin the workers to these CPUs (e.g. 0-1)")
    p.add_argument("--candidates", default="formulation,tiles",
                   help="candidate groups: formulation (dense vs pattern), tiles (GEMM tiles); default both")
    p.add_argument("--budget", type=float, default=None, help="seconds of timing per candidate and layer (default 0.3)")
    p.add_argument("--margin", type=float, default=None,
                   help="how much faster (fraction) a candidate must be to replace the untuned choice (default 0.08)")
    p.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                   help="what to time on this host: process CPU time (default; robust to other jobs) or wall time")
    p.add_argument("--fresh", action="store_true", help="measure every layer again (ignore the output file)")
    p.add_argument("--input-shape", help="for a .pt model: N,C,H,W of the example input (default from the model)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pconv_mlir.cli.compile import _load_pruned
    from pconv_mlir.errors import PconvInputError
    from pconv_mlir.fileio import check_output_paths
    from pconv_mlir.runtime.topology import check_affinity
    from pconv_mlir.tuning import tuner, tuning_file

    check_output_paths([("-o", args.output)], inputs=[args.input])
    check_affinity(args.cpu_affinity, args.threads, local=args.device != "adb")
    source, example = args.input, None
    if args.input.endswith(".pt"):
        source, example = _load_pruned(args.input, args.input_shape)
    elif not args.input.endswith(".mlir"):
        raise PconvInputError(f"{args.input}: expected a .mlir file or a saved pruned model (.pt)")
    data = tuner.tune(source, example, args.target, output=args.output, device=args.device, threads=args.threads,
                      cpu_affinity=args.cpu_affinity, serial=args.serial,
                      candidates=[c for c in args.candidates.split(",") if c],
                      budget_s=tuner.BUDGET_S if args.budget is None else args.budget,
                      margin=tuner.MARGIN if args.margin is None else args.margin,
                      progress=not args.quiet, reuse=not args.fresh, clock=args.clock)
    run_ = data["last_run"]
    switched = sum(e["winner"] != e["untuned"] for e in data["entries"].values() if e["target"] == args.target)
    gain = [tuning_file.untuned(e)["measured_ms"] - tuning_file.winner(e)["measured_ms"]
            for e in data["entries"].values() if e["target"] == args.target]
    print(f"tuned {run_['unique']} distinct conv(s) of {run_['layers']} ({run_['reused']} from the cache) on "
          f"{run_['device']} in {run_['seconds']:.0f} s: {switched} switched from the untuned choice, "
          f"{sum(gain):.3f} ms saved per run (measured); wrote {args.output}")
    return 0
