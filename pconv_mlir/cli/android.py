"""`pconv android bundle|run|bench` subcommands.

    pconv android bundle MODULE.vmfb --input x.npy [...] -o DIR
          [--device local-task] [--function main] [--android-tools NDK_TOOLS_DIR]
          [--reference ref.npy ... | --reference-module HOST.vmfb]
    pconv android run DIR [--emulate] [--device D] [--serial S] [--tolerance 1e-4]
    pconv android bench DIR [--emulate] [--threads T] [--repeats R] [--serial S]

`run`/`bench` push DIR to /data/local/tmp/pconv-bundle with adb and run it
there; `--emulate` runs the same scripts here under qemu-aarch64-static.
Errors print one line to stderr and exit 1.
"""

from __future__ import annotations

import argparse
import sys

from pconv_mlir.errors import PconvError, PconvInputError
from pconv_mlir.numerics import TOLERANCE
from pconv_mlir.runtime.device import DEVICES

__all__ = ["add_parser", "cmd_bundle", "cmd_run", "cmd_bench"]


def add_parser(subparsers) -> None:
    a = subparsers.add_parser("android", help="bundle and run modules on Android / aarch64", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = a.add_subparsers(dest="android_command", required=True, metavar="{bundle,run,bench}")

    b = sub.add_parser("bundle", help="write a self-contained aarch64 bundle folder")
    b.add_argument("module", metavar="MODULE.vmfb")
    b.add_argument("--input", "-i", action="append", default=[], metavar="X.npy",
                   help="input (.npy), in order; repeat for several")
    b.add_argument("-o", "--output-dir", required=True, metavar="DIR")
    b.add_argument("--device", "-d", default=None, choices=DEVICES,
                   help="device run.sh uses by default (default: the module's: vulkan for Vulkan, else local-task)")
    b.add_argument("--function", "-f", default="main")
    b.add_argument("--allow-nonfinite", action="store_true", help="bundle inputs holding Inf/NaN (see `pconv run`)")
    b.add_argument("--android-tools", metavar="DIR", default=None,
                   help="iree-run-module and iree-benchmark-module built for Android with the NDK (needed for "
                        "Vulkan on a phone: the default glibc tools cannot load libvulkan.so; docs/android.md)")
    g = b.add_mutually_exclusive_group()
    g.add_argument("--reference", action="append", default=[], metavar="REF.npy",
                   help="expected output k (repeat per output)")
    g.add_argument("--reference-module", metavar="HOST.vmfb",
                   help="compute expected outputs by running this host module (e.g. compiled for llvm-cpu) here")
    b.set_defaults(handler=cmd_bundle)

    r = sub.add_parser("run", help="run a bundle on a phone (adb) or under qemu (--emulate)")
    r.add_argument("bundle", metavar="DIR")
    r.add_argument("--emulate", action="store_true", help="run here under qemu-aarch64-static")
    r.add_argument("--device", "-d", default=None, choices=DEVICES, help="override the bundle's device")
    r.add_argument("--serial", "-s", default=None, help="adb device serial")
    r.add_argument("--tolerance", type=float, default=TOLERANCE, help="max rel err vs reference (default %(default)g)")
    r.add_argument("--timeout", type=float, default=600, help="seconds (default 600)")
    _topology(r)
    r.set_defaults(handler=cmd_run)

    c = sub.add_parser("bench", help="benchmark a bundle on a phone (adb) or under qemu (--emulate)")
    c.add_argument("bundle", metavar="DIR")
    c.add_argument("--emulate", action="store_true", help="run here under qemu-aarch64-static (times the emulator)")
    c.add_argument("--device", "-d", default=None, choices=DEVICES)
    c.add_argument("--repeats", "-r", type=int, default=10)
    c.add_argument("--serial", "-s", default=None)
    c.add_argument("--timeout", type=float, default=600)
    _topology(c)
    c.set_defaults(handler=cmd_bench)


def _topology(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", "-t", type=int, default=None, help="local-task worker threads (the tools' "
                   "--task_topology_group_count)")
    p.add_argument("--cpu-affinity", metavar="CPUS", default=None,
                   help="pin the workers to these CPUs of the phone, one each (e.g. 4-7 for a big cluster; "
                        "the tools' --task_topology_cpu_ids)")


def _err(cmd: str, e: Exception) -> int:
    print(f"pconv android {cmd}: error: {e}", file=sys.stderr)
    return 1


def cmd_bundle(args) -> int:
    from pconv_mlir import android

    try:
        android.check_function_name(args.function, "--function")
        refs = list(args.reference)
        if args.reference_module:
            import numpy as np

            from pconv_mlir.runtime import load_module

            try:
                inputs = [np.load(p, allow_pickle=False) for p in args.input]
            except Exception as e:
                raise PconvInputError(f"cannot read inputs: {e}") from None
            host = load_module(args.reference_module, device="local-sync")
            refs = host.run_all(*inputs, function=args.function, allow_nonfinite=args.allow_nonfinite)
        d = android.bundle(args.module, args.input, args.output_dir, device=args.device, function=args.function,
                           references=refs or None, allow_nonfinite=args.allow_nonfinite,
                           android_tools=args.android_tools)
        print(f"bundle written to {d} (run: pconv android run {d} [--emulate])")
        return 0
    except PconvError as e:
        return _err("bundle", e)


def cmd_run(args) -> int:
    from pconv_mlir import android

    try:
        if args.emulate:
            res = android.run_emulated(args.bundle, device=args.device, timeout=args.timeout, tolerance=args.tolerance,
                                       threads=args.threads, cpu_affinity=args.cpu_affinity)
        else:
            res = android.run_adb(args.bundle, device=args.device, serial=args.serial, timeout=args.timeout,
                                  tolerance=args.tolerance, threads=args.threads, cpu_affinity=args.cpu_affinity)
        print(res.summary(args.tolerance))
        return 1 if res.passed is False else 0
    except PconvError as e:
        return _err("run", e)


def cmd_bench(args) -> int:
    from pconv_mlir import android

    try:
        if args.emulate:
            out = android.bench_emulated(args.bundle, device=args.device, threads=args.threads, repeats=args.repeats,
                                         timeout=args.timeout, cpu_affinity=args.cpu_affinity)
        else:
            out = android.bench_adb(args.bundle, device=args.device, threads=args.threads, repeats=args.repeats,
                                    serial=args.serial, timeout=args.timeout, cpu_affinity=args.cpu_affinity)
        print(out.rstrip())
        return 0
    except PconvError as e:
        return _err("bench", e)
