"""The main job (``make demo``): PCONV end to end on real handwritten digits.

Trains small_cnn on scikit-learn's digits (shipped inside its wheel), prunes it with patterns +
connectivity (ADMM, then masked retraining; G filters share structure), compiles the dense and
the pruned model with IREE, evaluates both on the held-out split *through the compiled modules*
and times them at batch 1 on the CPU (llvm-cpu, 1 thread) and, when a Vulkan driver exists, on
Vulkan (Mesa lavapipe here, LP_NUM_THREADS=1 unless set). Writes report.md, report.json and
report.png to the output folder (``results/demo``).

Training is reproducible: each phase starts from its own seed and data order, on a fixed
number of threads with deterministic algorithms, so a cached phase gives what a fresh one
would. The cache (``<out>/cache``: trained models keyed by the settings and the training code,
compiled modules keyed by their weights) only saves time.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import io
import json
import os
import shlex
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

MODELS = ("IREE dense", "pconv")


@dataclasses.dataclass(frozen=True)
class DemoConfig:
    width: int = 32  # small_cnn channels: width, 2*width, 4*width
    image_size: int = 32
    group_size: int = 8
    dense_epochs: int = 8
    admm_epochs: int = 8
    retrain_epochs: int = 6
    dense_lr: float = 3e-3
    # Adam moves a weight ~lr per step: 3e-3 lets ADMM carry the cut weights to zero in
    # 8 epochs of 20 steps, 1e-3 does not (pruning.admm); rho then only has to dominate.
    admm_lr: float = 3e-3
    retrain_lr: float = 1e-3
    rho: float = 1.0
    rho_growth: float = 1.5
    rho_max: float = 10.0
    batch_size: int = 64
    train_threads: int = 1  # fixed: float sums split over threads differ with the count
    seed: int = 0
    repeats: int = 20

    def key(self, *parts) -> str:
        """Cache key over what the trained weights depend on: the settings, torch's version and
        the training code, so that a cache left by other code is never reused."""
        settings = {k: v for k, v in dataclasses.asdict(self).items() if k != "repeats"}
        text = json.dumps([settings, torch.__version__, _training_code_digest(), *parts], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def _training_code_digest() -> str:
    root = Path(__file__).resolve().parent
    files = [root / "demo.py", root / "models.py", root / "data.py", *sorted((root / "pruning").glob("*.py"))]
    return hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()


FAST = DemoConfig(width=8, image_size=16, dense_epochs=2, admm_epochs=2, retrain_epochs=2, repeats=5)


@dataclasses.dataclass(frozen=True)
class Device:
    key: str  # "cpu" or "vulkan"
    target: str
    runtime: str  # iree.runtime device
    label: str


CPU = Device("cpu", "llvm-cpu", "local-sync", "CPU (llvm-cpu, 1 thread)")


def vulkan_device(target: str) -> Device:
    if target == "vulkan-lavapipe":
        threads = os.environ.get("LP_NUM_THREADS") or f"{os.cpu_count()} (Mesa default)"
        return Device("vulkan", target, "vulkan", f"Vulkan (Mesa lavapipe, a CPU emulation of a GPU, "
                                                  f"LP_NUM_THREADS={threads})")
    return Device("vulkan", target, "vulkan", f"Vulkan ({target})")


def pick_devices(requested: str) -> tuple[list[Device], str]:
    """(devices, note): always the CPU; Vulkan too for ``auto`` when a driver answers."""
    from pconv_mlir.errors import PconvInputError
    from pconv_mlir.runtime import vulkan_available
    from pconv_mlir.targets import target_names

    if requested == "llvm-cpu":
        return [CPU], ""
    if requested == "auto":
        if vulkan_available():
            return [CPU, vulkan_device("vulkan-lavapipe")], ""
        return [CPU], "no Vulkan driver found (install mesa-vulkan-drivers): CPU only"
    if not requested.startswith("vulkan") or requested not in target_names():
        vulkan = [t for t in target_names() if t.startswith("vulkan")]
        raise PconvInputError(f"--target {requested!r}: expected auto, llvm-cpu or one of {', '.join(vulkan)}")
    if not vulkan_available():
        raise PconvInputError(f"--target {requested}: no Vulkan driver found (install mesa-vulkan-drivers)")
    return [CPU, vulkan_device(requested)], ""


@contextlib.contextmanager
def deterministic(threads: int):
    """Fixed thread count and deterministic kernels for the block; restored afterwards."""
    old_threads, old_det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det)


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


def weights_digest(model: nn.Module) -> str:
    h = hashlib.sha256()
    for name, value in model.state_dict().items():
        h.update(name.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:12]


def train_and_prune(cfg: DemoConfig, data, cache: Path, progress: bool):
    """(dense, pruned, torch accuracies, meta, cached): each phase from the cache when present,
    else trained from its own seed, so both ways give the same weights."""
    from pconv_mlir.fileio import save_torch
    from pconv_mlir.models import build_model
    from pconv_mlir.pruning import PruningConfig, evaluate, fit, load_pruned, prune_and_retrain, save_pruned

    dense_path = cache / f"dense-{cfg.key('dense')}.pt"
    pruned_path = cache / f"pruned-{cfg.key('pruned')}.pt"
    cached = dense_path.exists() and pruned_path.exists()
    cache.mkdir(parents=True, exist_ok=True)
    with deterministic(cfg.train_threads):
        torch.manual_seed(cfg.seed)
        dense = build_model("small_cnn", in_channels=data.in_channels, width=cfg.width)
        if dense_path.exists():
            dense.load_state_dict(torch.load(dense_path, weights_only=True))
        else:
            train, _ = data.loaders(batch_size=cfg.batch_size, seed=cfg.seed)
            fit(dense, train, cfg.dense_epochs, cfg.dense_lr, progress=progress, desc="train dense")
            save_torch(dense_path, dense.state_dict())
        if pruned_path.exists():
            pruned, meta = load_pruned(pruned_path)
        else:
            pruned = build_model("small_cnn", in_channels=data.in_channels, width=cfg.width)
            pruned.load_state_dict(dense.state_dict())
            train, _ = data.loaders(batch_size=cfg.batch_size, seed=cfg.seed + 1)  # not the dense run's order
            config = PruningConfig(group_size=cfg.group_size, exclude=("0.0",),  # the 1-channel stem stays dense
                                   rho=cfg.rho, rho_growth=cfg.rho_growth, rho_max=cfg.rho_max)
            meta = prune_and_retrain(pruned, train, config, "admm", admm_epochs=cfg.admm_epochs,
                                     retrain_epochs=cfg.retrain_epochs, admm_lr=cfg.admm_lr,
                                     retrain_lr=cfg.retrain_lr, progress=progress, seed=cfg.seed)
            meta.input_shape = [1, data.in_channels, cfg.image_size, cfg.image_size]
            save_pruned(pruned_path, pruned, meta)
        dense.eval(), pruned.eval()
        _, test = data.loaders(batch_size=cfg.batch_size, seed=cfg.seed)
        acc = {"IREE dense": evaluate(dense, test), "pconv": evaluate(pruned, test)}
    return dense, pruned, acc, meta, cached


def compile_cached(model: nn.Module, x: torch.Tensor, target: str, dense: bool, cache: Path):
    """(vmfb bytes, conv report) for ``model`` on ``target``, keyed by its weights."""
    import pconv_mlir

    stem = f"{'dense' if dense else 'pconv'}-{target}-{weights_digest(model)}-{'x'.join(map(str, x.shape))}"
    path, report_path = cache / f"{stem}.vmfb", cache / f"{stem}.json"
    if path.exists() and report_path.exists():
        return path.read_bytes(), json.loads(report_path.read_text())["convolutions"]
    compiled = pconv_mlir.compile(model, [x], target=target, dense=dense)
    compiled.save(path, report_path)
    return compiled.vmfb, compiled.report_dict()["convolutions"]


def module_predictions(module, x_test: torch.Tensor) -> np.ndarray:
    """Top-1 class of every test image through a batch-1 module, one image per call (as a phone runs it)."""
    return np.array([int(np.asarray(module.run(x_test[i:i + 1].numpy())[0]).argmax()) for i in range(len(x_test))])


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


def headline(result: dict) -> list[str]:
    cpu_acc = result["devices"][0]["accuracy"]
    drop = cpu_acc["IREE dense"] - cpu_acc["pconv"]
    lines = [f"**Accuracy** ({result['test_images']} held-out digits, through the compiled modules at batch 1): "
             f"IREE dense {cpu_acc['IREE dense']:.2f}%, pconv {cpu_acc['pconv']:.2f}% "
             f"({'-' if drop > 0 else '+'}{abs(drop):.2f} pt)"
             + ("; the same on every device below" if all(d["accuracy"] == cpu_acc for d in result["devices"])
                else "; per device in the table"),
             "", "**Speed-up of pconv over IREE dense** (same device, batch 1, median latency):"]
    for d in result["devices"]:
        lat = d["latency_ms"]
        lines.append(f"- {d['label']}: **{d['speedup']:.2f}x** ({lat['IREE dense']:.3f} -> {lat['pconv']:.3f} ms)")
    if any(d["target"] == "vulkan-lavapipe" for d in result["devices"]):
        lines.append("- lavapipe runs the SPIR-V on the CPU: its numbers say nothing about a phone GPU's, and no "
                     "phone GPU was measured.")
    return lines


def write_report(out: Path, result: dict) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pconv_mlir.fileio import atomic_write

    cfg, tr = result["config"], result["training"]
    pconv = result["models"][1]
    res = tr["admm_residual"]
    lines = [f"# PCONV demo: pattern-pruned small_cnn({cfg['width']}) on handwritten digits", "",
             f"Produced by `{result['command']}` at commit `{result['commit']}` in {result['wall_s']:.0f} s "
             f"({'trained models from the cache' if tr['cached'] else 'trained from scratch'}; load average "
             f"{result['load_average'][0]:.1f} -> {result['load_average'][1]:.1f} on {result['cpus']} CPUs, "
             "timings are noisier on a busy machine); every number here is in report.json.", "",
             *headline(result), "", "## Setup", "",
             f"- data: scikit-learn digits, {result['train_images']} train / {result['test_images']} test images "
             f"(stratified split, seed {cfg['seed']}), resized to {cfg['image_size']}x{cfg['image_size']}",
             f"- dense: {cfg['dense_epochs']} epochs, Adam lr {cfg['dense_lr']:g}, batch {cfg['batch_size']}",
             f"- pruning: 8 patterns of 4 taps, connectivity 1/3.6 of the kernels, G={cfg['group_size']} filters "
             f"share both, the 1-channel stem stays dense; ADMM {cfg['admm_epochs']} epochs (Adam lr "
             f"{cfg['admm_lr']:g}, rho {cfg['rho']:g} x{cfg['rho_growth']:g} per epoch up to {cfg['rho_max']:g}; "
             f"residual {' -> '.join(f'{r:.3f}' for r in res)}), hard prune, {cfg['retrain_epochs']} epochs of "
             f"masked retraining (lr {cfg['retrain_lr']:g}); {pconv['pattern_convs']} of {pconv['convs']} convs "
             "lowered as pattern convs",
             f"- reproducible: seed {cfg['seed']}, each phase seeded on its own, {cfg['train_threads']} torch "
             "thread, deterministic algorithms: the same command gives the same weights and accuracies",
             f"- latency: batch 1, median of 5 interleaved rounds (each the median of {max(1, cfg['repeats'] // 5)} "
             "timed calls after 2 warm-up calls)", ""]
    devices = result["devices"]
    head = (["model", "accuracy PyTorch"] + [f"accuracy {d['key']}" for d in devices]
            + [f"latency {d['key']} (ms)" for d in devices] + ["conv weights KiB", "conv MACs (M)"])
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in result["models"]:
        n = m["name"]
        cells = ([n, f"{m['acc_torch']:.2f}%"] + [f"{d['accuracy'][n]:.2f}%" for d in devices]
                 + [f"{d['latency_ms'][n]:.3f}" for d in devices]
                 + [f"{m['weight_bytes'] / 1024:.1f}", f"{m['macs'] / 1e6:.2f}"])
        lines.append("| " + " | ".join(cells) + " |")
    lines += [""] + [f"- {d['key']}: {d['label']}, target `{d['target']}`; predictions agree with PyTorch's on "
                     f"{100 * min(d['agreement'].values()):.1f}% of the images" for d in devices]
    atomic_write(out / "report.md", "\n".join(lines) + "\n")

    names, colors = list(MODELS), ["#888888", "#2a7ab9"]
    fig, axes = plt.subplots(1, len(devices) + 2, figsize=(3.6 * (len(devices) + 2), 3.8))

    def bars(ax, values, fmt, title, ylabel):
        drawn = ax.bar(names, values, color=colors)
        ax.bar_label(drawn, labels=[fmt.format(v) for v in values], fontsize=9)
        ax.set_title(title, fontsize=9)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.set_ylim(0, max(values) * 1.18 or 1)

    for ax, d in zip(axes, devices):
        bars(ax, [d["latency_ms"][n] for n in names], "{:.3f}",
             f"{textwrap.fill(d['label'], 46)}\npconv {d['speedup']:.2f}x faster",
             "latency, batch 1 (ms)")
    bars(axes[-2], [devices[0]["accuracy"][n] for n in names], "{:.2f}%",
         f"held-out accuracy ({result['test_images']} digits)\nthrough the compiled modules", "top-1 (%)")
    axes[-2].set_ylim(0, 110)
    bars(axes[-1], [m["macs"] / 1e6 for m in result["models"]], "{:.2f}", "conv multiply-adds per image",
         "MACs (millions)")
    for ax in axes:
        ax.tick_params(labelsize=8)
    fig.suptitle(f"PCONV demo: small_cnn({cfg['width']}) on digits {cfg['image_size']}x{cfg['image_size']}, "
                 f"G={cfg['group_size']}, seed {cfg['seed']} (commit {result['commit']})", fontsize=10)
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=110)
    plt.close(fig)
    atomic_write(out / "report.png", png.getvalue())
    return out / "report.md"


def run(cfg: DemoConfig, out: Path, target: str = "auto", progress: bool = True, cache: Path | None = None,
        command: str | None = None) -> dict:
    from tqdm import tqdm

    from pconv_mlir.data import load_digits
    from pconv_mlir.fileio import atomic_write, check_output_dir
    from pconv_mlir.provenance import repo_commit
    from pconv_mlir.runtime import load_module

    t0, load0 = time.perf_counter(), os.getloadavg()[0]
    cache = out / "cache" if cache is None else cache
    check_output_dir("--out", out)
    check_output_dir("--cache", cache)
    devices, note = pick_devices(target)  # before training: a bad target fails at once
    if note:
        print(f"note: {note}", file=sys.stderr)
    data = load_digits(image_size=cfg.image_size, channels=1, seed=cfg.seed)
    dense, pruned, torch_acc, meta, cached = train_and_prune(cfg, data, cache, progress)
    builds = {"IREE dense": (dense, True), "pconv": (pruned, False)}
    x1 = data.x_test[:1]
    compiled = {(d.key, name): compile_cached(model, x1, d.target, is_dense, cache)
                for d in tqdm(devices, desc="compile", disable=not progress)
                for name, (model, is_dense) in builds.items()}
    reference = {name: torch_predictions(model, data.x_test) for name, (model, _) in builds.items()}
    device_rows = []
    for d in devices:
        modules = {name: load_module(compiled[d.key, name][0], device=d.runtime) for name in builds}
        latency = median_latency(modules, x1.numpy(), cfg.repeats)
        preds = {name: module_predictions(modules[name], data.x_test) for name in builds}
        device_rows.append({
            "key": d.key, "label": d.label, "target": d.target, "runtime_device": d.runtime, "latency_ms": latency,
            "speedup": latency["IREE dense"] / latency["pconv"],
            "accuracy": {n: 100.0 * float((p == data.y_test.numpy()).mean()) for n, p in preds.items()},
            "agreement": {n: float((p == reference[n]).mean()) for n, p in preds.items()}})
    models = []
    for name, (model, is_dense) in builds.items():
        report = compiled["cpu", name][1]
        dense_macs, nonzero_macs = conv_macs(model, x1)
        models.append({"name": name, "acc_torch": torch_acc[name],
                       "weight_bytes": (sum(m.weight.numel() * 4 for m in model.modules() if isinstance(m, nn.Conv2d))
                                        if is_dense else storage_bytes(report, model)),
                       "macs": dense_macs if is_dense else nonzero_macs,
                       "pattern_convs": sum(e["lowering"].startswith("pattern") for e in report), "convs": len(report)})
    result = {
        "command": command or f"python -m pconv_mlir.demo --out {out}", "commit": repo_commit(),
        "config": dataclasses.asdict(cfg), "note": note,
        "train_images": len(data.y_train), "test_images": len(data.y_test),
        "training": {"cached": cached, "threads": cfg.train_threads, "deterministic": True,
                     "admm_residual": meta.info.get("admm_residual", [])},
        "models": models, "devices": device_rows,
        "accuracy_drop_pt": device_rows[0]["accuracy"]["IREE dense"] - device_rows[0]["accuracy"]["pconv"],
        "speedup": {d["key"]: d["speedup"] for d in device_rows},
        "wall_s": time.perf_counter() - t0, "load_average": [load0, os.getloadavg()[0]],
        "cpus": os.cpu_count(),
    }
    path = write_report(out, result)
    atomic_write(out / "report.json", json.dumps(result, indent=2) + "\n")
    if progress:
        print(path.read_text())
    return result


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="python -m pconv_mlir.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/demo", help="report folder (default: results/demo)")
    parser.add_argument("--cache", default=None, help="trained models and compiled modules (default: <out>/cache)")
    parser.add_argument("--target", default="auto",
                        help="auto (CPU, and Vulkan when a driver exists), llvm-cpu (CPU only) or a vulkan-* target")
    parser.add_argument("--fast", action="store_true", help="tiny model, 2 epochs a phase (the tests' variant)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    from pconv_mlir.errors import PconvError

    # lavapipe reads it when the Vulkan device is created: 1 thread, like the CPU run, unless set.
    os.environ.setdefault("LP_NUM_THREADS", "1")
    command = " ".join(["python -m pconv_mlir.demo", *map(shlex.quote, argv)])
    try:
        result = run(FAST if args.fast else DemoConfig(), Path(args.out), args.target, progress=not args.quiet,
                     cache=None if args.cache is None else Path(args.cache), command=command)
    except PconvError as err:
        print(f"demo: error: {err}", file=sys.stderr)
        return 1
    print(f"done in {result['wall_s']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
