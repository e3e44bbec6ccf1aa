"""The predictors: LeNet and the MLP as plain ``nn.Module``s (nothing of Lightning here)."""

from __future__ import annotations

import math

import torch
from torch import nn


def chainer_init_(module: nn.Module) -> nn.Module:
    """Chainer's default initialisation for every conv/linear layer: LeCun normal weights, zero biases.

    ``chainer.links.Linear`` and ``Convolution2D`` draw W from N(0, 1/fan_in) and start b at 0; using the
    same rule keeps the two frameworks' learning curves comparable from the first step.
    """
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            fan_in = layer.weight[0].numel()
            nn.init.normal_(layer.weight, std=1.0 / math.sqrt(fan_in))
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
    return module


class LeNet(nn.Module):
    """LeNet-5 style CNN for 1x28x28 inputs: two conv/ReLU/max-pool blocks, then 256 -> 120 -> 64 -> 10."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(256, 120),
            nn.ReLU(),
            nn.Linear(120, 64),
            nn.ReLU(),
            nn.Linear(64, 10),
        )
        chainer_init_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class MLP(nn.Module):
    """Chainer's MNIST example MLP: 784 -> n_units -> n_units -> 10 with ReLU; flattens (N, 1, 28, 28) itself."""

    def __init__(self, n_units: int = 100) -> None:
        super().__init__()
        self.n_units = n_units
        self.layers = nn.Sequential(
            nn.Flatten(),
            nn.Linear(784, n_units),
            nn.ReLU(),
            nn.Linear(n_units, n_units),
            nn.ReLU(),
            nn.Linear(n_units, 10),
        )
        chainer_init_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


MODELS = ("lenet", "mlp")


def build_predictor(name: str, n_units: int = 100) -> nn.Module:
    """The predictor called ``name`` (``lenet`` or ``mlp``); ``n_units`` is the MLP's hidden width."""
    if name == "lenet":
        return LeNet()
    if name == "mlp":
        return MLP(n_units)
    raise ValueError(f"unknown model {name!r}: choose one of {', '.join(MODELS)}.")
