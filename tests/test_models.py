"""LeNet and MLP: shapes, sizes and Chainer's initialisation."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mnist_lightning.models import MLP, LeNet, build_predictor


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_lenet_shape_and_size() -> None:
    net = LeNet()
    assert net(torch.zeros(7, 1, 28, 28)).shape == (7, 10)
    # conv 1->6 k5, conv 6->16 k5, fc 256->120->64->10
    assert n_params(net) == (6 * 25 + 6) + (16 * 6 * 25 + 16) + (256 * 120 + 120) + (120 * 64 + 64) + (64 * 10 + 10)
    kinds = [type(m).__name__ for m in net.modules() if not isinstance(m, (nn.Sequential, LeNet))]
    assert kinds == ["Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "MaxPool2d", "Flatten"] + [
        "Linear",
        "ReLU",
        "Linear",
        "ReLU",
        "Linear",
    ]


@pytest.mark.parametrize("units", [100, 37])
def test_mlp_flattens_images_itself(units: int) -> None:
    net = MLP(units)
    assert net(torch.zeros(5, 1, 28, 28)).shape == (5, 10)
    assert n_params(net) == 784 * units + units + units * units + units + units * 10 + 10


def test_chainer_initialisation() -> None:
    torch.manual_seed(0)
    net = MLP(1000)
    first = net.layers[1]
    assert torch.all(first.bias == 0)
    assert abs(first.weight.std().item() - 1 / math.sqrt(784)) < 0.002


def test_build_predictor() -> None:
    assert isinstance(build_predictor("lenet"), LeNet)
    assert build_predictor("mlp", 20).n_units == 20
    with pytest.raises(ValueError, match="unknown model 'vgg'"):
        build_predictor("vgg")
