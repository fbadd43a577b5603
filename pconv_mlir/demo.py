"""The main job (``make demo``): VGG-16 (CIFAR) with pattern-sparse weights, compiled by
pconv and by IREE's dense path, checked against PyTorch and timed, on real images.

Inputs are scikit-learn's handwritten digits (shipped in its wheel), upscaled to 32x32x3.
Weights are random pattern projections (8 patterns, 1/3.6 connectivity, G=32) until the
pruning pipeline's trained models are wired in (see README).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def digits_batch(n: int) -> np.ndarray:
    from sklearn.datasets import load_digits

    images = load_digits().images[:n].astype(np.float32) / 16.0  # (n, 8, 8)
    x = torch.from_numpy(images)[:, None].repeat(1, 3, 1, 1)
    return torch.nn.functional.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False).numpy()


def main(argv=None) -> int:
    import pconv_mlir
    from pconv_mlir.models import build_model
    from pconv_mlir.runtime import bench, load_module
    from pconv_mlir.synthetic import pattern_prune_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--group-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    model = pattern_prune_model(build_model("vgg16_cifar").eval(), seed=0, group_size=args.group_size)
    x = digits_batch(1)
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    results = {}
    for name, dense in (("iree-dense", True), ("pconv", False)):
        t0 = time.perf_counter()
        compiled = pconv_mlir.compile(model, [torch.from_numpy(x)], target="llvm-cpu", dense=dense)
        module = load_module(compiled.vmfb, device="local-task", threads=1)
        got = module.run(x)[0]
        err = float(np.abs(got - want).max() / np.abs(want).max())
        results[name] = dict(compile_s=time.perf_counter() - t0, module=module, rel_err=err, report=compiled.report)
    # Interleave the timing rounds so both see the same machine state.
    times = {name: [] for name in results}
    for _ in range(5):
        for name, r in results.items():
            times[name].append(bench(r["module"], [x], warmup=2, repeats=max(1, args.repeats // 5))["median_ms"])
    pattern_layers = sum(line.lowering.startswith("pattern") for line in results["pconv"]["report"])
    print(f"VGG-16 (CIFAR), batch 1, llvm-cpu, 1 thread, G={args.group_size}; {pattern_layers} of "
          f"{len(results['pconv']['report'])} convs lowered as pattern convs")
    print(f"{'build':<12}{'rel err vs torch':>18}{'median ms':>12}{'compile s':>12}")
    for name, r in results.items():
        print(f"{name:<12}{r['rel_err']:>18.2e}{np.median(times[name]):>12.2f}{r['compile_s']:>12.1f}")
    speedup = np.median(times["iree-dense"]) / np.median(times["pconv"])
    print(f"pconv speed-up over IREE dense (im2col flags): {speedup:.2f}x")
    return 0 if all(r["rel_err"] <= 1e-4 for r in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
