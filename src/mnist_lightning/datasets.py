"""The image classification sets the project trains on, by name: MNIST, Fashion-MNIST and KMNIST.

A data set is one :class:`ImageDataset` entry in :data:`DATASETS`: a loader that returns uint8 images
(N, C, H, W) and int64 labels per split (``"train"``, ``"test"``), a ``prepare`` that checks (and downloads) the
files up front, the per-channel mean and standard deviation of the training pixels in [0, 1] (for
``--normalize``) and the class names. NumPy only, so the Chainer reference script reads the same arrays; the
torchvision download is imported only when it runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mnist_lightning.idx import DataError, IDXFiles

#: The two splits every data set provides.
SPLITS = ("train", "test")

Loader = Callable[[str | os.PathLike, str], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class ImageDataset:
    """One image classification set: how to get it, read it and normalise it.

    Args:
        name: the ``--dataset`` name (``fashion-mnist``).
        title: the name in messages (``Fashion-MNIST``).
        load: ``load(data_dir, split)`` -> images (N, C, H, W) uint8 and labels (N,) int64 for ``"train"`` or
            ``"test"``; raises :class:`DataError` in one sentence for files that are missing or wrong.
        prepare: ``prepare(data_dir)`` checks the files before training, downloading absent ones where it can
            (Lightning calls it on rank 0 only); raises :class:`DataError` in one sentence.
        shape: (C, H, W) of every image; the models are built for it.
        mean: per-channel mean of the training pixels scaled to [0, 1].
        std: per-channel standard deviation of the training pixels scaled to [0, 1].
        class_names: one name per label, in label order.
    """

    name: str
    title: str
    load: Loader
    prepare: Callable[[str | os.PathLike], None]
    shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    class_names: tuple[str, ...]

    @property
    def classes(self) -> int:
        """The number of classes: labels lie in ``0 .. classes - 1``."""
        return len(self.class_names)

    def read(self, data_dir: str | os.PathLike, split: str) -> tuple[np.ndarray, np.ndarray]:
        """``load(data_dir, split)``, checked against this entry: uint8 images of ``shape``, one label each in range.

        Args:
            data_dir: the folder the loader reads.
            split: ``"train"`` or ``"test"``.
        """
        images, labels = self.load(data_dir, split)
        where = f"the {self.title} {split} set"
        if images.dtype != np.uint8 or images.ndim != 4 or tuple(images.shape[1:]) != self.shape:
            raise DataError(
                f"{where} holds {images.dtype} images of shape {tuple(images.shape[1:])}, expected uint8 {self.shape}."
            )
        if labels.shape != (len(images),) or labels.dtype != np.int64:
            raise DataError(f"{where} has {len(images)} images but {labels.dtype} labels of shape {labels.shape}.")
        if labels.size and (labels.min() < 0 or labels.max() >= self.classes):
            raise DataError(f"{where} holds label {labels.max()}, expected labels 0-{self.classes - 1}.")
        return images, labels


@dataclass(frozen=True)
class TorchvisionDownload:
    """A download through ``torchvision.datasets.<class_name>(data_dir, download=True)``, both splits.

    A class rather than a closure, so that a data module holding it pickles (``ddp_spawn`` sends it to each rank).
    A failed download (no network, a proxy, a mirror down) is left to the check that follows it, which names the
    missing files and where to get them.

    Args:
        class_name: the torchvision dataset class (``MNIST``, ``FashionMNIST``, ``KMNIST``).
    """

    class_name: str

    def __call__(self, data_dir: str | os.PathLike) -> None:
        import torchvision.datasets

        dataset_class = getattr(torchvision.datasets, self.class_name)
        try:
            dataset_class(os.fspath(data_dir), train=True, download=True)
            dataset_class(os.fspath(data_dir), train=False, download=True)
        except Exception:
            pass


@dataclass(frozen=True)
class _PrepareIDX:
    """``files.prepare(data_dir, download)`` as a picklable callable."""

    files: IDXFiles
    download: Callable[[str | os.PathLike], None]

    def __call__(self, data_dir: str | os.PathLike) -> None:
        self.files.prepare(data_dir, self.download)


def idx_dataset(
    name: str,
    files: IDXFiles,
    mean: float,
    std: float,
    class_names: tuple[str, ...],
) -> ImageDataset:
    """The entry of a one-channel set stored as IDX files in torchvision's layout, downloaded by torchvision.

    Args:
        name: the ``--dataset`` name.
        files: where the four files live and how they are checked.
        mean: mean of the training pixels in [0, 1].
        std: standard deviation of the training pixels in [0, 1].
        class_names: one name per label.
    """
    download = TorchvisionDownload(files.folder)
    return ImageDataset(
        name=name,
        title=files.title,
        load=files.load,
        prepare=_PrepareIDX(files, download),
        shape=(1, *files.image_size),
        mean=(mean,),
        std=(std,),
        class_names=class_names,
    )


MNIST_FILES = IDXFiles("MNIST", "MNIST", "https://yann.lecun.com/exdb/mnist/")
FASHION_MNIST_FILES = IDXFiles(
    "FashionMNIST", "Fashion-MNIST", "https://github.com/zalandoresearch/fashion-mnist#get-the-data"
)
KMNIST_FILES = IDXFiles("KMNIST", "KMNIST", "https://github.com/rois-codh/kmnist#get-the-data")

MNIST = idx_dataset("mnist", MNIST_FILES, 0.1307, 0.3081, tuple("0123456789"))
FASHION_MNIST = idx_dataset(
    "fashion-mnist",
    FASHION_MNIST_FILES,
    0.2860,
    0.3530,
    ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
)
#: Kuzushiji-MNIST: ten cursive hiragana, named by their modern readings.
KMNIST = idx_dataset(
    "kmnist", KMNIST_FILES, 0.1918, 0.3483, ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo")
)

#: ``--dataset`` name -> entry; a new data set is one more entry here.
DATASETS: dict[str, ImageDataset] = {entry.name: entry for entry in (MNIST, FASHION_MNIST, KMNIST)}


def get_dataset(name: str) -> ImageDataset:
    """The entry registered as ``name``, or ValueError in one sentence naming the choices."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}.")
    return DATASETS[name]
