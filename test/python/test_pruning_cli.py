"""``pconv prune`` through its argparse hooks, on a tiny model and one epoch per phase."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

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


def test_prune_defaults_to_a_group_size_the_compiler_accelerates():
    args = parse(["prune", "--out", "x.pt"])
    assert args.group_size == 8 and args.keep_1x1 == 0.5 and args.group_size_1x1 is None
    assert not args.prune_1x1 and not args.prune_unaccelerated


def test_prune_1x1_blocks_flags(tmp_path, capsys):
    out = tmp_path / "r.pt"
    args = parse(["prune", "--model", "small_resnet", "--model-arg", "width=8", "--model-arg", "blocks=[1, 1]",
                  "--epochs", "1", "--admm-epochs", "1", "--retrain-epochs", "1", "--prune-1x1",
                  "--keep-1x1", "0.25", "--group-size-1x1", "4", "--out", str(out)])
    assert args.handler(args) == 0
    printed = capsys.readouterr().out
    assert "6 1x1 to blocks (keep 0.25, G=4)" in printed
    assert "convs lowered as pattern convs" in printed and "1 input channel (< 8)" in printed
    model, meta = load_pruned(out)
    blocks = [layer for layer in meta.layers if layer.kind == "connectivity"]
    assert len(blocks) == 6 and {(l.keep, l.group_size) for l in blocks} == {(0.25, 4)}
    assert meta.config["keep_1x1"] == 0.25 and meta.config["group_size_1x1"] == 4
    # the two 3x3 | the stem and the six 1x1, whose blocks keep < 16 input channels at this width
    assert (meta.info["pattern_convs"], meta.info["dense_convs"]) == (2, 7)
    stem = model.get_submodule("stem.0")  # 1 input channel: left dense by default
    assert "stem.0" not in [layer.name for layer in meta.layers] and stem.weight.count_nonzero() == stem.weight.numel()


def test_prune_unaccelerated_flag(tmp_path):
    out = tmp_path / "m.pt"
    args = parse(["prune", "--model-arg", "width=4", "--epochs", "1", "--admm-epochs", "0", "--retrain-epochs", "1",
                  "--mode", "oneshot", "--prune-unaccelerated", "--quiet", "--out", str(out)])
    assert args.handler(args) == 0
    _, meta = load_pruned(out)
    assert meta.layers[0].name == "0.0"  # the 1-channel stem is pruned on request


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--keep-1x1", "0"], "keep_1x1 must be in (0, 1], got 0.0"),
        (["--keep-1x1", "1.5"], "keep_1x1 must be in (0, 1], got 1.5"),
        (["--group-size-1x1", "0"], "group_size_1x1 must be >= 1"),
        (["-G", "0"], "group_size must be >= 1"),
    ],
)
def test_prune_rejects_bad_1x1_values(flags, message):
    args = parse(["prune", "--prune-1x1", *flags, "--out", "x.pt"])
    with pytest.raises(PconvInputError, match=re.escape(message)):
        args.handler(args)


def test_prune_bad_value_is_one_line_and_nonzero_exit(tmp_path):
    pconv = Path(sys.executable).parent / "pconv"
    done = subprocess.run([str(pconv), "prune", "--prune-1x1", "--keep-1x1", "-1", "--out", str(tmp_path / "x.pt")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0 and "keep_1x1 must be in (0, 1], got -1.0" in done.stderr
