"""Digits from scikit-learn and CIFAR-10 from tiny batch files written here."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from pconv_mlir.data import load_cifar10, load_dataset, load_digits


def test_digits_split_resize_normalise():
    d = load_digits(image_size=16, test_fraction=0.3, seed=0)
    assert d.x_train.shape[1:] == (1, 16, 16) and d.x_train.dtype == torch.float32
    assert len(d.x_train) + len(d.x_test) == 1797 and len(d.x_test) == 540
    assert d.num_classes == 10 and d.in_channels == 1
    assert abs(float(d.x_train.mean())) < 1e-4 and abs(float(d.x_train.std()) - 1) < 1e-3
    # stratified: every class in the test set in about its share
    assert torch.bincount(d.y_test, minlength=10).min() >= 50
    again = load_digits(image_size=16, seed=0)
    assert torch.equal(again.y_test, d.y_test)
    assert not torch.equal(load_digits(image_size=16, seed=1).y_test, d.y_test)


def test_digits_rgb_and_loaders():
    d = load_digits(image_size=32, channels=3)
    assert d.x_test.shape[1:] == (3, 32, 32)
    assert torch.equal(d.x_test[:, 0], d.x_test[:, 2])
    train, test = d.loaders(batch_size=100, seed=3)
    x, y = next(iter(train))
    assert x.shape == (100, 3, 32, 32) and y.dtype == torch.int64
    assert sum(len(y) for _, y in test) == len(d.y_test)
    with pytest.raises(ValueError):
        load_digits(image_size=2)


def write_batch(path, n, rng, protocol=2, **override):
    batch = {
        b"batch_label": b"tiny",
        b"labels": rng.integers(0, 10, n).tolist(),
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        b"filenames": [b"x.png"] * n,
    }
    batch.update(override)
    path.write_bytes(pickle.dumps(batch, protocol=protocol))
    return batch


def write_cifar(folder, n=4):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    batches = {name: write_batch(folder / name, n, rng) for name in [f"data_batch_{i}" for i in range(1, 6)]}
    batches["test_batch"] = write_batch(folder / "test_batch", n, rng)
    return batches


@pytest.mark.parametrize("nested", [False, True])
def test_cifar10_reads_python_batches(tmp_path, nested):
    batches = write_cifar(tmp_path / "cifar-10-batches-py" if nested else tmp_path)
    d = load_cifar10(tmp_path)
    assert d.x_train.shape == (20, 3, 32, 32) and d.x_test.shape == (4, 3, 32, 32)
    assert d.y_train.tolist() == sum((batches[f"data_batch_{i}"][b"labels"] for i in range(1, 6)), [])
    # the first image's red channel is the first 1024 bytes, row-major, before normalising
    raw = batches["data_batch_1"][b"data"][0, :1024].reshape(32, 32).astype(np.float32) / 255
    red = d.x_train[0, 0].numpy()
    assert np.corrcoef(raw.ravel(), red.ravel())[0, 1] > 0.999
    assert load_dataset("cifar10", data_dir=tmp_path).x_test.shape == (4, 3, 32, 32)


def test_cifar10_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_cifar10(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="no CIFAR-10 batches"):
        load_cifar10(tmp_path)
    write_cifar(tmp_path)
    (tmp_path / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="lacks data_batch_3"):
        load_cifar10(tmp_path)
    with pytest.raises(ValueError, match="needs a data folder"):
        load_dataset("cifar10")


class Evil:
    def __reduce__(self):
        return (print, ("owned",))


@pytest.mark.parametrize(
    "content, message",
    [
        (b"garbage", "not a CIFAR-10 python batch"),
        (pickle.dumps([1, 2]), "not a dict"),
        (pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}), "shape"),
        (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}), "labels"),
        (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8)}), "labels"),
        (pickle.dumps({b"data": Evil(), b"labels": [0]}), "refusing to load builtins.print"),
    ],
    ids=["garbage", "list", "shape", "label-range", "no-labels", "code"],
)
def test_cifar10_malformed(tmp_path, content, message, capsys):
    write_cifar(tmp_path)
    (tmp_path / "data_batch_2").write_bytes(content)
    with pytest.raises(ValueError, match=message):
        load_cifar10(tmp_path)
    assert "owned" not in capsys.readouterr().out
