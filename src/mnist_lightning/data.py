"""ImageDataModule: any in-memory image classification set, with a seeded train/validation split.

A data set is an entry of ``datasets.DATASETS`` (MNIST by default): uint8 images (N, C, H, W) per split, their mean
and standard deviation. By default the training set is split 80/20 by seed (MNIST: 48,000 / 12,000) and the test set
is held back for the final test; ``validation="test"`` trains on the whole training set and validates on the test set,
as Chainer's MNIST example does. Two pipelines serve the same images in [0, 1] (or, with ``normalize``, shifted and
scaled by the data set's per-channel mean and standard deviation, as torchvision's ``Normalize(mean, std)``):

- ``"tensor"`` (default): the images are read once into one uint8 tensor and batches are cut by
  indexing, scaled to float per batch; no PIL and no per-sample Python. With ``data_on_device`` the
  whole set lives on the accelerator, so an epoch makes no host-to-device copies.
- ``"torchvision"``: a per-sample :class:`ImageArrays` dataset with a torchvision transform and a ``DataLoader``,
  the path to start from when adding augmentation (override :meth:`ImageDataModule.sample_transform`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from mnist_lightning.datasets import get_dataset
from mnist_lightning.idx import DataError
from mnist_lightning.pixels import channel_values, scale_pixels
from mnist_lightning.split import check_validation, split_indices

PIPELINES = ("tensor", "torchvision")


class EpochShuffle:
    """Index order for one rank: a fresh seeded permutation per epoch, or ``range(n)`` without shuffle.

    Lightning calls ``set_epoch`` at the start of every epoch (resume included), so the order depends
    only on ``(seed, epoch)``. Under DDP each rank takes every ``world_size``-th index; training cuts the
    order to a multiple of ``world_size`` so that every rank runs the same number of steps, evaluation
    keeps every sample exactly once.
    """

    def __init__(
        self, n: int, shuffle: bool, seed: int = 0, rank: int = 0, world_size: int = 1, even: bool = True
    ) -> None:
        self.n, self.shuffle, self.seed = n, shuffle, seed
        self.rank, self.world_size, self.even = rank, world_size, even
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def indices(self) -> torch.Tensor:
        # Made on the CPU whatever torch's default device: a CPU generator gives the same order on every device,
        # and the loader moves it to the data's device once per epoch.
        if self.shuffle:
            generator = torch.Generator(device="cpu").manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(self.n, generator=generator, device="cpu")
        else:
            order = torch.arange(self.n, device="cpu")
        if self.even:
            order = order[: self.n - self.n % self.world_size]
        return order[self.rank :: self.world_size]

    def __len__(self) -> int:
        if self.even:
            return self.n // self.world_size
        return len(range(self.rank, self.n, self.world_size))


class TensorLoader:
    """Batches ``(images / 255, labels)`` cut by index from uint8 (N, C, H, W) tensors in memory (or on the device).

    With ``mean`` and ``std`` (one value per channel) the scaled images are then shifted by ``mean`` and divided by
    ``std``, channel by channel.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        sampler: EpochShuffle,
        mean: tuple[float, ...] | None = None,
        std: tuple[float, ...] | None = None,
    ) -> None:
        self.images, self.labels = images, labels
        self.batch_size = batch_size
        # (C, 1, 1) float32 on the data's device, as torchvision's Normalize broadcasts them.
        self.mean = None if mean is None else channel_values(mean, images.device)
        self.std = None if std is None else channel_values(std, images.device)
        # Lightning looks up ``sampler.set_epoch`` and ``batch_sampler`` the way it does on a DataLoader.
        self.sampler = sampler
        self.batch_sampler = None

    def __len__(self) -> int:
        return -(-len(self.sampler) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = self.sampler.indices().to(self.images.device)
        for batch in order.split(self.batch_size):
            yield scale_pixels(self.images[batch], self.mean, self.std), self.labels[batch]


class ImageArrays(Dataset):
    """Per-sample access to uint8 images (N, C, H, W) and labels: ``transform`` gets one (H, W, C) uint8 array.

    (H, W, C) is what torchvision's ``ToTensor`` (and a PIL image) holds, so any torchvision transform pipeline
    that starts with ``ToTensor`` applies unchanged.

    Args:
        images: uint8 images (N, C, H, W).
        labels: int64 labels (N,).
        transform: what turns one image into the model's input tensor.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform: Callable[[np.ndarray], Any]) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        return self.transform(self.images[index].transpose(1, 2, 0)), int(self.labels[index])


#: What ``setup`` holds per split: (images, labels) as tensors for the ``tensor`` pipeline, as arrays otherwise.
Split = tuple[torch.Tensor, torch.Tensor] | tuple[np.ndarray, np.ndarray]


class ImageDataModule(L.LightningDataModule):
    """An image classification set with a seeded train/validation split; ``setup`` reads the images once per process.

    Args:
        data_dir: the folder the data set's files live in (MNIST: ``<data_dir>/MNIST/raw/``).
        dataset: a name in ``datasets.DATASETS``: ``mnist``, ``fashion-mnist``, ``kmnist``, ...
        batch_size: training batch size.
        test_batch_size: validation and test batch size.
        val_ratio: the share of the training set held out for validation with ``validation="split"``.
        seed: seed of the split and of the per-epoch shuffle.
        num_workers: DataLoader workers of the ``torchvision`` pipeline.
        pipeline: ``tensor`` or ``torchvision`` (see the module's docstring).
        data_on_device: hold the images on the accelerator (default: on for CUDA).
        normalize: shift and scale pixels by the data set's mean and standard deviation.
        validation: ``split`` (a seeded part of the training set) or ``test`` (train on all of it, validate on the
            test set).
    """

    def __init__(
        self,
        data_dir: str | os.PathLike = "data",
        dataset: str = "mnist",
        batch_size: int = 128,
        test_batch_size: int = 1000,
        val_ratio: float = 0.2,
        seed: int = 0,
        num_workers: int = 0,
        pipeline: str = "tensor",
        data_on_device: bool | None = None,
        normalize: bool = False,
        validation: str = "split",
    ) -> None:
        super().__init__()
        # In every checkpoint (``datamodule_hyper_parameters``): a resume can refuse other inputs.
        self.save_hyperparameters(ignore=["data_dir", "num_workers", "data_on_device"])
        if pipeline not in PIPELINES:
            raise ValueError(f"unknown data pipeline {pipeline!r}: choose one of {', '.join(PIPELINES)}.")
        check_validation(validation)
        self.info = get_dataset(dataset)
        self.data_dir = os.fspath(data_dir)
        self.batch_size, self.test_batch_size = batch_size, test_batch_size
        self.val_ratio, self.seed, self.validation = val_ratio, seed, validation
        self.num_workers, self.pipeline, self.data_on_device = num_workers, pipeline, data_on_device
        self.normalize = normalize
        self._train: Split | None = None
        self._test: Split | None = None
        self.train_idx: torch.Tensor | None = None
        self.val_idx: torch.Tensor | None = None

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of every image, from the data set's entry: known before any file is read."""
        return self.info.shape

    @property
    def num_classes(self) -> int:
        """The number of classes (labels lie in ``0 .. num_classes - 1``), from the data set's entry."""
        return self.info.classes

    def prepare_data(self) -> None:
        """Check the data set's files, downloading those that are absent where it can (Lightning: rank 0 only).

        Runs on every start, so bad files (a label out of range, a FIFO, an unreadable file) stop the run before
        training. Something other than a file in a file's place is reported, never downloaded over.
        """
        self.info.prepare(self.data_dir)

    def _device(self) -> torch.device:
        if self.trainer is None:
            return torch.device("cpu")
        device = self.trainer.strategy.root_device
        on_device = self.data_on_device if self.data_on_device is not None else device.type == "cuda"
        return device if on_device else torch.device("cpu")

    def sample_transform(self, split: str) -> Callable[[np.ndarray], Any]:
        """The ``torchvision`` pipeline's per-sample transform of ``split`` (``train``, ``val``, ``test``).

        ``ToTensor`` (then ``Normalize`` with ``normalize``) for every split; override it to add augmentation to
        ``train``.

        Args:
            split: the split whose loader applies it.
        """
        from torchvision import transforms

        transform = transforms.ToTensor()
        if self.normalize:
            return transforms.Compose([transform, transforms.Normalize(self.info.mean, self.info.std)])
        return transform

    def _load(self, split: str) -> Split:
        """The ``train`` or ``test`` set, read once: tensors (on the device) for ``tensor``, arrays otherwise."""
        images, labels = self.info.read(self.data_dir, split)
        # Loaders may hand out read-only views of their files; torch wants memory it may write.
        images = images if images.flags.writeable else images.copy()
        if self.pipeline == "torchvision":
            return images, labels
        device = self._device()
        return torch.from_numpy(images).to(device), torch.from_numpy(labels).to(device)

    def setup(self, stage: str | None = None) -> None:
        if stage in ("fit", "validate", None) and self._train is None:
            self._train = self._load("train")
            n = len(self._train[1])
            if self.validation == "split":
                train_idx, val_idx = split_indices(n, self.val_ratio, self.seed)
                self.train_idx, self.val_idx = torch.from_numpy(train_idx), torch.from_numpy(val_idx)
        validates_on_test = self.validation == "test" and stage in ("fit", "validate")
        if (stage in ("test", "predict", None) or validates_on_test) and self._test is None:
            self._test = self._load("test")

    def _rank(self) -> tuple[int, int]:
        if self.trainer is None:
            return 0, 1
        return self.trainer.global_rank, self.trainer.world_size

    def _tensor_loader(
        self, data: tuple[torch.Tensor, torch.Tensor], idx: torch.Tensor | None, batch_size: int, train: bool
    ) -> TensorLoader:
        images, labels = data
        if idx is not None:
            idx = idx.to(images.device)
            images, labels = images[idx], labels[idx]
        rank, world_size = self._rank()
        sampler = EpochShuffle(len(labels), shuffle=train, seed=self.seed, rank=rank, world_size=world_size, even=train)
        if not self.normalize:
            return TensorLoader(images, labels, batch_size, sampler)
        return TensorLoader(images, labels, batch_size, sampler, mean=self.info.mean, std=self.info.std)

    def _torchvision_loader(
        self, data: tuple[np.ndarray, np.ndarray], idx: torch.Tensor | None, batch_size: int, split: str
    ) -> DataLoader:
        dataset: Dataset = ImageArrays(*data, self.sample_transform(split))
        shuffle = split == "train"
        if idx is not None:
            dataset = Subset(dataset, idx.tolist())
        generator = torch.Generator().manual_seed(self.seed) if shuffle else None
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle,
            generator=generator,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def _loader(self, split: str) -> TensorLoader | DataLoader:
        train = split == "train"
        batch_size = self.batch_size if train else self.test_batch_size
        if split == "test" or (split == "val" and self.validation == "test"):
            data, idx = self._test, None
        else:
            data, idx = self._train, self.train_idx if train else self.val_idx
        if data is None:
            raise DataError(f"ImageDataModule.setup() must run before the {split} loader is built.")
        if self.pipeline == "torchvision":
            return self._torchvision_loader(data, idx, batch_size, split)
        return self._tensor_loader(data, idx, batch_size, train)

    def train_dataloader(self) -> TensorLoader | DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> TensorLoader | DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> TensorLoader | DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> TensorLoader | DataLoader:
        """The test split, in order and with its labels: ``trainer.predict(model, datamodule=dm)`` classifies it."""
        return self._loader("test")
