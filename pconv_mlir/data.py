"""Datasets for pruning runs: scikit-learn's digits built in, CIFAR-10 from a user's folder.

Digits (1797 real 8x8 handwritten digits) ships inside the scikit-learn wheel, so accuracy
can be measured on real data with no download. CIFAR-10 is read from the standard
"python version" batches (``data_batch_1`` .. ``data_batch_5``, ``test_batch``).
"""

from __future__ import annotations

import io
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

__all__ = ["DataSplit", "load_digits", "load_cifar10", "load_dataset", "DATASETS"]


@dataclass
class DataSplit:
    """Normalised float32 images (N, C, H, W) and int64 labels, train and test."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int

    @property
    def in_channels(self) -> int:
        return int(self.x_train.shape[1])

    def loaders(self, batch_size: int = 64, seed: int = 0) -> tuple[DataLoader, DataLoader]:
        """(shuffled train loader, ordered test loader); the shuffle order follows ``seed``."""
        generator = torch.Generator().manual_seed(seed)
        train = DataLoader(TensorDataset(self.x_train, self.y_train), batch_size, shuffle=True, generator=generator)
        test = DataLoader(TensorDataset(self.x_test, self.y_test), batch_size=512)
        return train, test


def _standardize(x_train: torch.Tensor, x_test: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel zero mean, unit variance, with statistics of the training set only."""
    mean = x_train.mean(dim=(0, 2, 3), keepdim=True)
    std = x_train.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    return (x_train - mean) / std, (x_test - mean) / std


def load_digits(image_size: int = 16, channels: int = 1, test_fraction: float = 0.3, seed: int = 0) -> DataSplit:
    """scikit-learn's digits, bilinearly resized to ``image_size`` and repeated over
    ``channels`` (3 for RGB models), split stratified by ``seed`` (the split is the same for
    every model trained with that seed)."""
    from sklearn.datasets import load_digits as sk_digits
    from sklearn.model_selection import train_test_split

    if image_size < 4 or channels < 1 or not 0.0 < test_fraction < 1.0:
        raise ValueError(f"bad digits options: image_size={image_size} channels={channels} "
                         f"test_fraction={test_fraction}")
    bunch = sk_digits()
    x = torch.from_numpy(bunch.images.astype(np.float32) / 16.0)[:, None]
    x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False).repeat(1, channels, 1, 1)
    y = torch.from_numpy(bunch.target.astype(np.int64))
    i_train, i_test = train_test_split(np.arange(len(y)), test_size=test_fraction, stratify=y.numpy(),
                                       random_state=seed)
    x_train, x_test = _standardize(x[i_train], x[i_test])
    return DataSplit("digits", x_train, y[i_train], x_test, y[i_test], 10)


_CIFAR_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
_CIFAR_TEST = "test_batch"
_CIFAR_DIR = "cifar-10-batches-py"

# Everything a CIFAR-10 batch pickle may reference: numpy arrays and the codec python 3
# pickles use for bytes. Anything else is refused, so a crafted file cannot run code.
_PICKLE_ALLOWED = {
    ("_codecs", "encode"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
}


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _PICKLE_ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _batch_folder(folder: str | os.PathLike[str]) -> Path:
    """The folder holding the batches: ``folder`` itself or its ``cifar-10-batches-py``."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"CIFAR-10 folder {str(root)!r} does not exist")
    for candidate in (root, root / _CIFAR_DIR):
        if (candidate / _CIFAR_TEST).is_file():
            missing = [n for n in _CIFAR_TRAIN if not (candidate / n).is_file()]
            if missing:
                raise FileNotFoundError(f"CIFAR-10 folder {str(candidate)!r} lacks {', '.join(missing)}")
            return candidate
    raise FileNotFoundError(
        f"no CIFAR-10 batches in {str(root)!r}: expected {_CIFAR_TEST} and data_batch_1..5 there or in "
        f"{_CIFAR_DIR}/ (the 'python version' archive from https://www.cs.toronto.edu/~kriz/cifar.html)"
    )


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) uint8 and labels (N,) of one batch; ValueError if malformed."""
    try:
        batch = _BatchUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except Exception as e:  # any unpickling failure means the same thing to the user
        raise ValueError(f"{path}: not a CIFAR-10 python batch ({e})") from e
    if not isinstance(batch, dict):
        raise ValueError(f"{path}: not a CIFAR-10 python batch (holds {type(batch).__name__}, not a dict)")
    data, labels = batch.get(b"data", batch.get("data")), batch.get(b"labels", batch.get("labels"))
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(f"{path}: 'data' must be a uint8 array of shape (N, 3072)")
    labels = np.asarray(labels if labels is not None else [], dtype=np.int64)
    if labels.shape != (data.shape[0],) or (labels.size and not (0 <= labels.min() and labels.max() < 10)):
        raise ValueError(f"{path}: 'labels' must hold one class in 0..9 per image")
    return data.reshape(-1, 3, 32, 32), labels


def load_cifar10(folder: str | os.PathLike[str]) -> DataSplit:
    """CIFAR-10 from the python-pickle batches in ``folder`` (or ``folder/cifar-10-batches-py``).

    FileNotFoundError when the folder or a batch file is missing, ValueError when a batch is
    not in the expected format.
    """
    root = _batch_folder(folder)
    train = [_read_batch(root / name) for name in _CIFAR_TRAIN]
    x_test_u8, y_test = _read_batch(root / _CIFAR_TEST)
    x_train = torch.from_numpy(np.concatenate([x for x, _ in train])).float() / 255.0
    x_test = torch.from_numpy(x_test_u8).float() / 255.0
    x_train, x_test = _standardize(x_train, x_test)
    y_train = torch.from_numpy(np.concatenate([y for _, y in train]))
    return DataSplit("cifar10", x_train, y_train, x_test, torch.from_numpy(y_test), 10)


#: Dataset names the CLI and scripts accept.
DATASETS = ("digits", "cifar10")


def load_dataset(
    name: str, *, data_dir: str | os.PathLike[str] | None = None, image_size: int = 16, seed: int = 0
) -> DataSplit:
    """Load a dataset by name (``image_size`` and ``seed`` apply to digits; CIFAR-10 is
    always 3x32x32 and needs ``data_dir``)."""
    if name == "digits":
        return load_digits(image_size=image_size, seed=seed)
    if name == "cifar10":
        if data_dir is None:
            raise ValueError("cifar10 needs a data folder (the python-pickle batches)")
        return load_cifar10(data_dir)
    raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
