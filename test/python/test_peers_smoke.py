"""Smoke test of the benchmark against the peers (benchmarks/peers_bench.py, pconv_mlir.peers):
a tiny pattern-pruned CNN through every peer runtime that is installed, checked against
PyTorch and timed once; a peer that is not installed is skipped with the reason. The peers
come with the `bench` extra (`make bench-peers`); without it only PyTorch, IREE dense and
pconv run."""

import json
import os

import pytest

from pconv_mlir.numerics import TOLERANCE
from pconv_mlir.peers import PEERS
from pconv_mlir.peers.bench import markdown, run, write_outputs

# torch.compile is the slowest to set up (a worker process that compiles C++ kernels): kept out of
# the default suite's smoke run; `make bench-peers` runs it.
SMOKE_PEERS = [p for p in PEERS if p != "torch.compile"]


@pytest.fixture(scope="module")
def smoke():
    return run(["small_cnn"], ["pruned"], SMOKE_PEERS, threads=[1], rounds=1, min_time=0.01, group_size=8,
               input_shapes={"small_cnn": (1, 1, 8, 8)}, model_kwargs={"small_cnn": {"width": 8}},
               log=lambda s: None)


@pytest.mark.parametrize("peer", SMOKE_PEERS)
def test_peer(smoke, peer):
    rec = smoke["results"][0]["peers"][peer]
    if rec["status"] == "skipped":
        pytest.skip(f"{peer}: {rec['reason']}")
    assert rec["status"] == "ok", rec.get("reason")
    assert rec["rel_err"] <= TOLERANCE
    assert rec["ms"]["1"] > 0


def test_always_there(smoke):
    """PyTorch, IREE dense and pconv need nothing beyond the default install."""
    peers = smoke["results"][0]["peers"]
    assert [peers[p]["status"] for p in ("pytorch", "iree-dense", "pconv")] == ["ok"] * 3
    assert smoke["results"][0]["pconv_speedup"]["1"]["speedup"] > 0


def test_outputs(smoke, tmp_path):
    out = str(tmp_path / "peers_bench")
    written = write_outputs(smoke, out)
    data = json.loads(open(out + ".json").read())
    assert data["meta"]["threads"] == [1] and data["results"][0]["model"] == "small_cnn"
    md = open(out + ".md").read()
    assert md == markdown(smoke) and "| small_cnn | pruned G=8 | 1 |" in md
    for p in SMOKE_PEERS:
        assert p in md
    if out + ".png" in written:
        assert os.path.getsize(out + ".png") > 1000
