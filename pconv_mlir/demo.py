"""The main job (``make demo``): PCONV end to end on real handwritten digits.

Trains a CNN on scikit-learn's digits (shipped inside its wheel), prunes it with patterns +
connectivity (ADMM, short schedule, G filters sharing structure), compiles the dense and the
pruned model with IREE (Vulkan when a driver exists: Mesa lavapipe here; the CPU otherwise),
evaluates both on the held-out split *through the compiled modules*, times them on the same
device, and writes a report (markdown + PNG) to the output folder. Re-runs reuse what is
cached there (trained and pruned models, compiled modules) when the settings are unchanged.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn


@dataclasses.dataclass(frozen=True)
class DemoConfig:
    width: int = 32  # small_cnn channels: width, 2*width, 4*width
    image_size: int = 32
    group_size: int = 8
    dense_epochs: int = 8
    admm_epochs: int = 6
    retrain_epochs: int = 4
    seed: int = 0
    repeats: int = 20

    def key(self, *parts) -> str:
        text = json.dumps([dataclasses.asdict(self), *parts], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


FAST = DemoConfig(width=8, image_size=16, dense_epochs=2, admm_epochs=2, retrain_epochs=2, repeats=5)


def conv_macs(model: nn.Module, x: torch.Tensor) -> tuple[int, int]:
    """(dense MACs, non-zero-weight MACs) of every Conv2d for one input image."""
    dense = nonzero = 0

    def hook(conv, _inputs, out):
        nonlocal dense, nonzero
        pixels = out.shape[2] * out.shape[3]
        dense += conv.weight.numel() * pixels
        nonzero += int(torch.count_nonzero(conv.weight)) * pixels

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        model(x[:1])
    for h in handles:
        h.remove()
    return dense, nonzero


def train_and_prune(cfg: DemoConfig, data, out: Path, progress: bool):
    """Dense and pruned models, from the cache when present."""
    from pconv_mlir.models import build_model
    from pconv_mlir.pruning import PruningConfig, evaluate, fit, load_pruned, prune_and_retrain, save_pruned

    train, test = data.loaders(batch_size=64, seed=cfg.seed)
    dense_path = out / f"dense-{cfg.key('dense')}.pt"
    pruned_path = out / f"pruned-{cfg.key('pruned')}.pt"
    torch.manual_seed(cfg.seed)
    dense = build_model("small_cnn", in_channels=data.in_channels, width=cfg.width)
    if dense_path.exists():
        dense.load_state_dict(torch.load(dense_path, weights_only=True))
    else:
        fit(dense, train, cfg.dense_epochs, 3e-3, progress=progress, desc="train dense")
        torch.save(dense.state_dict(), dense_path)
    if pruned_path.exists():
        pruned, meta = load_pruned(pruned_path)
    else:
        pruned = build_model("small_cnn", in_channels=data.in_channels, width=cfg.width)
        pruned.load_state_dict(dense.state_dict())
        config = PruningConfig(group_size=cfg.group_size, exclude=("0.0",))  # the 1-channel stem stays dense
        meta = prune_and_retrain(pruned, train, config, "admm", admm_epochs=cfg.admm_epochs,
                                 retrain_epochs=cfg.retrain_epochs, progress=progress)
        meta.input_shape = [1, data.in_channels, cfg.image_size, cfg.image_size]
        save_pruned(pruned_path, pruned, meta)
    dense.eval(), pruned.eval()
    return dense, pruned, {"dense": evaluate(dense, test), "pruned": evaluate(pruned, test)}, meta


def pick_target(requested: str) -> tuple[str, str, str]:
    """(target, device, note): Vulkan when a driver answers (lavapipe here), the CPU otherwise."""
    from pconv_mlir.runtime import vulkan_available

    if requested != "auto":
        return requested, "vulkan" if requested.startswith("vulkan") else "local-task", ""
    if vulkan_available():
        return "vulkan-lavapipe", "vulkan", ""
    return "llvm-cpu", "local-task", "no Vulkan driver found (install mesa-vulkan-drivers): running on the CPU"


def compile_cached(model, x, target: str, dense: bool, path: Path):
    import pconv_mlir

    report_path = path.with_suffix(".json")
    if path.exists() and report_path.exists():
        return path.read_bytes(), json.loads(report_path.read_text())["convolutions"]
    compiled = pconv_mlir.compile(model, [x], target=target, dense=dense)
    compiled.save(path, report_path)
    return compiled.vmfb, compiled.report_dict()["convolutions"]


def accuracy_through(module, x_test: torch.Tensor, y_test: torch.Tensor) -> tuple[float, np.ndarray]:
    """Top-1 accuracy of a batch-1 module over the test split, one image per call (as a phone runs it)."""
    pred = np.array([int(np.asarray(module.run(x_test[i:i + 1].numpy())[0]).argmax()) for i in range(len(x_test))])
    return 100.0 * float((pred == y_test.numpy()).mean()), pred


def torch_predictions(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return model(x).argmax(1).numpy()


def storage_bytes(report: list[dict], model: nn.Module) -> int:
    """Conv weight bytes the pconv module stores: packed weights + index tables for pattern
    convs, dense fp32 for the rest."""
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    total = 0
    for entry, conv in zip(report, convs):
        s = entry.get("storage")
        total += s["packed_bytes"] + s["index_bytes"] if s else conv.weight.numel() * 4
    return total


def median_latency(modules: dict, x: np.ndarray, repeats: int) -> dict[str, float]:
    """Batch-1 latency per module: medians of 5 rounds, the modules interleaved in each."""
    from pconv_mlir.runtime import bench

    times: dict[str, list[float]] = {name: [] for name in modules}
    for _ in range(5):
        for name, module in modules.items():
            times[name].append(bench(module, [x], warmup=2, repeats=max(1, repeats // 5))["median_ms"])
    return {name: float(np.median(t)) for name, t in times.items()}


def write_report(out: Path, rows: list[dict], header: list[str]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = header + ["", "| model | accuracy (PyTorch) | accuracy (compiled) | latency ms (device) | "
                          "latency ms (CPU, 1 thread) | conv weights KiB | conv MACs (M) |",
                      "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['acc_torch']:.2f}% | {r['acc_compiled']:.2f}% | {r['latency_ms']:.3f} | "
                     f"{r['cpu_latency_ms']:.3f} | {r['weight_bytes'] / 1024:.1f} | {r['macs'] / 1e6:.2f} |")
    (out / "report.md").write_text("\n".join(lines) + "\n")
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    names = [r["name"] for r in rows]
    for ax, key, title in zip(axes, ("latency_ms", "acc_compiled", "macs"),
                              ("latency (ms, lower is better)", "held-out accuracy (%)", "conv MACs")):
        ax.bar(names, [r[key] for r in rows], color=["#888888", "#2a7ab9"])
        ax.set_title(title, fontsize=10)
    axes[1].set_ylim(min(r["acc_compiled"] for r in rows) - 5, 100)
    fig.tight_layout()
    fig.savefig(out / "report.png", dpi=110)
    plt.close(fig)
    return out / "report.md"


def run(cfg: DemoConfig, out: Path, target: str = "auto", progress: bool = True) -> dict:
    from tqdm import tqdm

    from pconv_mlir.data import load_digits
    from pconv_mlir.runtime import load_module

    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    data = load_digits(image_size=cfg.image_size, channels=1, seed=cfg.seed)
    dense, pruned, torch_acc, meta = train_and_prune(cfg, data, out, progress)
    target, device, note = pick_target(target)
    if note:
        print(f"note: {note}", file=sys.stderr)
    x1 = data.x_test[:1]
    builds = [("IREE dense", dense, True), ("pconv", pruned, False)]
    rows = []
    compiled = {}
    for name, model, is_dense in tqdm(builds, desc="compile", disable=not progress):
        compiled[name] = compile_cached(model, x1, target, is_dense, out / f"{cfg.key(name, target)}.vmfb")
    modules = {name: load_module(v[0], device=device) for name, v in compiled.items()}
    latency = median_latency(modules, x1.numpy(), cfg.repeats)
    cpu_latency = None
    if target != "llvm-cpu":  # the CPU too: on lavapipe the conv math is not where the time goes
        cpu = {name: load_module(compile_cached(model, x1, "llvm-cpu", is_dense,
                                                out / f"{cfg.key(name, 'llvm-cpu')}.vmfb")[0], device="local-sync")
               for name, model, is_dense in builds}
        cpu_latency = median_latency(cpu, x1.numpy(), cfg.repeats)
    predictions = {}
    for name, model, _ in builds:
        report = compiled[name][1]
        acc, predictions[name] = accuracy_through(modules[name], data.x_test, data.y_test)
        dense_macs, nonzero_macs = conv_macs(model, x1)
        rows.append({"name": name, "acc_torch": torch_acc["dense" if model is dense else "pruned"], "acc_compiled": acc,
                     "latency_ms": latency[name], "cpu_latency_ms": (cpu_latency or latency)[name],
                     "weight_bytes": storage_bytes(report, model) if model is pruned else
                     sum(m.weight.numel() * 4 for m in model.modules() if isinstance(m, nn.Conv2d)),
                     "macs": nonzero_macs if model is pruned else dense_macs,
                     "pattern_convs": sum(e["lowering"].startswith("pattern") for e in report), "convs": len(report)})
    speedup = rows[0]["latency_ms"] / rows[1]["latency_ms"]
    cpu_speedup = rows[0]["cpu_latency_ms"] / rows[1]["cpu_latency_ms"]
    header = [f"# pconv demo: digits, small_cnn(width={cfg.width}), {cfg.image_size}x{cfg.image_size}",
              "", f"- target `{target}`, device `{device}`{' (' + note + ')' if note else ''}; batch 1 latency: "
              f"median of 5 interleaved rounds; accuracy on the {len(data.y_test)} held-out images through the "
              f"compiled modules (batch 1)",
              f"- pruning: 8 patterns, 1/3.6 connectivity, G={cfg.group_size}, ADMM {cfg.admm_epochs} + retrain "
              f"{cfg.retrain_epochs} epochs after {cfg.dense_epochs} dense epochs, seed {cfg.seed}; "
              f"{rows[1]['pattern_convs']} of {rows[1]['convs']} convs lowered as pattern convs",
              f"- pconv vs IREE dense on the same device: **{speedup:.2f}x**"
              + (f"; on the CPU (llvm-cpu, 1 thread): **{cpu_speedup:.2f}x**" if cpu_latency else ""),
              f"- command: `python -m pconv_mlir.demo --out {out}`"]
    path = write_report(out, rows, header)
    result = {"rows": rows, "speedup": speedup, "cpu_speedup": cpu_speedup, "target": target, "device": device,
              "report": str(path),
              "agreement": float((predictions["pconv"] == torch_predictions(pruned, data.x_test)).mean())}
    (out / "report.json").write_text(json.dumps(result, indent=2) + "\n")
    print(path.read_text())
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pconv_mlir.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out/demo", help="output folder (cache and report)")
    parser.add_argument("--target", default="auto", help="auto (Vulkan if available, else CPU) or a pconv target")
    parser.add_argument("--fast", action="store_true", help="tiny model and 1-2 epochs (the test suite's variant)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    from pconv_mlir.errors import PconvError

    t0 = time.perf_counter()
    try:
        run(FAST if args.fast else DemoConfig(), Path(args.out), args.target, progress=not args.quiet)
    except PconvError as err:
        print(f"demo: error: {err}", file=sys.stderr)
        return 1
    print(f"done in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
