"""The one pixel transform: what the training run's loaders serve is what a trained model's preprocessing makes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mnist_lightning.data import ImageDataModule
from mnist_lightning.datasets import FASHION_MNIST, MNIST, MNIST_FILES
from mnist_lightning.pixels import Preprocessing, channel_values, scale_pixels


@pytest.mark.parametrize("normalize", [False, True])
def test_preprocessing_gives_the_test_loaders_inputs_bit_for_bit(normalize: bool, tiny_mnist: Path) -> None:
    dm = ImageDataModule(tiny_mnist, test_batch_size=16, normalize=normalize)
    dm.setup("test")
    served = torch.cat([x for x, _ in dm.test_dataloader()])
    images, _ = MNIST_FILES.load_split(tiny_mnist, train=False)
    made = Preprocessing.of_dataset("mnist", normalize)(torch.from_numpy(images.copy())[:, None])
    assert made.dtype == torch.float32 and torch.equal(made, served)


def test_preprocessing_of_a_dataset_records_its_shape_classes_and_statistics() -> None:
    plain = Preprocessing.of_dataset("fashion-mnist", normalize=False)
    assert (plain.dataset, plain.input_shape, plain.class_names) == (
        "fashion-mnist",
        (1, 28, 28),
        FASHION_MNIST.class_names,
    )
    assert not plain.normalize and plain.mean is None
    normalised = Preprocessing.of_dataset("mnist", normalize=True)
    assert normalised.normalize and (normalised.mean, normalised.std) == (MNIST.mean, MNIST.std)
    with pytest.raises(ValueError, match="unknown dataset 'svhn'"):
        Preprocessing.of_dataset("svhn", normalize=False)


def test_scale_pixels_divides_by_255_then_normalises_per_channel() -> None:
    images = torch.tensor([[[[0, 255]], [[51, 102]]]], dtype=torch.uint8)  # (1, 2, 1, 2)
    assert torch.equal(scale_pixels(images), images.float() / 255)
    mean, std = channel_values((0.5, 0.2)), channel_values((0.5, 0.1))
    assert mean.shape == (2, 1, 1)
    expected = (images.float() / 255 - torch.tensor([0.5, 0.2]).view(-1, 1, 1)) / torch.tensor([0.5, 0.1]).view(
        -1, 1, 1
    )
    assert torch.allclose(scale_pixels(images, mean, std), expected)
