"""LeNet and MLP: shapes, sizes and Chainer's initialisation."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mnist_lightning.models import MLP, MODELS, LeNet, build_predictor, register_model, takes_units


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


def test_build_predictor_passes_n_units_only_to_models_that_take_it() -> None:
    assert takes_units(MLP) and not takes_units(LeNet)
    assert build_predictor("lenet", 7).input_shape == (1, 28, 28)


@pytest.mark.parametrize("units", [100, 37])
def test_models_for_three_channel_32x32_images_and_100_classes(units: int) -> None:
    shape = (3, 32, 32)
    lenet = build_predictor("lenet", input_shape=shape, n_classes=100)
    assert lenet(torch.zeros(2, *shape)).shape == (2, 100)
    assert lenet.features[0].in_channels == 3
    assert [m.in_features for m in lenet.modules() if isinstance(m, nn.Linear)] == [16 * 5 * 5, 120, 64]
    mlp = build_predictor("mlp", units, input_shape=shape, n_classes=100)
    assert mlp(torch.zeros(2, *shape)).shape == (2, 100)
    assert n_params(mlp) == 3072 * units + units + units * units + units + units * 100 + 100


def test_mnist_defaults_are_mnists_shape_and_draw_the_same_weights() -> None:
    """The defaults build MNIST's layers in the same order, so one seed gives the same initial weights."""
    torch.manual_seed(3)
    default = LeNet()
    torch.manual_seed(3)
    explicit = build_predictor("lenet", input_shape=(1, 28, 28), n_classes=10)
    for a, b in zip(default.state_dict().values(), explicit.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert default.classifier[1].in_features == 256


def test_bad_input_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 16x16 pixels, got 12x12"):
        LeNet((1, 12, 12))
    with pytest.raises(ValueError, match="an input shape is"):
        build_predictor("mlp", input_shape=(28, 28))


class Tiny(nn.Module):
    """One linear layer on the flattened input."""

    def __init__(self, input_shape: tuple[int, int, int] = (1, 28, 28), n_classes: int = 10) -> None:
        super().__init__()
        self.fc = nn.Linear(math.prod(input_shape), n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


def test_register_model_adds_one_name() -> None:
    assert register_model("tiny-test", Tiny) is Tiny
    try:
        assert MODELS["tiny-test"] is Tiny
        net = build_predictor("tiny-test", 50, input_shape=(2, 4, 4), n_classes=3)
        assert net(torch.zeros(5, 2, 4, 4)).shape == (5, 3)
        register_model("tiny-test", Tiny)  # the same class again is fine
        with pytest.raises(ValueError, match="'tiny-test' is taken by Tiny"):
            register_model("tiny-test", MLP)
    finally:
        del MODELS["tiny-test"]
    assert list(MODELS) == ["lenet", "mlp"]
