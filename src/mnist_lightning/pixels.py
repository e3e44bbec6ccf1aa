"""The pixels a model sees: uint8 images -> float inputs, the one function training, testing and predicting share.

``uint8 / 255``, as in Chainer's MNIST example; with a data set's per-channel mean and standard deviation, then
``(x - mean) / std`` channel by channel, as torchvision's ``Normalize`` computes it. :class:`Preprocessing` is what
a trained model needs to be fed: its data set, the shape of one example, the class names and the normalisation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from mnist_lightning.datasets import get_dataset


def channel_values(values: Sequence[float], device: torch.device | str = "cpu") -> torch.Tensor:
    """Per-channel values as a float32 (C, 1, 1) tensor on ``device``, broadcasting over (N, C, H, W) batches.

    Args:
        values: one value per channel (a data set's mean or standard deviation).
        device: where the batches they are applied to live.
    """
    return torch.tensor(tuple(values), dtype=torch.float32, device=device).view(-1, 1, 1)


def scale_pixels(
    images: torch.Tensor, mean: torch.Tensor | None = None, std: torch.Tensor | None = None
) -> torch.Tensor:
    """uint8 images (N, C, H, W) -> float32 inputs: ``images / 255``, then ``(x - mean) / std`` when both are given.

    Args:
        images: uint8 pixels, channels first.
        mean: per-channel means from :func:`channel_values` (on the images' device), or None for [0, 1] inputs.
        std: per-channel standard deviations, the same way.
    """
    x = images.float().div_(255.0)
    if mean is not None and std is not None:
        x = x.sub_(mean).div_(std)
    return x


@dataclass(frozen=True)
class Preprocessing:
    """How a trained model's inputs are made: its data set, the shape of one example, its classes, its pixels.

    Args:
        dataset: the ``--dataset`` name the model was trained on.
        input_shape: (C, H, W) of one example.
        class_names: one name per class, in label order.
        mean: per-channel mean subtracted after scaling to [0, 1], or None (``--normalize`` was off).
        std: per-channel standard deviation divided by after that, or None.
    """

    dataset: str
    input_shape: tuple[int, int, int]
    class_names: tuple[str, ...]
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    @classmethod
    def of_dataset(cls, name: str, normalize: bool) -> Preprocessing:
        """The preprocessing of training on the registered data set ``name``, with or without ``--normalize``.

        Args:
            name: a key of ``datasets.DATASETS``; ValueError in one sentence for another.
            normalize: whether the pixels were normalised by the data set's mean and standard deviation.
        """
        info = get_dataset(name)
        if not normalize:
            return cls(info.name, info.shape, info.class_names)
        return cls(info.name, info.shape, info.class_names, info.mean, info.std)

    @property
    def normalize(self) -> bool:
        """Whether inputs are normalised by a mean and standard deviation (``--normalize``)."""
        return self.mean is not None and self.std is not None

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """The model's inputs for uint8 images (N, C, H, W), on their device.

        Args:
            images: uint8 pixels of ``input_shape``, channels first.
        """
        if self.mean is None or self.std is None:
            return scale_pixels(images)
        return scale_pixels(images, channel_values(self.mean, images.device), channel_values(self.std, images.device))
