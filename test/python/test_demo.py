"""The main job's fast variant: train, prune, compile dense and pconv, evaluate through the
compiled modules, write the report; a re-run reuses the cache."""

import json

from pconv_mlir.demo import FAST, run


def test_fast_demo(tmp_path):
    result = run(FAST, tmp_path, target="llvm-cpu", progress=False)
    dense, pconv = result["rows"]
    # The compiled modules give the same predictions as the PyTorch models they came from.
    assert abs(dense["acc_compiled"] - dense["acc_torch"]) < 0.2
    assert abs(pconv["acc_compiled"] - pconv["acc_torch"]) < 0.2 and result["agreement"] > 0.99
    assert pconv["macs"] < dense["macs"] / 4 and pconv["weight_bytes"] < dense["weight_bytes"]
    assert (tmp_path / "report.md").read_text().startswith("# pconv demo")
    assert (tmp_path / "report.png").stat().st_size > 1000
    cached = sorted(p.name for p in tmp_path.glob("*.vmfb"))
    again = run(FAST, tmp_path, target="llvm-cpu", progress=False)
    assert sorted(p.name for p in tmp_path.glob("*.vmfb")) == cached
    assert again["rows"][1]["acc_compiled"] == pconv["acc_compiled"]
    assert json.loads((tmp_path / "report.json").read_text())["target"] == "llvm-cpu"
