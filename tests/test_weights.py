"""The framework-neutral weights file for any predictor: shapes read off the module, metadata that refuses a misfit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO, load_script
from test_cli import train
from torch import nn

from mnist_lightning.models import MODELS, build_predictor
from mnist_lightning.weights import WeightsError, layer_shapes, load_npz, read_arrays, save_npz, torch_layers

CIFAR100 = {"input_shape": (3, 32, 32), "n_classes": 100}


def same_parameters(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def test_layer_shapes_are_read_off_the_module() -> None:
    assert layer_shapes(build_predictor("mlp", 30)) == [((30, 784), (30,)), ((30, 30), (30,)), ((10, 30), (10,))]
    assert layer_shapes(build_predictor("lenet", **CIFAR100)) == [
        ((6, 3, 5, 5), (6,)),
        ((16, 6, 5, 5), (16,)),
        ((120, 400), (120,)),
        ((64, 120), (64,)),
        ((100, 64), (100,)),
    ]


@pytest.mark.parametrize(("model", "n_units"), [("lenet", 100), ("mlp", 30)])
def test_round_trip_for_another_input_shape_records_it(model: str, n_units: int, tmp_path: Path) -> None:
    torch.manual_seed(0)
    source, target = build_predictor(model, n_units, **CIFAR100), build_predictor(model, n_units, **CIFAR100)
    save_npz(source, tmp_path / "w.npz", model, n_units, **CIFAR100)
    load_npz(target, tmp_path / "w.npz", model, n_units, **CIFAR100)
    assert same_parameters(source, target)
    with np.load(tmp_path / "w.npz") as data:
        assert str(data["model"]) == model and int(data["n_units"]) == n_units
        assert tuple(data["input_shape"]) == (3, 32, 32) and int(data["n_classes"]) == 100
    arrays = read_arrays(tmp_path / "w.npz", model, n_units, **CIFAR100)
    assert [(w.shape, b.shape) for w, b in arrays] == layer_shapes(source)


def test_a_file_for_other_inputs_or_classes_is_refused_in_one_sentence(tmp_path: Path) -> None:
    save_npz(build_predictor("mlp", 20), tmp_path / "mnist.npz", "mlp", 20)
    net = build_predictor("mlp", 20, **CIFAR100)
    before = [p.detach().clone() for p in net.parameters()]
    with pytest.raises(WeightsError, match=r"holds weights for inputs of shape \(1, 28, 28\), not \(3, 32, 32\)\.$"):
        load_npz(net, tmp_path / "mnist.npz", "mlp", 20, **CIFAR100)
    with pytest.raises(WeightsError, match=r"holds weights for 10 classes, not 100\.$"):
        load_npz(net, tmp_path / "mnist.npz", "mlp", 20, input_shape=(1, 28, 28), n_classes=100)
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))


def test_a_file_without_input_shape_and_classes_was_made_for_mnist(tmp_path: Path) -> None:
    source = build_predictor("lenet")
    save_npz(source, tmp_path / "w.npz", "lenet", 100)
    with np.load(tmp_path / "w.npz") as data:
        arrays = {k: data[k] for k in data.files if k not in ("input_shape", "n_classes")}
    np.savez(tmp_path / "plain.npz", **arrays)
    target = build_predictor("lenet")
    load_npz(target, tmp_path / "plain.npz", "lenet", 100)
    assert same_parameters(source, target)
    with pytest.raises(WeightsError, match="holds weights for inputs of shape"):
        load_npz(build_predictor("lenet", **CIFAR100), tmp_path / "plain.npz", "lenet", 100, **CIFAR100)


def test_layer_shapes_that_do_not_fit_are_refused(tmp_path: Path) -> None:
    save_npz(build_predictor("mlp", 20), tmp_path / "w.npz", "mlp", 20)
    with pytest.raises(WeightsError, match=r"layer0/W has shape \(20, 784\), but mlp needs \(21, 784\)\.$"):
        read_arrays(tmp_path / "w.npz", "mlp", 20, shapes=layer_shapes(build_predictor("mlp", 21)))
    with pytest.raises(WeightsError, match="mlp has 5 layers with parameters, got 3"):
        read_arrays(tmp_path / "w.npz", "mlp", 20, shapes=layer_shapes(build_predictor("lenet")))


class Stray(nn.Module):
    """A parameter outside any layer with weight and bias, which the schema cannot hold."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)
        self.scale = nn.Parameter(torch.ones(1))


def test_a_parameter_outside_weight_and_bias_layers_is_refused(tmp_path: Path) -> None:
    assert torch_layers(nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)))[1].out_features == 2
    with pytest.raises(WeightsError, match="parameters scale are not the weight and bias of one layer"):
        save_npz(Stray(), tmp_path / "w.npz", "stray", 0)
    with pytest.raises(WeightsError, match=r"parameters 0\.weight are not"):
        torch_layers(nn.Sequential(nn.Linear(4, 2, bias=False)))
    assert not (tmp_path / "w.npz").exists()


@pytest.mark.parametrize("model", ["lenet", "mlp"])
def test_export_init_then_init_from_through_the_command_line(model: str, tmp_path: Path, tiny_mnist: Path) -> None:
    """A run started --init-from a file exports those very weights, not its own seed's."""
    common = ["--data-dir", str(tiny_mnist), "--model", model, "-u", "16", "--fast-dev-run"]
    first = train([*common, "--seed", "0", "--export-init", str(tmp_path / "a.npz")], tmp_path)
    assert first.returncode == 0, first.stderr
    second = train(
        [*common, "--seed", "1", "--init-from", str(tmp_path / "a.npz"), "--export-init", str(tmp_path / "b.npz")],
        tmp_path,
    )
    assert second.returncode == 0, second.stderr
    exported = [read_arrays(tmp_path / name, model, 16) for name in ("a.npz", "b.npz")]
    for (w1, b1), (w2, b2) in zip(*exported, strict=True):
        assert np.array_equal(w1, w2) and np.array_equal(b1, b2)
    torch.manual_seed(1)
    assert not np.array_equal(exported[0][0][0], torch_layers(build_predictor(model, 16))[0].weight.detach().numpy())


def test_the_chainer_reference_reads_the_same_files_for_other_shapes(tmp_path: Path) -> None:
    """Its models are registry names too, and its LeNet/MLP for (3, 32, 32) and 100 classes take torch's weights."""
    tc = load_script("train_chainer")
    assert set(tc.MODELS) <= set(MODELS)
    for model in tc.MODELS:
        save_npz(build_predictor(model, 24, **CIFAR100), tmp_path / f"{model}.npz", model, 24, **CIFAR100)
        link = tc.build_predictor(model, 24, **CIFAR100)
        tc.load_weights(link, tmp_path / f"{model}.npz", model, 24)
        tc.save_weights(link, tmp_path / f"{model}-chainer.npz", model, 24)
        for (w1, b1), (w2, b2) in zip(
            read_arrays(tmp_path / f"{model}.npz", model, 24, **CIFAR100),
            read_arrays(tmp_path / f"{model}-chainer.npz", model, 24, **CIFAR100),
            strict=True,
        ):
            assert np.array_equal(w1, w2) and np.array_equal(b1, b2)
        with pytest.raises(WeightsError, match="holds weights for inputs of shape"):
            tc.load_weights(tc.build_predictor(model, 24), tmp_path / f"{model}.npz", model, 24)


def test_the_chainer_reference_imports_no_torch() -> None:
    code = f"import sys; sys.path.insert(0, {str(REPO / 'tests')!r}); from conftest import load_script; "
    code += "tc = load_script('train_chainer'); print(sorted(tc.MODELS), 'torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "['lenet', 'mlp'] False"
