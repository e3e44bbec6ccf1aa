"""MNIST on disk: finding and checking the four IDX files, and the seeded train/validation split.

NumPy only, so that the Chainer reference script reads exactly the same arrays and split as the
Lightning DataModule without importing torch.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

#: The four files in torchvision's layout (``<data_dir>/MNIST/raw/<name>``) with their IDX magic numbers.
TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"
FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)
#: Mean and standard deviation of the training images' pixels in [0, 1], for ``--normalize``.
PIXEL_MEAN = 0.1307
PIXEL_STD = 0.3081
IMAGE_MAGIC = 2051
LABEL_MAGIC = 2049
IMAGE_SIZE = 28


class MNISTDataError(RuntimeError):
    """The MNIST files are missing, truncated or not MNIST; the message says which and where."""


def raw_folder(data_dir: str | os.PathLike) -> Path:
    """The folder torchvision's ``MNIST(root=data_dir)`` reads and downloads into."""
    return Path(data_dir) / "MNIST" / "raw"


def missing_files(data_dir: str | os.PathLike) -> list[str]:
    """Names of the four IDX files that are not in ``raw_folder(data_dir)``."""
    raw = raw_folder(data_dir)
    return [name for name in FILES if not (raw / name).is_file()]


def check_files_present(data_dir: str | os.PathLike) -> None:
    """Raise MNISTDataError naming the missing files and the folder they belong in."""
    missing = missing_files(data_dir)
    if missing:
        raise MNISTDataError(
            f"MNIST file{'s' if len(missing) > 1 else ''} {', '.join(missing)} not found in "
            f"{raw_folder(data_dir)}: download them from https://yann.lecun.com/exdb/mnist/ (uncompressed) "
            "into that folder, or point --data-dir at a folder that holds MNIST/raw/."
        )


def _idx_shape(path: Path, magic: int) -> tuple[int, ...]:
    """The shape in an IDX file's header, after checking its magic number and that its length matches."""
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(4)
        if len(head) < 4:
            raise MNISTDataError(f"{path} is truncated: {size} bytes, too short for an IDX header.")
        found = int.from_bytes(head, "big")
        if found != magic:
            raise MNISTDataError(f"{path} is not an MNIST IDX file: magic number {found}, expected {magic}.")
        dims = f.read(4 * head[3])
    if len(dims) < 4 * head[3]:
        raise MNISTDataError(f"{path} is truncated: its header is incomplete.")
    shape = tuple(int.from_bytes(dims[4 * i : 4 * i + 4], "big") for i in range(head[3]))
    expected = 4 + len(dims) + int(np.prod(shape))
    if size != expected:
        raise MNISTDataError(
            f"{path} is {'truncated' if size < expected else 'too long'}: {size} bytes, "
            f"expected {expected} for shape {shape}."
        )
    return shape


def read_idx(path: str | os.PathLike, magic: int) -> np.ndarray:
    """Read one uncompressed IDX file of unsigned bytes, checking its magic number and its length."""
    path = Path(path)
    shape = _idx_shape(path, magic)
    offset = 4 + 4 * len(shape)
    return np.frombuffer(path.read_bytes(), dtype=np.uint8, offset=offset).reshape(shape)


def _check_pair(raw: Path, image_file: str, label_file: str) -> None:
    images = _idx_shape(raw / image_file, IMAGE_MAGIC)
    labels = _idx_shape(raw / label_file, LABEL_MAGIC)
    if len(images) != 3 or images[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise MNISTDataError(
            f"{raw / image_file} holds images of shape {images[1:]}, expected ({IMAGE_SIZE}, {IMAGE_SIZE})."
        )
    if len(labels) != 1 or labels[0] != images[0]:
        raise MNISTDataError(
            f"{raw / image_file} has {images[0]} images but {raw / label_file} has {labels[0]} labels."
        )


def check_files(data_dir: str | os.PathLike) -> None:
    """Check all four files (presence, magic numbers, shapes, lengths, counts) from their headers alone.

    Cheap enough to run before training starts, so a bad test file fails the run up front rather than
    after the last epoch.
    """
    check_files_present(data_dir)
    raw = raw_folder(data_dir)
    _check_pair(raw, TRAIN_IMAGES, TRAIN_LABELS)
    _check_pair(raw, TEST_IMAGES, TEST_LABELS)


def load_split(data_dir: str | os.PathLike, train: bool) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 28, 28) uint8 and labels (N,) int64 of the training (60,000) or test (10,000) set."""
    check_files_present(data_dir)
    raw = raw_folder(data_dir)
    image_file, label_file = (TRAIN_IMAGES, TRAIN_LABELS) if train else (TEST_IMAGES, TEST_LABELS)
    _check_pair(raw, image_file, label_file)
    images = read_idx(raw / image_file, IMAGE_MAGIC)
    labels = read_idx(raw / label_file, LABEL_MAGIC)
    if labels.size and labels.max() > 9:
        raise MNISTDataError(f"{raw / label_file} holds label {labels.max()}, expected digits 0-9.")
    return images, labels.astype(np.int64)


def split_indices(n: int, val_ratio: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint (train, validation) index arrays: the two parts of a seeded permutation of ``range(n)``.

    The permutation comes from NumPy's PCG64 seeded with ``seed`` alone, so it is the same on every
    machine and run and does not touch (or depend on) any global RNG.
    """
    if not 0.0 < val_ratio < 1.0:
        raise ValueError(f"val_ratio must be between 0 and 1, got {val_ratio}.")
    n_val = int(round(n * val_ratio))
    order = np.random.Generator(np.random.PCG64(seed)).permutation(n)
    return order[: n - n_val], order[n - n_val :]
