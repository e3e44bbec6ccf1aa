"""The IDX reader's checks and the seeded split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_idx

from mnist_lightning.datasets import MNIST_FILES
from mnist_lightning.idx import DataError, read_idx
from mnist_lightning.split import split_indices


def test_tiny_files_load(tiny_mnist: Path) -> None:
    images, labels = MNIST_FILES.load_split(tiny_mnist, train=True)
    assert images.shape == (200, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (200,) and labels.dtype == np.int64
    test_images, _ = MNIST_FILES.load_split(tiny_mnist, train=False)
    assert test_images.shape == (50, 28, 28)


def test_missing_file_names_the_files_and_folder(tiny_mnist: Path) -> None:
    raw = tiny_mnist / "MNIST" / "raw"
    (raw / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte not found in .*MNIST/raw"):
        MNIST_FILES.load_split(tiny_mnist, train=True)


def test_truncated_file(tiny_mnist: Path) -> None:
    path = tiny_mnist / "MNIST" / "raw" / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match="truncated"):
        MNIST_FILES.load_split(tiny_mnist, train=True)


def test_header_only_fragment(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"\x00\x00")
    with pytest.raises(DataError, match="truncated"):
        read_idx(path, 2051)


def test_wrong_magic(tiny_mnist: Path) -> None:
    path = tiny_mnist / "MNIST" / "raw" / "train-labels-idx1-ubyte"
    write_idx(path, np.zeros(200, np.uint8), magic=0x1234)
    with pytest.raises(DataError, match="magic number 4660, expected 2049"):
        MNIST_FILES.load_split(tiny_mnist, train=True)


def test_wrong_image_size(tiny_mnist: Path) -> None:
    write_idx(tiny_mnist / "MNIST" / "raw" / "train-images-idx3-ubyte", np.zeros((200, 32, 32), np.uint8))
    with pytest.raises(DataError, match=r"shape \(32, 32\), expected \(28, 28\)"):
        MNIST_FILES.load_split(tiny_mnist, train=True)


def test_count_mismatch(tiny_mnist: Path) -> None:
    write_idx(tiny_mnist / "MNIST" / "raw" / "train-labels-idx1-ubyte", np.zeros(150, np.uint8))
    with pytest.raises(DataError, match="200 images but .* has 150 labels"):
        MNIST_FILES.load_split(tiny_mnist, train=True)


def test_split_sizes_disjoint_and_complete() -> None:
    train, val = split_indices(60_000, 0.2, seed=0)
    assert len(train) == 48_000 and len(val) == 12_000
    assert len(np.intersect1d(train, val)) == 0
    assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(60_000))


def test_split_is_deterministic_and_ignores_global_rngs() -> None:
    a = split_indices(60_000, 0.2, seed=3)
    np.random.seed(123)
    torch.manual_seed(123)
    np.random.rand(10)
    b = split_indices(60_000, 0.2, seed=3)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    c = split_indices(60_000, 0.2, seed=4)
    assert not np.array_equal(a[1], c[1])


def test_split_pins_the_first_indices() -> None:
    """The split must not change between versions: seed 0's first validation indices are recorded here."""
    train, val = split_indices(60_000, 0.2, seed=0)
    assert train[:5].tolist() == [4013, 23840, 29603, 43011, 58703]
    assert val[:5].tolist() == [33527, 53069, 2343, 51585, 59187]
    assert int(val.sum()) == 362134064


def test_split_rejects_bad_ratio() -> None:
    with pytest.raises(ValueError, match="val_ratio"):
        split_indices(100, 1.0)


def test_real_mnist_matches_published_counts(mnist_dir: Path) -> None:
    images, labels = MNIST_FILES.load_split(mnist_dir, train=True)
    assert images.shape == (60_000, 28, 28)
    assert np.bincount(labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert abs(images.mean() / 255 - 0.1307) < 1e-4
    _, test_labels = MNIST_FILES.load_split(mnist_dir, train=False)
    assert np.bincount(test_labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
