"""MNISTDataModule: the 48,000 / 12,000 seeded split of MNIST's training set, and its 10,000 test images.

Two pipelines serve the same images in [0, 1] (or, with ``normalize``, shifted and scaled to MNIST's mean 0 and
standard deviation 1, as torchvision's ``Normalize((0.1307,), (0.3081,))``):

- ``"tensor"`` (default): the IDX files are read once into one uint8 tensor and batches are cut by
  indexing, scaled to float per batch; no PIL and no per-sample Python. With ``data_on_device`` the
  whole set lives on the accelerator, so an epoch makes no host-to-device copies.
- ``"torchvision"``: ``torchvision.datasets.MNIST`` with ``ToTensor`` and a ``DataLoader``, the
  per-sample path to start from when adding augmentation.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from mnist_lightning.mnist import (
    PIXEL_MEAN,
    PIXEL_STD,
    MNISTDataError,
    check_entries,
    check_files,
    load_split,
    missing_files,
    raw_folder,
    split_indices,
)

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
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(self.n, generator=generator)
        else:
            order = torch.arange(self.n)
        if self.even:
            order = order[: self.n - self.n % self.world_size]
        return order[self.rank :: self.world_size]

    def __len__(self) -> int:
        if self.even:
            return self.n // self.world_size
        return len(range(self.rank, self.n, self.world_size))


class TensorLoader:
    """Batches ``(images / 255, labels)`` cut by index from uint8 tensors held in memory (or on the device).

    With ``normalize`` the scaled images are then shifted by ``PIXEL_MEAN`` and divided by ``PIXEL_STD``.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        sampler: EpochShuffle,
        normalize: bool = False,
    ) -> None:
        self.images, self.labels = images, labels
        self.batch_size, self.normalize = batch_size, normalize
        # Lightning looks up ``sampler.set_epoch`` and ``batch_sampler`` the way it does on a DataLoader.
        self.sampler = sampler
        self.batch_sampler = None

    def __len__(self) -> int:
        return -(-len(self.sampler) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = self.sampler.indices().to(self.images.device)
        for batch in order.split(self.batch_size):
            x = self.images[batch].unsqueeze(1).float().div_(255.0)
            if self.normalize:
                x = x.sub_(PIXEL_MEAN).div_(PIXEL_STD)
            yield x, self.labels[batch]


class MNISTDataModule(L.LightningDataModule):
    """MNIST with a seeded train/validation split; ``setup`` reads the files once per process."""

    def __init__(
        self,
        data_dir: str | os.PathLike = "data",
        batch_size: int = 128,
        test_batch_size: int = 1000,
        val_ratio: float = 0.2,
        seed: int = 0,
        num_workers: int = 0,
        pipeline: str = "tensor",
        data_on_device: bool | None = None,
        normalize: bool = False,
    ) -> None:
        super().__init__()
        # In every checkpoint (``datamodule_hyper_parameters``): a resume can refuse other inputs.
        self.save_hyperparameters(ignore=["data_dir", "num_workers", "data_on_device"])
        if pipeline not in PIPELINES:
            raise ValueError(f"unknown data pipeline {pipeline!r}: choose one of {', '.join(PIPELINES)}.")
        self.data_dir = os.fspath(data_dir)
        self.batch_size, self.test_batch_size = batch_size, test_batch_size
        self.val_ratio, self.seed = val_ratio, seed
        self.num_workers, self.pipeline, self.data_on_device = num_workers, pipeline, data_on_device
        self.normalize = normalize
        self._train: tuple[torch.Tensor, torch.Tensor] | Dataset | None = None
        self._test: tuple[torch.Tensor, torch.Tensor] | Dataset | None = None

    def prepare_data(self) -> None:
        """Check the four files, downloading with torchvision those that are absent (Lightning calls it on rank 0).

        Runs on every start, so bad files (a label out of range, a FIFO, an unreadable file) stop the run before
        training. Something other than a file in a file's place is reported, never downloaded over.
        """
        check_entries(self.data_dir)
        if missing_files(self.data_dir):
            self._download()
        check_files(self.data_dir)

    def _download(self) -> None:
        """Ask torchvision for the four files; a failed download is reported by the check that follows it."""
        from torchvision.datasets import MNIST

        raw = raw_folder(self.data_dir).resolve()
        created = [p for p in (raw, *raw.parents) if not p.exists()]
        try:
            MNIST(self.data_dir, train=True, download=True)
            MNIST(self.data_dir, train=False, download=True)
        except Exception:  # no network, a proxy, a mirror down: check_files then says what to do
            pass
        if missing_files(self.data_dir):
            for folder in created:  # leave no empty folders behind a failed download, deepest first
                if folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()

    def _device(self) -> torch.device:
        if self.trainer is None:
            return torch.device("cpu")
        device = self.trainer.strategy.root_device
        on_device = self.data_on_device if self.data_on_device is not None else device.type == "cuda"
        return device if on_device else torch.device("cpu")

    def _load(self, train: bool) -> tuple[torch.Tensor, torch.Tensor] | Dataset:
        """The training or test set, read once: uint8 tensors for ``tensor``, the dataset for ``torchvision``."""
        if self.pipeline == "torchvision":
            from torchvision import datasets, transforms

            transform = transforms.ToTensor()
            if self.normalize:
                transform = transforms.Compose([transform, transforms.Normalize((PIXEL_MEAN,), (PIXEL_STD,))])
            return datasets.MNIST(self.data_dir, train=train, transform=transform)
        images, labels = load_split(self.data_dir, train=train)
        device = self._device()
        return torch.from_numpy(images.copy()).to(device), torch.from_numpy(labels).to(device)

    def setup(self, stage: str | None = None) -> None:
        if stage in ("fit", "validate", None) and self._train is None:
            self._train = self._load(train=True)
            n = len(self._train[1]) if isinstance(self._train, tuple) else len(self._train)
            self.train_idx, self.val_idx = (torch.from_numpy(i) for i in split_indices(n, self.val_ratio, self.seed))
        if stage in ("test", None) and self._test is None:
            self._test = self._load(train=False)

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
        return TensorLoader(images, labels, batch_size, sampler, normalize=self.normalize)

    def _torchvision_loader(
        self, dataset: Dataset, idx: torch.Tensor | None, batch_size: int, shuffle: bool
    ) -> DataLoader:
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
        if split == "test":
            data, idx = self._test, None
        else:
            data, idx = self._train, self.train_idx if train else self.val_idx
        if data is None:
            raise MNISTDataError(f"MNISTDataModule.setup() must run before the {split} loader is built.")
        if self.pipeline == "torchvision":
            return self._torchvision_loader(data, idx, batch_size, shuffle=train)
        return self._tensor_loader(data, idx, batch_size, train)

    def train_dataloader(self) -> TensorLoader | DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> TensorLoader | DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> TensorLoader | DataLoader:
        return self._loader("test")
