"""ImageDataModule on MNIST: the in-memory tensor pipeline, the torchvision pipeline, shuffling and sharding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mnist_lightning.data import EpochShuffle, ImageDataModule
from mnist_lightning.datasets import MNIST, MNIST_FILES
from mnist_lightning.idx import DataError

PIXEL_MEAN, PIXEL_STD = MNIST.mean[0], MNIST.std[0]


def setup_dm(data_dir: Path, **kwargs: object) -> ImageDataModule:
    dm = ImageDataModule(data_dir, **kwargs)
    dm.prepare_data()
    dm.setup()
    return dm


def test_batches_are_scaled_images_of_the_split(tiny_mnist: Path) -> None:
    dm = setup_dm(tiny_mnist, batch_size=32, test_batch_size=16, val_ratio=0.2, seed=1)
    images, labels = MNIST_FILES.load_split(tiny_mnist, train=True)
    val = dm.val_dataloader()
    xs, ys = zip(*val, strict=True)
    x, y = torch.cat(xs), torch.cat(ys)
    assert x.shape == (40, 1, 28, 28) and x.dtype == torch.float32
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    expected = torch.from_numpy(images[dm.val_idx.numpy()]).float().unsqueeze(1) / 255
    assert torch.equal(x, expected)
    assert torch.equal(y, torch.from_numpy(labels[dm.val_idx.numpy()]))
    assert [len(b) for b in ys] == [16, 16, 8]
    assert len(val) == 3


def test_train_loader_covers_the_split_once_per_epoch(tiny_mnist: Path) -> None:
    dm = setup_dm(tiny_mnist, batch_size=32, seed=0)
    loader = dm.train_dataloader()
    assert len(loader) == 5  # 160 / 32
    seen = torch.cat([y for _, y in loader])
    assert len(seen) == 160


def test_shuffle_depends_on_seed_and_epoch_only() -> None:
    a, b = EpochShuffle(100, shuffle=True, seed=0), EpochShuffle(100, shuffle=True, seed=0)
    torch.manual_seed(99)
    assert torch.equal(a.indices(), b.indices())
    first = a.indices()
    a.set_epoch(1)
    assert not torch.equal(first, a.indices())
    b.set_epoch(1)
    assert torch.equal(a.indices(), b.indices())
    assert not torch.equal(first, EpochShuffle(100, shuffle=True, seed=1).indices())


def test_ranks_partition_the_samples() -> None:
    train = [EpochShuffle(103, shuffle=True, seed=0, rank=r, world_size=2, even=True) for r in range(2)]
    parts = [s.indices() for s in train]
    assert len(parts[0]) == len(parts[1]) == len(train[0]) == 51
    assert len(set(torch.cat(parts).tolist())) == 102
    evaluation = [EpochShuffle(103, shuffle=False, rank=r, world_size=2, even=False) for r in range(2)]
    merged = sorted(torch.cat([s.indices() for s in evaluation]).tolist())
    assert merged == list(range(103))
    assert [len(s) for s in evaluation] == [52, 51]


def test_torchvision_pipeline_serves_identical_samples(tiny_mnist: Path) -> None:
    fast = setup_dm(tiny_mnist, test_batch_size=1000)
    slow = setup_dm(tiny_mnist, test_batch_size=1000, pipeline="torchvision")
    for a, b in ((fast.val_dataloader(), slow.val_dataloader()), (fast.test_dataloader(), slow.test_dataloader())):
        (xa, ya), (xb, yb) = next(iter(a)), next(iter(b))
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_normalize_shifts_and_scales_the_same_images_in_both_pipelines(tiny_mnist: Path) -> None:
    """``normalize``: (pixels / 255 - mean) / std, in float32, bit for bit the same in both pipelines."""
    plain = setup_dm(tiny_mnist, test_batch_size=1000)
    fast = setup_dm(tiny_mnist, test_batch_size=1000, normalize=True)
    slow = setup_dm(tiny_mnist, test_batch_size=1000, pipeline="torchvision", normalize=True)
    (x, y), (xn, yn), (xs, ys) = (next(iter(dm.val_dataloader())) for dm in (plain, fast, slow))
    assert torch.equal(xn, (x - PIXEL_MEAN) / PIXEL_STD) and torch.equal(yn, y)
    assert torch.equal(xn, xs) and torch.equal(yn, ys)
    assert float(xn.min()) == pytest.approx(-PIXEL_MEAN / PIXEL_STD)
    assert fast.hparams["normalize"] is True and plain.hparams["normalize"] is False


def test_same_seed_same_split_on_every_instance(tiny_mnist: Path) -> None:
    a, b = setup_dm(tiny_mnist, seed=5), setup_dm(tiny_mnist, seed=5)
    assert torch.equal(a.val_idx, b.val_idx)
    assert not np.array_equal(a.val_idx.numpy(), setup_dm(tiny_mnist, seed=6).val_idx.numpy())


def test_missing_folder_raises_clear_error_and_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "nowhere" / "data"
    dm = ImageDataModule(target)
    with pytest.raises(DataError, match="not found in"):
        dm.prepare_data()
    assert not (tmp_path / "nowhere").exists()


def test_unknown_pipeline() -> None:
    with pytest.raises(ValueError, match="unknown data pipeline"):
        ImageDataModule("data", pipeline="pil")


def test_validation_on_the_test_set_trains_on_all_60000_images(mnist_dir: Path) -> None:
    """``validation="test"``: Chainer's example setup, 60,000 training images and the 10,000 test images to validate."""
    dm = ImageDataModule(mnist_dir, validation="test")
    dm.setup("fit")
    train, val = dm.train_dataloader(), dm.val_dataloader()
    assert len(train.sampler) == 60_000 and len(train) == 469
    assert len(val.sampler) == 10_000 and len(val) == 10
    _, test_labels = MNIST_FILES.load_split(mnist_dir, train=False)
    assert torch.equal(torch.cat([t for _, t in val]), torch.from_numpy(test_labels))
    dm.setup("test")
    assert len(dm.test_dataloader().sampler) == 10_000
    assert dm.hparams["validation"] == "test"
    split = ImageDataModule(mnist_dir)
    split.setup("fit")
    assert len(split.train_dataloader().sampler) == 48_000 and len(split.val_dataloader().sampler) == 12_000


def test_unknown_validation() -> None:
    with pytest.raises(ValueError, match="unknown validation 'train': choose one of split, test"):
        ImageDataModule("data", validation="train")


@pytest.mark.parametrize("pipeline", ["tensor", "torchvision"])
def test_predict_dataloader_serves_the_test_split_in_order_with_its_labels(pipeline: str, tiny_mnist: Path) -> None:
    dm = ImageDataModule(tiny_mnist, test_batch_size=16, pipeline=pipeline, normalize=True)
    dm.setup("predict")
    batches = list(dm.predict_dataloader())
    assert [len(y) for _, y in batches] == [16, 16, 16, 2]
    images, labels = MNIST_FILES.load_split(tiny_mnist, train=False)
    x, y = torch.cat([x for x, _ in batches]), torch.cat([y for _, y in batches])
    assert torch.equal(y, torch.from_numpy(labels))
    expected = (torch.from_numpy(images).float().unsqueeze(1) / 255 - PIXEL_MEAN) / PIXEL_STD
    assert torch.allclose(x, expected, atol=1e-6)
