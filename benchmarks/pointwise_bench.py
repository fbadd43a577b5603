#!/usr/bin/env python3
"""Dense 1x1 convs on the host CPU: pconv's tiles against IREE's data tiling, per layer shape.

For each 1x1 conv of ResNet-50 and MobileNet-V2 (224x224; bias + ReLU6 epilogue), the NCHW linalg
module runs through ``pconv-convert-to-nhwc`` with ``pointwise-tiles`` = never (IREE's data
tiling and ukernels, pconv's choice before the cost model's rule), always (pconv's tiles) and
auto (the rule, :func:`pconv_mlir.lowering.cost_model.pointwise_tiles`), is compiled for
llvm-cpu with pconv's flags, checked against numpy, and timed with iree-benchmark-module at 1
and 2 threads in interleaved rounds (medians).

    python benchmarks/pointwise_bench.py [--rounds 3] [--realtime] [--quick]
Writes results/pointwise_bench.json and results/pointwise_bench.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from dispatch_profile import peak_gmacs  # noqa: E402

from pconv_mlir.fileio import atomic_write  # noqa: E402
from pconv_mlir.lowering.mlir_util import dense_attr  # noqa: E402
from pconv_mlir.numerics import TOLERANCE, rel_err  # noqa: E402
from pconv_mlir.peers.bench import machine  # noqa: E402
from pconv_mlir.provenance import repo_commit  # noqa: E402
from pconv_mlir.runtime.timing import interleaved_medians, realtime_priority  # noqa: E402
from pconv_mlir.testing.harness import run_vmfb  # noqa: E402

# (model, map size, C, F): the distinct 1x1 shapes of the two models at 224x224 (a stride-2
# downsample is listed at its output size: it reads every other pixel through a slice).
LAYERS = [
    ("mobilenet_v2", 112, 32, 16), ("mobilenet_v2", 112, 16, 96), ("mobilenet_v2", 56, 24, 144),
    ("mobilenet_v2", 56, 144, 24), ("mobilenet_v2", 28, 32, 192), ("mobilenet_v2", 28, 192, 32),
    ("mobilenet_v2", 14, 64, 384), ("mobilenet_v2", 14, 384, 64), ("mobilenet_v2", 14, 96, 576),
    ("mobilenet_v2", 14, 576, 96), ("mobilenet_v2", 7, 960, 160), ("mobilenet_v2", 7, 160, 960),
    ("mobilenet_v2", 7, 320, 1280),
    ("resnet50", 56, 64, 64), ("resnet50", 56, 64, 256), ("resnet50", 56, 256, 64),
    ("resnet50", 28, 128, 512), ("resnet50", 28, 512, 128), ("resnet50", 28, 256, 512),
    ("resnet50", 14, 256, 1024), ("resnet50", 14, 1024, 256), ("resnet50", 14, 512, 1024),
    ("resnet50", 7, 512, 2048), ("resnet50", 7, 2048, 512), ("resnet50", 7, 1024, 2048),
]
QUICK = [LAYERS[1], LAYERS[10], LAYERS[22]]
MODES = ("never", "always", "auto")


def layer_module(h: int, c: int, f: int, weight: np.ndarray, bias: np.ndarray) -> str:
    """NHWC in and out around an NCHW 1x1 conv + bias + ReLU6, as torch-mlir imports it; the
    boundary transposes fold away once the pass runs the conv channels-last."""
    x, y, xn, yn = f"tensor<1x{h}x{h}x{c}xf32>", f"tensor<1x{h}x{h}x{f}xf32>", \
        f"tensor<1x{c}x{h}x{h}xf32>", f"tensor<1x{f}x{h}x{h}xf32>"
    ident = "affine_map<(a, b, c, d) -> (a, b, c, d)>"
    conv_attrs = "{dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>}"
    parallel = '["parallel", "parallel", "parallel", "parallel"]'
    return f"""func.func @main(%a: {x}) -> {y} {{
  %e0 = tensor.empty() : {xn}
  %x = linalg.transpose ins(%a : {x}) outs(%e0 : {xn}) permutation = [0, 3, 1, 2]
  %w = arith.constant {dense_attr(weight.reshape(f, c, 1, 1))}
  %bias = arith.constant {dense_attr(bias)}
  %e = tensor.empty() : {yn}
  %b = linalg.broadcast ins(%bias : tensor<{f}xf32>) outs(%e : {yn}) dimensions = [0, 2, 3]
  %c = linalg.conv_2d_nchw_fchw {conv_attrs}
    ins(%x, %w : {xn}, tensor<{f}x{c}x1x1xf32>) outs(%b : {yn}) -> {yn}
  %r = linalg.generic {{indexing_maps = [{ident}, {ident}], iterator_types = {parallel}}}
    ins(%c : {yn}) outs(%e : {yn}) {{
  ^bb0(%v: f32, %o: f32):
    %lo = arith.constant 0.0 : f32
    %hi = arith.constant 6.0 : f32
    %m = arith.maximumf %v, %lo : f32
    %n = arith.minimumf %m, %hi : f32
    linalg.yield %n : f32
  }} -> {yn}
  %e2 = tensor.empty() : {y}
  %t = linalg.transpose ins(%r : {yn}) outs(%e2 : {y}) permutation = [0, 2, 3, 1]
  return %t : {y}
}}
"""


def lowered(text: str, mode: str) -> tuple[str, str]:
    """(module text after the NHWC pass and the compile's cleanup, the matmul's lowering tag)."""
    from pconv_mlir.compiler import cleanup_pipeline
    from pconv_mlir.dialects.pconv import load_pconv_dialect
    from pconv_mlir.mlir.ir import ir
    from pconv_mlir.mlir.pipeline import build_pass_manager

    with ir.Context() as ctx:
        load_pconv_dialect(ctx)
        module = ir.Module.parse(text)
        build_pass_manager(f"pconv-convert-to-nhwc{{pointwise-tiles={mode}}}", ctx).run(module.operation)
        build_pass_manager(cleanup_pipeline(False), ctx).run(module.operation)
        out = str(module)
    return out, "pconv" if "pconv.tiles" in out else "iree"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="three shapes, for a smoke run")
    p.add_argument("--realtime", action="store_true", help="time at real-time priority (root; shared machine)")
    p.add_argument("--out", default=os.path.join(ROOT, "results", "pointwise_bench"))
    args = p.parse_args()

    from pconv_mlir.targets import compile_mlir, get_target

    target = get_target("llvm-cpu")
    rows = []
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp, realtime_priority(args.realtime) as realtime:
        for model, h, c, f in QUICK if args.quick else LAYERS:
            weight = (rng.standard_normal((f, c)) / np.sqrt(c)).astype(np.float32)
            bias = rng.standard_normal(f).astype(np.float32)
            x = rng.standard_normal((1, h, h, c)).astype(np.float32)
            want = np.clip(x @ weight.T + bias, 0, 6)
            x_path = os.path.join(tmp, "x.npy")
            np.save(x_path, x)
            row = {"model": model, "map": h, "C": c, "F": f, "mmacs": h * h * c * f / 1e6, "ms": {}}
            paths = {}
            for mode in MODES:
                text, how = lowered(layer_module(h, c, f, weight, bias), mode)
                vmfb = compile_mlir(text, target, extra_flags=target.iree_flags())
                err = rel_err(run_vmfb(vmfb, x), want)
                if err > TOLERANCE:
                    print(f"pointwise_bench: {model} {h}x{h} {c}->{f} {mode}: rel err {err:.1e}", file=sys.stderr)
                    return 1
                row.setdefault("rel_err", {})[mode] = err
                if mode == "auto":
                    row["auto_choice"] = how
                paths[mode] = os.path.join(tmp, f"{mode}.vmfb")
                with open(paths[mode], "wb") as fh:
                    fh.write(vmfb)
            row["ms"] = interleaved_medians(paths, x_path, args.rounds)
            rows.append(row)
            print(model, h, c, f, row["auto_choice"], {k: round(v, 3) for k, v in row["ms"].items()}, flush=True)

    peak = peak_gmacs(1)
    meta = {"commit": repo_commit(), "date": datetime.date.today().isoformat(), "machine": machine(),
            "realtime": realtime, "rounds": args.rounds, "peak_gmacs_1t": peak,
            "command": "python benchmarks/pointwise_bench.py " + " ".join(sys.argv[1:])}
    atomic_write(args.out + ".json", json.dumps({"meta": meta, "layers": rows}, indent=1) + "\n")

    def gmacs(row, key):
        g = row["mmacs"] / row["ms"][key]
        return f"{g:.1f}" + (f" ({100 * g / peak:.0f}%)" if peak and key.endswith("@1") else "")

    lines = [f"# Dense 1x1 convs: pconv's tiles vs IREE's data tiling (llvm-cpu), {meta['date']}", "",
             f"{meta['machine']}, commit {meta['commit']}. Command: `{meta['command']}`. Each layer: 1x1 conv + bias "
             "+ ReLU6 on NHWC, through `pconv-convert-to-nhwc{pointwise-tiles=never|always|auto}` and pconv's "
             "iree-compile flags for llvm-cpu (data tiling + ukernels on): *never* = IREE's tiles and data tiling "
             "(pconv before this rule), *always* = pconv's tiles (`cost_model.pointwise_tiles`), *auto* = the "
             "cost model's choice. All match numpy (rel err <= 1e-4). ms: median of "
             f"{args.rounds} interleaved rounds of iree-benchmark-module (each a median of 5); 1 thread: "
             "local-sync, 2 threads: local-task. GMAC/s at 1 thread, % of this CPU's fp32 FMA peak "
             f"({peak:.0f} GMAC/s, results/cpu_peak.md). Real-time priority: {'yes' if realtime else 'no'}.", "",
             "| model | layer | MMAC | auto picks | never 1T ms | always 1T ms | auto 1T ms | auto/never 1T | "
             "never 2T ms | auto 2T ms | auto/never 2T | auto GMAC/s 1T |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ms = r["ms"]
        lines.append(f"| {r['model']} | {r['map']}x{r['map']} {r['C']}->{r['F']} | {r['mmacs']:.1f} | "
                     f"{'pconv tiles' if r['auto_choice'] == 'pconv' else 'data tiling'} | {ms['never@1']:.3f} | "
                     f"{ms['always@1']:.3f} | {ms['auto@1']:.3f} | {ms['never@1'] / ms['auto@1']:.2f}x | "
                     f"{ms['never@2']:.3f} | {ms['auto@2']:.3f} | {ms['never@2'] / ms['auto@2']:.2f}x | "
                     f"{gmacs(r, 'auto@1')} |")
    for model in sorted({r["model"] for r in rows}):
        sel = [r for r in rows if r["model"] == model]
        for t in (1, 2):
            never, auto = sum(r["ms"][f"never@{t}"] for r in sel), sum(r["ms"][f"auto@{t}"] for r in sel)
            lines.append(f"\n{model}, sum over its distinct 1x1 shapes (each once), {t} thread{'s' * (t > 1)}: "
                         f"never {never:.2f} ms, auto {auto:.2f} ms ({never / auto:.2f}x).")
    atomic_write(args.out + ".md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
