"""``pconv prune`` through its argparse hooks, on a tiny model and one epoch per phase."""

from __future__ import annotations

import argparse

import pytest

from pconv_mlir.cli.prune import add_parser
from pconv_mlir.errors import PconvInputError
from pconv_mlir.pruning import load_pruned

pytestmark = pytest.mark.usefixtures("one_thread")


def parse(argv):
    parser = argparse.ArgumentParser(prog="pconv")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_prune_writes_a_loadable_model(tmp_path, capsys):
    out = tmp_path / "m.pt"
    args = parse(["prune", "--model-arg", "width=4", "--epochs", "1", "--admm-epochs", "1", "--retrain-epochs", "1",
                  "-G", "4", "--patterns", "4", "--out", str(out)])
    assert args.handler(args) == 0
    assert "pruned" in capsys.readouterr().out
    model, meta = load_pruned(out)
    assert meta.arch_kwargs["width"] == 4 and meta.config["group_size"] == 4
    assert meta.info["mode"] == "admm" and 0.0 <= meta.info["accuracy"] <= 100.0
    assert meta.input_shape == [1, 1, 16, 16]
    assert all(len(layer.library) == 4 for layer in meta.layers)


def test_prune_reports_bad_input(tmp_path):
    args = parse(["prune", "--dataset", "cifar10", "--data-dir", str(tmp_path / "none"), "--out", "x.pt"])
    with pytest.raises(PconvInputError, match="does not exist"):
        args.handler(args)
    args = parse(["prune", "--patterns", "20", "--out", "x.pt"])
    with pytest.raises(PconvInputError, match="num_patterns"):
        args.handler(args)
    with pytest.raises(SystemExit):
        parse(["prune", "--model-arg", "width", "--out", "x.pt"])
