"""Classifier: Chainer's observation names, optimizers by name, checkpoints that rebuild the model."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.loggers import Logger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mnist_lightning.classifier import OPTIMIZERS, Classifier, make_optimizer
from mnist_lightning.data import ImageDataModule
from mnist_lightning.models import MLP, MODELS, LeNet, build_predictor, register_model
from mnist_lightning.weights import load_npz, save_npz


@pytest.mark.parametrize(
    ("name", "cls", "expected"),
    [
        ("adam", torch.optim.Adam, {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8}),
        ("sgd", torch.optim.SGD, {"lr": 0.01, "momentum": 0}),
        ("momentum_sgd", torch.optim.SGD, {"lr": 0.01, "momentum": 0.9}),
        ("adadelta", torch.optim.Adadelta, {"lr": 1.0, "rho": 0.95, "eps": 1e-6}),
        ("adagrad", torch.optim.Adagrad, {"lr": 1e-3, "eps": 1e-8}),
        ("rmsprop", torch.optim.RMSprop, {"lr": 0.01, "alpha": 0.99, "eps": 1e-8}),
        ("adamw", torch.optim.AdamW, {"lr": 1e-3, "weight_decay": 0.0, "eps": 1e-8}),
    ],
)
def test_optimizers_have_chainers_defaults(name: str, cls: type, expected: dict) -> None:
    opt = make_optimizer(name, nn.Linear(2, 2).parameters())
    assert type(opt) is cls
    for key, value in expected.items():
        assert opt.defaults[key] == value, key


def test_lr_overrides_and_unknown_name() -> None:
    assert make_optimizer("adam", nn.Linear(2, 2).parameters(), lr=0.5).defaults["lr"] == 0.5
    with pytest.raises(ValueError, match="unknown optimizer 'lbfgs'"):
        make_optimizer("lbfgs", nn.Linear(2, 2).parameters())
    with pytest.raises(ValueError, match="unknown optimizer"):
        Classifier("lenet", optimizer="lbfgs")
    assert set(OPTIMIZERS) == {"adam", "chainer_adam", "sgd", "momentum_sgd", "adadelta", "adagrad", "rmsprop", "adamw"}


class Recorder(Logger):
    """A logger that keeps what Lightning writes: {step: {name: value}}."""

    def __init__(self) -> None:
        super().__init__()
        self.written: dict[int, dict[str, float]] = {}

    @property
    def name(self) -> str:
        return "recorder"

    @property
    def version(self) -> int:
        return 0

    def log_hyperparams(self, params: object, *args: object, **kwargs: object) -> None:
        pass

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self.written.setdefault(step, {}).update(metrics)


class Outputs(L.Callback):
    def __init__(self) -> None:
        self.steps: list[dict[str, float]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.steps.append({k: float(v) for k, v in outputs.items()})


def test_logs_chainer_observation_names(tiny_mnist: Path, tmp_path: Path) -> None:
    model = Classifier("mlp", n_units=20, optimizer="momentum_sgd", lr=0.1)
    recorder, outputs = Recorder(), Outputs()
    trainer = L.Trainer(
        max_epochs=1,
        logger=recorder,
        log_every_n_steps=4,
        callbacks=[outputs],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    dm = ImageDataModule(tiny_mnist, batch_size=16, test_batch_size=20)
    trainer.fit(model, datamodule=dm)
    # every step returns its observation for the extensions ...
    assert len(outputs.steps) == 10
    assert all(set(step) == {"loss", "main/loss", "main/accuracy"} for step in outputs.steps)
    # ... and none reaches Lightning's logger, which would write it at its own steps: TensorBoardReport writes the
    # log's entries instead
    assert recorder.written == {}
    assert {"validation/main/loss", "validation/main/accuracy"} <= set(trainer.callback_metrics)
    results = trainer.test(model, datamodule=dm, verbose=False)[0]
    assert set(results) == {"test/main/loss", "test/main/accuracy"}
    assert 0.0 <= results["test/main/accuracy"] <= 1.0


def test_checkpoint_alone_rebuilds_the_model(tiny_mnist: Path, tmp_path: Path) -> None:
    model = Classifier("mlp", n_units=33, optimizer="adagrad")
    trainer = L.Trainer(
        max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False, limit_val_batches=0
    )
    trainer.fit(model, datamodule=ImageDataModule(tiny_mnist, batch_size=16))
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    torch.load(path, weights_only=True)  # nothing but plain types and tensors
    loaded = Classifier.load_from_checkpoint(path)
    assert isinstance(loaded.predictor, MLP) and loaded.predictor.n_units == 33
    assert loaded.hparams.optimizer == "adagrad"
    for a, b in zip(model.parameters(), loaded.parameters(), strict=True):
        assert torch.equal(a.cpu(), b)


def test_custom_predictor_needs_to_be_passed_again(tmp_path: Path) -> None:
    model = Classifier(LeNet())
    assert model.hparams.predictor is None
    with pytest.raises(TypeError, match="load_from_checkpoint"):
        Classifier(None)


class TinyNet(nn.Module):
    """The smallest registered model: one linear layer on the flattened example."""

    def __init__(self, input_shape: tuple[int, int, int] = (1, 28, 28), n_classes: int = 10) -> None:
        super().__init__()
        self.fc = nn.Linear(math.prod(input_shape), n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


@pytest.fixture
def tiny_model() -> Iterator[str]:
    """``TinyNet`` registered under a name for the length of one test."""
    register_model("tiny", TinyNet)
    yield "tiny"
    del MODELS["tiny"]


def fit(model: Classifier, shape: tuple[int, int, int], n_classes: int, root: Path) -> L.Trainer:
    """Four steps on random examples of ``shape``, then a checkpoint at ``root/model.ckpt``."""
    generator = torch.Generator().manual_seed(0)
    data = TensorDataset(
        torch.rand(32, *shape, generator=generator), torch.randint(n_classes, (32,), generator=generator)
    )
    trainer = L.Trainer(
        max_steps=4,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=root,
    )
    trainer.fit(model, train_dataloaders=DataLoader(data, batch_size=8))
    trainer.save_checkpoint(root / "model.ckpt")
    return trainer


def test_a_registered_model_trains_reloads_and_round_trips_its_weights(tiny_model: str, tmp_path: Path) -> None:
    shape, n_classes = (3, 4, 4), 5
    model = Classifier(tiny_model, optimizer="sgd", input_shape=shape, n_classes=n_classes)
    before = model.predictor.fc.weight.detach().clone()
    assert fit(model, shape, n_classes, tmp_path).global_step == 4
    assert not torch.equal(before, model.predictor.fc.weight)
    loaded = Classifier.load_from_checkpoint(tmp_path / "model.ckpt")
    assert isinstance(loaded.predictor, TinyNet) and loaded.predictor.fc.weight.shape == (5, 48)
    assert loaded.hparams.input_shape == [3, 4, 4] and loaded.hparams.n_classes == 5
    assert all(torch.equal(a.cpu(), b) for a, b in zip(model.parameters(), loaded.parameters(), strict=True))
    save_npz(model.predictor, tmp_path / "w.npz", tiny_model, 100, input_shape=shape, n_classes=n_classes)
    fresh = build_predictor(tiny_model, input_shape=shape, n_classes=n_classes)
    load_npz(fresh, tmp_path / "w.npz", tiny_model, 100, input_shape=shape, n_classes=n_classes)
    assert torch.equal(fresh.fc.weight, model.predictor.fc.weight.cpu())
    assert torch.equal(fresh.fc.bias, model.predictor.fc.bias.cpu())


def test_lenet_for_another_dataset_reloads_with_its_shape(tmp_path: Path) -> None:
    model = Classifier("lenet", input_shape=(3, 32, 32), n_classes=100)
    fit(model, (3, 32, 32), 100, tmp_path)
    torch.load(tmp_path / "model.ckpt", weights_only=True)  # nothing but plain types and tensors
    loaded = Classifier.load_from_checkpoint(tmp_path / "model.ckpt")
    assert loaded(torch.zeros(2, 3, 32, 32)).shape == (2, 100)
    assert all(torch.equal(a.cpu(), b) for a, b in zip(model.parameters(), loaded.parameters(), strict=True))


def test_a_checkpoint_without_input_shape_and_classes_loads_as_mnist(tmp_path: Path) -> None:
    model = Classifier("mlp", n_units=12)
    fit(model, (1, 28, 28), 10, tmp_path)
    checkpoint = torch.load(tmp_path / "model.ckpt", weights_only=True)
    for key in ("input_shape", "n_classes"):
        del checkpoint["hyper_parameters"][key]
    torch.save(checkpoint, tmp_path / "mnist.ckpt")
    loaded = Classifier.load_from_checkpoint(tmp_path / "mnist.ckpt")
    assert isinstance(loaded.predictor, MLP) and loaded.predictor.input_shape == (1, 28, 28)
    assert loaded(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_predict_step_gives_classes_and_probabilities_of_images_or_of_images_and_labels() -> None:
    model = Classifier("mlp", n_units=8).eval()
    x, t = torch.rand(5, 1, 28, 28), torch.tensor([0, 1, 2, 3, 4])
    with torch.no_grad():
        logits = model(x)
        plain, single, pair = (model.predict_step(batch, 0) for batch in (x, [x], (x, t)))
    assert set(plain) == set(single) == {"predictions", "probabilities"}
    assert torch.equal(plain["predictions"], logits.argmax(dim=1)) and plain["predictions"].dtype == torch.int64
    assert torch.allclose(plain["probabilities"], logits.softmax(dim=1))
    assert torch.allclose(plain["probabilities"].sum(dim=1), torch.ones(5))
    assert torch.equal(pair["labels"], t) and torch.equal(pair["predictions"], plain["predictions"])


def test_trainer_predict_on_the_datamodule_classifies_the_test_split_as_the_test_scores_it(tiny_mnist: Path) -> None:
    model = Classifier("mlp", n_units=20)
    dm = ImageDataModule(tiny_mnist, batch_size=16, test_batch_size=16)
    options = dict(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer = L.Trainer(max_steps=4, limit_val_batches=0, **options)
    trainer.fit(model, datamodule=dm)
    trainer.test(model, datamodule=dm, verbose=False)
    accuracy = float(trainer.callback_metrics["test/main/accuracy"])
    outputs = L.Trainer(**options).predict(model, datamodule=ImageDataModule(tiny_mnist, test_batch_size=16))
    predictions, labels = (torch.cat([o[key] for o in outputs]) for key in ("predictions", "labels"))
    assert len(outputs) == 4 and len(labels) == 50
    assert (predictions == labels).float().mean().item() == pytest.approx(accuracy, abs=1e-6)
