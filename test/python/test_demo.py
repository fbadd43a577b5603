"""The main job's fast variant: train, prune, compile dense and pconv, evaluate through the
compiled modules, write the report; a re-run reuses the cache; the seed reproduces the training."""

import json

import torch

from pconv_mlir.data import load_digits
from pconv_mlir.demo import FAST, main, run, train_and_prune


def test_fast_demo(tmp_path):
    result = run(FAST, tmp_path, target="llvm-cpu", progress=False)
    dense, pconv = result["models"]
    (cpu,) = result["devices"]
    assert cpu["label"] == "CPU (llvm-cpu, 1 thread)" and result["speedup"] == {"cpu": cpu["speedup"]}
    # The compiled modules give the same predictions as the PyTorch models they came from.
    assert min(cpu["agreement"].values()) > 0.99
    assert abs(cpu["accuracy"]["IREE dense"] - dense["acc_torch"]) < 0.2
    assert abs(cpu["accuracy"]["pconv"] - pconv["acc_torch"]) < 0.2
    assert pconv["macs"] < dense["macs"] / 4 and pconv["weight_bytes"] < dense["weight_bytes"]
    residual = result["training"]["admm_residual"]
    assert len(residual) == FAST.admm_epochs + 1
    report = (tmp_path / "report.md").read_text()
    assert report.startswith("# PCONV demo") and "CPU (llvm-cpu, 1 thread)" in report
    assert result["commit"] in report and result["command"] in report
    assert (tmp_path / "report.png").stat().st_size > 1000
    cached = sorted(p.name for p in (tmp_path / "cache").glob("*.vmfb"))
    again = run(FAST, tmp_path, target="llvm-cpu", progress=False)
    assert sorted(p.name for p in (tmp_path / "cache").glob("*.vmfb")) == cached
    assert again["training"]["cached"] and again["devices"][0]["accuracy"] == cpu["accuracy"]
    assert json.loads((tmp_path / "report.json").read_text())["devices"][0]["target"] == "llvm-cpu"


def test_training_is_reproducible(tmp_path):
    """Same seed, fresh caches: the same weights, whatever ran before in the process."""
    data = load_digits(image_size=FAST.image_size, seed=FAST.seed)
    first = train_and_prune(FAST, data, tmp_path / "a", progress=False)
    torch.manual_seed(123)  # the global RNG state must not matter
    second = train_and_prune(FAST, data, tmp_path / "b", progress=False)
    assert first[2] == second[2]
    for model_a, model_b in ((first[0], second[0]), (first[1], second[1])):
        for (name, a), (_, b) in zip(model_a.state_dict().items(), model_b.state_dict().items()):
            assert torch.equal(a, b), name


def test_bad_target_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("LP_NUM_THREADS", raising=False)  # main sets it; undone after the test
    assert main(["--target", "nope", "--out", str(tmp_path), "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("demo: error: --target 'nope'") and "\n" not in err
