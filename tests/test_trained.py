"""load_trained: a snapshot or a model file -> the model in eval mode and its preprocessing; anything else refused."""

from __future__ import annotations

import os
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from conftest import make_mnist

from mnist_lightning.classifier import Classifier
from mnist_lightning.data import ImageDataModule
from mnist_lightning.datasets import MNIST
from mnist_lightning.models import LeNet
from mnist_lightning.trained import MODEL_FORMAT, TrainedModelError, load_trained, model_file_contents


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Classifier, Path]:
    """An MLP trained two steps on normalised tiny-MNIST pixels, and the Lightning checkpoint of it."""
    root = tmp_path_factory.mktemp("trained")
    model = Classifier("mlp", n_units=24, optimizer="sgd")
    trainer = L.Trainer(
        max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False, limit_val_batches=0
    )
    trainer.fit(model, datamodule=ImageDataModule(make_mnist(root / "data"), batch_size=16, normalize=True))
    path = root / "snapshot_iter_2"
    trainer.save_checkpoint(path)
    return model, path


def save(contents: object, path: Path) -> Path:
    torch.save(contents, path)
    return path


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(
        torch.equal(x.cpu(), y.cpu()) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


def test_a_snapshot_gives_the_model_in_eval_mode_and_its_preprocessing(trained: tuple[Classifier, Path]) -> None:
    model, path = trained
    loaded = load_trained(path)
    assert loaded.kind == "snapshot" and loaded.path == str(path)
    assert not loaded.model.training and same_weights(loaded.model, model)
    assert loaded.model.hparams.n_units == 24 and loaded.model.hparams.optimizer == "sgd"
    pre = loaded.preprocessing
    assert (pre.dataset, pre.input_shape, pre.class_names) == ("mnist", (1, 28, 28), MNIST.class_names)
    assert pre.normalize and (pre.mean, pre.std) == (MNIST.mean, MNIST.std)
    x = torch.rand(3, 1, 28, 28)
    assert torch.equal(loaded.predictor(x), model.predictor.cpu()(x))


def test_a_model_file_reads_back_the_same_model_and_preprocessing(
    trained: tuple[Classifier, Path], tmp_path: Path
) -> None:
    model, snapshot = trained
    contents = model_file_contents(model, "mnist", normalize=True)
    assert contents["format"] == MODEL_FORMAT and set(contents["state_dict"]) == set(model.predictor.state_dict())
    path = save({**contents, "epoch": 1}, tmp_path / "model_best")  # extra keys (where it was best) are allowed
    torch.load(path, weights_only=True)
    loaded = load_trained(path, map_location="cpu")
    assert loaded.kind == "model file" and not loaded.model.training
    assert same_weights(loaded.predictor, model.predictor)
    assert loaded.preprocessing == load_trained(snapshot).preprocessing


def test_old_snapshots_without_dataset_keys_mean_mnist_in_0_1(trained: tuple[Classifier, Path], tmp_path: Path) -> None:
    checkpoint = torch.load(trained[1], weights_only=True)
    checkpoint["datamodule_hyper_parameters"] = {"batch_size": 16}
    loaded = load_trained(save(checkpoint, tmp_path / "old"))
    assert loaded.preprocessing.dataset == "mnist" and not loaded.preprocessing.normalize


def variants(snapshot: Path, tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Files that are not a trained model of this project, each with the sentence that refuses it."""
    checkpoint = torch.load(snapshot, weights_only=True)
    model = Classifier("mlp", n_units=24)
    lenet = Classifier("lenet")
    random_bytes = tmp_path / "random"
    random_bytes.write_bytes(np.random.default_rng(0).bytes(5000))
    np.savez(tmp_path / "chainer.npz", **{"predictor/l1/W": np.zeros((24, 784), np.float32)})
    other_module = {**checkpoint, "state_dict": {"layer.weight": torch.zeros(2, 2)}, "hyper_parameters": {"lr": 0.1}}
    other_model = {**checkpoint, "state_dict": lenet.state_dict()}
    own_predictor = {**checkpoint, "hyper_parameters": {**checkpoint["hyper_parameters"], "predictor": None}}
    other_data = {**checkpoint, "datamodule_hyper_parameters": {"dataset": "svhn"}}
    no_data = {k: v for k, v in checkpoint.items() if k != "datamodule_hyper_parameters"}
    file_without_dataset = model_file_contents(model, "mnist", False)
    del file_without_dataset["datamodule_hyper_parameters"]["dataset"]
    wrong_shape = model_file_contents(model, "mnist", False)
    wrong_shape["state_dict"]["layers.1.weight"] = torch.zeros(24, 100)
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "run").mkdir()
    save(checkpoint, tmp_path / "run" / "snapshot_iter_7")
    os.symlink(tmp_path / "gone", tmp_path / "dangling")
    return {
        "missing": (tmp_path / "absent", r": no such file\.$"),
        "dangling link": (tmp_path / "dangling", r": no such file\.$"),
        "folder": (tmp_path / "run", r"is a folder: give a snapshot or model file, such as .*run/snapshot_iter_7\.$"),
        "fifo": (tmp_path / "fifo", r"is not a regular file\.$"),
        "random bytes": (random_bytes, r"is not a snapshot or model file \(torch\.load with weights_only could not"),
        "chainer npz": (tmp_path / "chainer.npz", r"is a NumPy \.npz \(a Chainer snapshot or a weights file\)"),
        "bare state_dict": (
            save(model.predictor.state_dict(), tmp_path / "bare"),
            r"holds bare weights \(a state_dict\) that do not say which model and data they belong to",
        ),
        "a list": (save([1, 2], tmp_path / "list"), r"holds a list, not a snapshot or model file\.$"),
        "other dict": (save({"epoch": 3}, tmp_path / "dict"), r"is neither a snapshot of train\.py nor a model file"),
        "other module": (save(other_module, tmp_path / "other"), r"a snapshot of another module: .* no predictor\.$"),
        "other model": (
            save(other_model, tmp_path / "lenet"),
            r"snapshot .* lacks the weights predictor\.layers\.1\.weight.*: it is a checkpoint of another model\.$",
        ),
        "own predictor": (save(own_predictor, tmp_path / "own"), r"predictor module of your own: load it with"),
        "other data set": (save(other_data, tmp_path / "svhn"), r"trained on dataset 'svhn', which is not one of"),
        "no data": (save(no_data, tmp_path / "nodata"), r"holds no data module hyper-parameters"),
        "model file without dataset": (
            save(file_without_dataset, tmp_path / "nods"),
            r"does not say its dataset and normalize",
        ),
        "model file of other shapes": (
            save(wrong_shape, tmp_path / "shape"),
            r"model file .* holds layers\.1\.weight of shape \(24, 100\), the model expects \(24, 784\)\.$",
        ),
    }


def test_anything_but_a_trained_model_is_refused_in_one_sentence(
    trained: tuple[Classifier, Path], tmp_path: Path
) -> None:
    for case, (path, pattern) in variants(trained[1], tmp_path).items():
        with pytest.raises(TrainedModelError, match=pattern) as error:
            load_trained(path)
        message = str(error.value)
        assert "\n" not in message and message.endswith("."), (case, message)
        assert str(path) in message, (case, message)


def test_a_predictor_module_of_ones_own_in_a_model_file_is_refused(tmp_path: Path) -> None:
    contents = model_file_contents(Classifier(LeNet()), "mnist", False)
    with pytest.raises(TrainedModelError, match="predictor module of your own"):
        load_trained(save(contents, tmp_path / "own"))
