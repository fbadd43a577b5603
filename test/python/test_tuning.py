"""pconv tune and tuning files: round trip, bad / foreign / stale files, applying a file changes the
lowering and never the numbers, the CLI on a 2-layer model (small candidate sets, no timing)."""

import copy
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn

import pconv_mlir
from pconv_mlir.errors import PconvInputError
from pconv_mlir.numerics import TOLERANCE, rel_err
from pconv_mlir.synthetic import pattern_prune_model
from pconv_mlir.tuning import tuning_file
from pconv_mlir.tuning.tuning_file import PconvTuningWarning, load_tuning, save_tuning


@pytest.fixture(scope="module")
def two_layers(tmp_path_factory):
    """A 2-conv pattern-pruned model, its MLIR, input and PyTorch output, and a tuning of it
    (formulation candidates only, local-sync: in-process, whatever local-task already runs)."""
    from pconv_mlir.compiler import import_model

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1)).eval()
    pattern_prune_model(model, group_size=8)
    x = torch.randn(1, 16, 16, 16)
    d = tmp_path_factory.mktemp("tune")
    mlir = d / "two.mlir"
    mlir.write_text(import_model(model, [x]))
    with torch.no_grad():
        ref = model(x).numpy()
    path = d / "tuning.json"
    data = pconv_mlir.tune(str(mlir), target="llvm-cpu", output=path, device="local-sync",
                           candidates=["formulation"], budget_s=0.01, progress=False)
    return {"mlir": str(mlir), "x": x.numpy(), "ref": ref, "path": path, "data": data, "dir": d}


def _compile(two_layers, tuning):
    c = pconv_mlir.compile(two_layers["mlir"], target="llvm-cpu", tuning=tuning)
    y = c.run(two_layers["x"], device="local-sync")
    assert rel_err(y, two_layers["ref"]) <= TOLERANCE
    return c


def test_tune_records_both_convs_and_round_trips(two_layers, tmp_path):
    data = two_layers["data"]
    assert data["version"] == 1 and len(data["entries"]) == 2
    for key, e in data["entries"].items():
        assert key.startswith("llvm-cpu/nhwc/") and e["layer"]["structure"] in key
        assert {c["name"] for c in e["candidates"]} == {"dense", "pattern"}
        assert all(c["measured_ms"] > 0 and c["predicted_ms"] > 0 for c in e["candidates"])
        assert e["untuned"] == "pattern" and e["winner"] in ("dense", "pattern")
    assert load_tuning(two_layers["path"]) == data
    save_tuning(tmp_path / "copy.json", data)
    assert load_tuning(tmp_path / "copy.json") == data


def _with_winner(data, name, tiles=None):
    """A copy of ``data`` whose entries' winner is ``name`` (a new pattern candidate with ``tiles``
    when not there): a measured preference, set by hand."""
    data = copy.deepcopy(data)
    for e in data["entries"].values():
        if name not in [c["name"] for c in e["candidates"]]:
            e["candidates"].append({"name": name, "lowering": "pattern", "tiles": tiles, "predicted_ms": 1.0,
                                    "measured_ms": 0.5})
        e["winner"] = name
    return data


def test_tuning_changes_the_lowering_not_the_numbers(two_layers):
    untuned = _compile(two_layers, None)
    assert all(r.tuning is None and "tuned" not in r.lowering for r in untuned.report)
    as_dense = _compile(two_layers, _with_winner(two_layers["data"], "dense"))
    lowered = [r.lowering for r in as_dense.report]
    assert all(lw.startswith("dense (tuned: dense measured fastest)") for lw in lowered), lowered
    assert all(r.tuning["choice"] == "dense" and r.tuning["measured_ms"] > 0 for r in as_dense.report)
    iree_tiles = _compile(two_layers, _with_winner(two_layers["data"], "pattern iree-tiles", ""))
    assert all(r.lowering.startswith("pattern") and r.lowering.endswith("tuned tiles") for r in iree_tiles.report)
    assert "compilation_info" not in iree_tiles.mlir or "pconv.tiles" not in iree_tiles.mlir


def test_stale_file_warns_and_compiles_untuned(two_layers):
    data = copy.deepcopy(two_layers["data"])
    data["entries"] = {k[:-16] + "0" * 16: e for k, e in data["entries"].items()}  # another structure
    with pytest.warns(PconvTuningWarning, match="2 accelerated conv.*2 entr"):
        c = _compile(two_layers, data)
    assert all(r.tuning is None for r in c.report)


@pytest.mark.parametrize("mutate,message", [
    (lambda d: "{not json", "not valid JSON"),
    (lambda d: {**d, "version": 2}, "version 2; this pconv reads version 1"),
    (lambda d: {**d, "format": "other"}, "not a pconv tuning file"),
    (lambda d: {**d, "entries": {k: {**e, "winner": "fastest"} for k, e in d["entries"].items()}},
     "is not one of its candidates"),
    (lambda d: {**d, "entries": {k: {**e, "candidates": [{"name": "x", "lowering": "sparse"}]}
                                 for k, e in d["entries"].items()}}, "lowering must be one of"),
    (lambda d: {**d, "entries": {"llvm-cpu-generic" + k[len("llvm-cpu"):]: {**e, "target": "llvm-cpu-generic"}
                                 for k, e in d["entries"].items()}}, "tuned for target.s. llvm-cpu-generic"),
])
def test_bad_files_are_one_line_errors(two_layers, tmp_path, mutate, message):
    bad = mutate(copy.deepcopy(two_layers["data"]))
    path = tmp_path / "bad.json"
    path.write_text(bad if isinstance(bad, str) else json.dumps(bad))
    with pytest.raises(PconvInputError, match=message):
        pconv_mlir.compile(two_layers["mlir"], target="llvm-cpu", tuning=path)
    r = subprocess.run([sys.executable, "-m", "pconv_mlir.cli.main", "compile", two_layers["mlir"], "-o",
                        str(tmp_path / "m.vmfb"), "--tuning", str(path)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "m.vmfb").exists()


def test_tune_cli_reuses_its_file_and_compile_reports_times(two_layers, tmp_path):
    out = tmp_path / "t.json"
    cmd = [sys.executable, "-m", "pconv_mlir.cli.main", "tune", two_layers["mlir"], "-o", str(out), "--threads", "1",
           "--candidates", "formulation", "--budget", "0.01"]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0 and "tuned 2 distinct conv(s) of 2 (0 from the cache)" in first.stdout, first.stderr
    assert "tune [" in first.stderr  # the progress bar
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0 and "(2 from the cache)" in second.stdout, second.stderr
    assert load_tuning(out)["entries"].keys() == two_layers["data"]["entries"].keys()
    r = subprocess.run([sys.executable, "-m", "pconv_mlir.cli.main", "compile", two_layers["mlir"], "-o",
                        str(tmp_path / "m.vmfb"), "--tuning", str(out), "--report", str(tmp_path / "r.json")],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and r.stdout.count("tuned") == 2 and r.stdout.count("measured") == 2, r.stdout + r.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert all(c["tuning"]["predicted_ms"] > 0 for c in report["convolutions"] if c["lowering"].startswith("pattern"))


def test_tune_refuses_bad_options_in_one_line(two_layers, tmp_path):
    base = [sys.executable, "-m", "pconv_mlir.cli.main", "tune", two_layers["mlir"], "-o", str(tmp_path / "t.json")]
    for extra, message in ((["--candidates", "unroll"], "candidate groups"), (["--threads", "0"], "thread count"),
                           (["--margin", "2"], "margin"), (["--target", "arm64-android", "--device", "local-task"],
                                                           "do not run on this host")):
        r = subprocess.run(base + extra, capture_output=True, text=True, timeout=300)
        assert r.returncode == 1 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr




def test_winner_switches_only_past_the_margin(monkeypatch, two_layers):
    """With made-up times: 5% faster stays untuned, 20% faster switches."""
    from pconv_mlir.targets import get_target
    from pconv_mlir.tuning import measure, tuner

    layers = tuner.model_layers(two_layers["mlir"], None, get_target("llvm-cpu"))
    monkeypatch.setattr(measure, "compile_candidate", lambda layer, cand, target: (b"", [1]))
    monkeypatch.setattr(measure, "untuned_choice", lambda layer: "pattern")
    for dense_ms, expected in ((0.95, "pattern"), (0.8, "dense")):
        class Timer:
            def time(self, vmfbs, shape, budget, dense_ms=dense_ms):
                return [dense_ms, 1.0]  # candidates: dense, pattern

        e = tuner._tune_layer(layers[0], get_target("llvm-cpu"), Timer(), ["formulation"], 0.01, tuner.MARGIN)
        assert e["winner"] == expected and e["untuned"] == "pattern"
        tuning_file.check({**tuning_file.empty(), "entries": {layers[0].key("llvm-cpu"): e}}, "test")


def test_phone_without_device_is_one_clear_line(two_layers, tmp_path, monkeypatch):
    from pconv_mlir.errors import PconvRuntimeError

    monkeypatch.setenv("PATH", str(tmp_path))  # no adb
    with pytest.raises(PconvRuntimeError, match="adb not found"):
        pconv_mlir.tune(two_layers["mlir"], target="arm64-android", device="adb", progress=False)
    assert np.isfinite(two_layers["ref"]).all()


def test_pattern_candidate_is_what_the_compile_emits_for_channels_last_1x1_blocks():
    """The tuner's "pattern" candidate of a channels-last 1x1 block conv is the pixel gather the
    untuned compile emits; the tile variants are of the rows form's GEMM."""
    from pconv_mlir.lowering import ConvSpec, cost_model
    from pconv_mlir.lowering.plan import plan_from_weights
    from pconv_mlir.tuning.layer import PATTERN, Layer
    from pconv_mlir.tuning.measure import Candidate, candidate_mlir, gemm_tiles

    spec = ConvSpec(N=1, C=64, H=8, W=8, K=32, padding=0, KH=1, KW=1)
    w = np.zeros((32, 64, 1, 1), np.float32)
    rng = np.random.default_rng(0)
    for s in range(0, 32, 16):
        w[s:s + 16, rng.choice(64, 16, replace=False)] = 1.0
    packed = plan_from_weights(spec, w, 16, cost_model.ROW_MULTIPLE).packed
    layer = Layer(0, spec, packed.weights, packed.channels, packed.taps, np.zeros(32, np.float32), 16, "nhwc", w)
    text, in_type = candidate_mlir(layer, Candidate(PATTERN, PATTERN), own_dense_convs=False)
    assert in_type == "tensor<1x8x8x64xf32>" and cost_model.pixel_gather_tiles(64, 16, 16) in text
    variant = gemm_tiles(16, 32, (1, 8, 16, 0))
    text, _ = candidate_mlir(layer, Candidate("pattern tiles d32", PATTERN, variant), own_dense_convs=False)
    assert variant in text and cost_model.pixel_gather_tiles(64, 16, 16) not in text
