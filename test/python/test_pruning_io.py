"""save_pruned / load_pruned: lossless round trip and validation on load."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from pconv_mlir.models import small_cnn
from pconv_mlir.patterns import PRUNED, pattern_mask
from pconv_mlir.pruning import PatternPruner, PruningConfig, load_pruned, save_pruned

pytestmark = pytest.mark.usefixtures("one_thread")


def pruned_model(group_size: int = 4):
    torch.manual_seed(0)
    model = small_cnn(width=8, num_classes=5)
    pruner = PatternPruner(PruningConfig(group_size=group_size, num_patterns=6)).prepare(model)
    pruner.hard_prune()
    meta = pruner.finalize()
    meta.info["accuracy"] = 12.5
    meta.input_shape = [1, 1, 16, 16]
    return model, meta


def test_round_trip_is_lossless(tmp_path):
    model, meta = pruned_model()
    path = tmp_path / "m.pt"
    save_pruned(path, model, meta)
    loaded, meta2 = load_pruned(path)
    assert meta2.arch == "small_cnn" and meta2.arch_kwargs == {"num_classes": 5, "in_channels": 1, "width": 8}
    assert meta2.config == meta.config and meta2.info == {"accuracy": 12.5}
    assert meta2.input_shape == [1, 1, 16, 16]
    for a, b in zip(meta.layers, meta2.layers):
        assert (a.name, a.kind, a.library, a.group_size, a.keep, a.conv_groups, a.kernel_size) == (
            b.name, b.kind, b.library, b.group_size, b.keep, b.conv_groups, b.kernel_size
        )
        assert a.pattern_ids.dtype == b.pattern_ids.dtype == np.int64
        assert np.array_equal(a.pattern_ids, b.pattern_ids) and np.array_equal(a.mask, b.mask)
    for (k, v), (k2, v2) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)
    x = torch.randn(2, 1, 16, 16)
    model.eval(), loaded.eval()
    assert torch.equal(model(x), loaded(x))


def test_file_holds_plain_data_only(tmp_path):
    model, meta = pruned_model()
    save_pruned(tmp_path / "m.pt", model, meta)
    raw = torch.load(tmp_path / "m.pt", weights_only=True)
    layer = raw["meta"]["layers"][0]
    assert layer["library"] == [list(p) for p in meta.layers[0].library]
    assert layer["pattern_ids"].shape == (8, 8) and layer["mask"].dtype == torch.bool  # the stem stays dense


def tamper(tmp_path, edit):
    """Save a valid model, let ``edit`` change the raw payload, and write it back."""
    model, meta = pruned_model()
    path = tmp_path / "m.pt"
    save_pruned(path, model, meta)
    raw = torch.load(path, weights_only=True)
    edit(raw)
    torch.save(raw, path)
    return path


def _weight_outside_pattern(raw):
    ids = raw["meta"]["layers"][1]["pattern_ids"]
    k, c = map(int, (ids == PRUNED).nonzero()[0])
    raw["state_dict"][raw["meta"]["layers"][1]["name"] + ".weight"][k, c, 1, 1] = 1.0


def _wrong_shape(raw):
    """Metadata, consistent in itself, for a conv with 3 filters instead of 8."""
    layer = raw["meta"]["layers"][0]
    layer["pattern_ids"] = torch.zeros(3, 1, dtype=torch.long)
    layer["mask"] = torch.from_numpy(pattern_mask(layer["library"][0]) > 0).expand(3, 1, 3, 3).clone()


def _break_group(raw):
    """Give one filter of a G=4 group another pattern on a kept channel (mask kept consistent)."""
    layer = raw["meta"]["layers"][2]
    ids = layer["pattern_ids"]
    c = int((ids[1] != PRUNED).nonzero()[0, 0])
    ids[1, c] = (ids[1, c] + 1) % len(layer["library"])
    layer["mask"][1, c] = torch.from_numpy(pattern_mask(layer["library"][int(ids[1, c])]) > 0)


@pytest.mark.parametrize(
    "edit, message",
    [
        (_weight_outside_pattern, "outside its pattern"),
        (_wrong_shape, "metadata is for"),
        (lambda raw: raw["meta"]["layers"][0].update(name="nope"), "no nn.Conv2d"),
        (lambda raw: raw["meta"]["layers"][0].update(library=[[0, 1, 2, 3]] * 6), "centre"),
        (lambda raw: raw["meta"]["layers"][3]["mask"].logical_not_(), "stored mask"),
        (_break_group, "filters of a group"),
        (lambda raw: raw["meta"]["layers"][3].update(keep=0.9), "expected"),
        (lambda raw: raw["state_dict"].pop("3.weight"), "weights do not fit"),
        (lambda raw: raw.update(format="other"), "not a 'pconv-pruned' file"),
        (lambda raw: raw["meta"].update(arch_kwargs={"depth": 3}), "cannot rebuild"),
    ],
    ids=["outside", "shape", "name", "pattern", "mask", "group", "keep", "state", "format", "kwargs"],
)
def test_load_rejects_mismatch(tmp_path, edit, message):
    with pytest.raises(ValueError, match=message):
        load_pruned(tamper(tmp_path, edit))


def test_load_rejects_garbage(tmp_path):
    path = tmp_path / "junk.pt"
    path.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="not a readable"):
        load_pruned(path)


def test_unregistered_model_needs_model_argument(tmp_path):
    model = nn.Sequential(nn.Conv2d(8, 8, 3))
    pruner = PatternPruner().prepare(model)
    pruner.hard_prune()
    meta = pruner.finalize()
    save_pruned(tmp_path / "m.pt", model, meta)
    with pytest.raises(ValueError, match="pass model="):
        load_pruned(tmp_path / "m.pt")
    loaded, _ = load_pruned(tmp_path / "m.pt", model=nn.Sequential(nn.Conv2d(8, 8, 3)))
    assert torch.equal(loaded[0].weight, model[0].weight)


def test_save_rejects_non_plain_info(tmp_path):
    model, meta = pruned_model()
    meta.info["tensor"] = torch.ones(1)
    with pytest.raises(ValueError, match="plain data"):
        save_pruned(tmp_path / "m.pt", model, meta)


def block_pruned_model():
    """small_resnet (width 8) with 3x3 patterns and 1x1 blocks of 4 at keep 1/3."""
    from pconv_mlir.models import small_resnet

    torch.manual_seed(0)
    model = small_resnet(width=8, blocks=(1, 1))
    config = PruningConfig(prune_1x1=True, keep_1x1=1 / 3, group_size_1x1=4, num_patterns=6)
    pruner = PatternPruner(config).prepare(model)
    pruner.hard_prune()
    return model, pruner.finalize()


def test_block_pruned_round_trip(tmp_path):
    model, meta = block_pruned_model()
    blocks = [layer for layer in meta.layers if layer.kind == "connectivity"]
    assert len(blocks) == 6 and all(layer.group_size == 4 and layer.keep == 1 / 3 for layer in blocks)
    save_pruned(tmp_path / "m.pt", model, meta)
    loaded, meta2 = load_pruned(tmp_path / "m.pt")
    assert meta2.config == meta.config and meta2.config["keep_1x1"] == 1 / 3 and meta2.config["group_size_1x1"] == 4
    for a, b in zip(meta.layers, meta2.layers):
        assert (a.name, a.kind, a.group_size, a.keep) == (b.name, b.kind, b.group_size, b.keep)
        assert np.array_equal(a.pattern_ids, b.pattern_ids)
    for (k, v), (k2, v2) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)
    assert PruningConfig.from_dict(meta2.config) == PruningConfig(
        prune_1x1=True, keep_1x1=1 / 3, group_size_1x1=4, num_patterns=6)


def test_load_rejects_a_broken_block(tmp_path):
    model, meta = block_pruned_model()
    path = tmp_path / "m.pt"
    save_pruned(path, model, meta)
    raw = torch.load(path, weights_only=True)
    layer = next(l for l in raw["meta"]["layers"] if l["kind"] == "connectivity")
    ids = layer["pattern_ids"]
    # filter 1 swaps a kept for a cut channel: its block no longer shares zero columns
    kept, cut = int((ids[1] == 0).nonzero()[0]), int((ids[1] == PRUNED).nonzero()[0])
    ids[1, kept], ids[1, cut] = PRUNED, 0
    layer["mask"][1, kept], layer["mask"][1, cut] = False, True
    weight = raw["state_dict"][layer["name"] + ".weight"]
    weight[1, cut], weight[1, kept] = weight[1, kept].clone(), 0.0
    torch.save(raw, path)
    with pytest.raises(ValueError, match="filters of a group"):
        load_pruned(path)


def test_files_without_the_new_settings_still_load(tmp_path):
    """A file as the code before block pruning wrote it: no keep_1x1, group_size_1x1 or
    prune_unaccelerated in the config; its 1x1 layers were pruned at ``keep``."""
    from pconv_mlir.pruning import summarize

    torch.manual_seed(0)
    model = small_cnn(width=8, num_classes=5)
    pruner = PatternPruner(PruningConfig(group_size=1, num_patterns=6, prune_unaccelerated=True)).prepare(model)
    pruner.hard_prune()
    meta = pruner.finalize()
    path = tmp_path / "old.pt"
    save_pruned(path, model, meta)
    raw = torch.load(path, weights_only=True)
    for key in ("keep_1x1", "group_size_1x1", "prune_unaccelerated"):
        del raw["meta"]["config"][key]
    torch.save(raw, path)
    loaded, meta2 = load_pruned(path)
    config = PruningConfig.from_dict(meta2.config)
    assert config.prune_unaccelerated and config.keep_1x1 == config.keep and config.group_size == 1
    assert summarize(loaded, meta2).convs[0].pruned == "pattern"  # the 1-channel stem was pruned then
