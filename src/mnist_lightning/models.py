"""The predictors and their registry: plain ``nn.Module``s (nothing of Lightning here).

A model is one class plus one registry entry. A registered class takes ``input_shape`` ((C, H, W) of one example)
and ``n_classes`` as keyword arguments, and ``n_units`` too when it has a width to set; :func:`build_predictor`
passes ``n_units`` only to classes whose constructor names it.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

#: MNIST's examples: one channel of 28x28 pixels, ten classes. Every model's default.
MNIST_INPUT_SHAPE: tuple[int, int, int] = (1, 28, 28)
MNIST_CLASSES = 10


def chainer_init_(module: nn.Module) -> nn.Module:
    """Chainer's default initialisation for every conv/linear layer: LeCun normal weights, zero biases.

    ``chainer.links.Linear`` and ``Convolution2D`` draw W from N(0, 1/fan_in) and start b at 0; using the
    same rule keeps the two frameworks' learning curves comparable from the first step.

    Args:
        module: the module whose Conv2d and Linear layers are initialised in place.
    """
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            fan_in = layer.weight[0].numel()
            nn.init.normal_(layer.weight, std=1.0 / math.sqrt(fan_in))
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
    return module


def as_input_shape(input_shape: Sequence[int]) -> tuple[int, int, int]:
    """``input_shape`` as a (C, H, W) tuple of positive ints, or ValueError in one sentence.

    Args:
        input_shape: the shape of one example, channels first.
    """
    shape = tuple(int(d) for d in input_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"an input shape is (channels, height, width) of positive sizes, got {tuple(input_shape)}.")
    return shape  # type: ignore[return-value]


def _pooled(size: int) -> int:
    """A side after LeNet's 5x5 convolution (no padding) and 2x2 max-pooling."""
    return (size - 4) // 2


class LeNet(nn.Module):
    """LeNet-5 style CNN: two conv/ReLU/max-pool blocks, then flattened -> 120 -> 64 -> n_classes.

    For MNIST's (1, 28, 28) the flattened feature map is 16 * 4 * 4 = 256.

    Args:
        input_shape: (C, H, W) of one example; the first convolution takes C channels, H and W are at least 16.
        n_classes: the number of logits.
    """

    def __init__(self, input_shape: Sequence[int] = MNIST_INPUT_SHAPE, n_classes: int = MNIST_CLASSES) -> None:
        super().__init__()
        self.input_shape = as_input_shape(input_shape)
        self.n_classes = n_classes
        channels, height, width = self.input_shape
        h, w = _pooled(_pooled(height)), _pooled(_pooled(width))
        if h < 1 or w < 1:
            raise ValueError(f"LeNet needs images of at least 16x16 pixels, got {height}x{width}.")
        self.features = nn.Sequential(
            nn.Conv2d(channels, 6, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * h * w, 120),
            nn.ReLU(),
            nn.Linear(120, 64),
            nn.ReLU(),
            nn.Linear(64, n_classes),
        )
        chainer_init_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class MLP(nn.Module):
    """Chainer's MNIST example MLP: C*H*W -> n_units -> n_units -> n_classes with ReLU; flattens its input itself.

    Args:
        n_units: the width of both hidden layers.
        input_shape: (C, H, W) of one example; MNIST's gives 784 inputs.
        n_classes: the number of logits.
    """

    def __init__(
        self, n_units: int = 100, input_shape: Sequence[int] = MNIST_INPUT_SHAPE, n_classes: int = MNIST_CLASSES
    ) -> None:
        super().__init__()
        self.n_units = n_units
        self.input_shape = as_input_shape(input_shape)
        self.n_classes = n_classes
        self.layers = nn.Sequential(
            nn.Flatten(),
            nn.Linear(math.prod(self.input_shape), n_units),
            nn.ReLU(),
            nn.Linear(n_units, n_units),
            nn.ReLU(),
            nn.Linear(n_units, n_classes),
        )
        chainer_init_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


#: Model name -> predictor class: what ``--model`` chooses from and what a checkpoint's name rebuilds.
MODELS: dict[str, type[nn.Module]] = {"lenet": LeNet, "mlp": MLP}


def register_model(name: str, cls: type[nn.Module]) -> type[nn.Module]:
    """Add ``cls`` to :data:`MODELS` under ``name`` and return it; a name taken by another class is refused.

    Args:
        name: the model's name, as ``--model`` and the checkpoints spell it.
        cls: an ``nn.Module`` class taking ``input_shape`` and ``n_classes`` keyword arguments (and ``n_units``
            when it has a width).
    """
    if MODELS.get(name, cls) is not cls:
        raise ValueError(f"the model name {name!r} is taken by {MODELS[name].__name__}.")
    MODELS[name] = cls
    return cls


def takes_units(cls: type[nn.Module]) -> bool:
    """Whether the constructor of ``cls`` has an ``n_units`` parameter.

    Args:
        cls: a predictor class.
    """
    return "n_units" in inspect.signature(cls).parameters


def build_predictor(
    name: str,
    n_units: int = 100,
    *,
    input_shape: Sequence[int] = MNIST_INPUT_SHAPE,
    n_classes: int = MNIST_CLASSES,
    **kwargs: Any,
) -> nn.Module:
    """The predictor registered as ``name``, for examples of ``input_shape`` and ``n_classes`` classes.

    Args:
        name: a key of :data:`MODELS`.
        n_units: the hidden width, passed only to classes that take ``n_units`` (the MLP).
        input_shape: (C, H, W) of one example.
        n_classes: the number of logits.
        **kwargs: further keyword arguments of the class.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}: choose one of {', '.join(MODELS)}.")
    cls = MODELS[name]
    if takes_units(cls):
        kwargs["n_units"] = n_units
    return cls(input_shape=as_input_shape(input_shape), n_classes=n_classes, **kwargs)
