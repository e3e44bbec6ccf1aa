"""The Classifier makes its own update (manual optimization) unless the Trainer clips or accumulates gradients.

Both ways give the same weights, count the same ``global_step``, and resume each other's checkpoints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch

from mnist_lightning.classifier import Classifier
from mnist_lightning.data import ImageDataModule

BATCHES = 3  # batches per epoch


def _fit(data: Path, epochs: int, ckpt_path: Path | None = None, **trainer_flags: Any) -> tuple[Classifier, L.Trainer]:
    """Fit the MLP on the tiny MNIST from seed 0, with ``trainer_flags`` added to the Trainer's."""
    L.seed_everything(0, verbose=False)
    model = Classifier("mlp", n_units=10)
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_train_batches=BATCHES,
        limit_val_batches=1,
        **trainer_flags,
    )
    trainer.fit(model, datamodule=ImageDataModule(str(data), batch_size=32, seed=0), ckpt_path=ckpt_path)
    return model, trainer


def _weights(model: Classifier) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def test_manual_step_equals_lightnings_automatic_one(tiny_mnist: Path) -> None:
    """A clip that never clips switches to Lightning's automatic optimization, with bit-equal weights."""
    manual, manual_trainer = _fit(tiny_mnist, 2)
    automatic, automatic_trainer = _fit(tiny_mnist, 2, gradient_clip_val=1e30)
    assert manual.automatic_optimization is False and automatic.automatic_optimization is True
    assert manual_trainer.global_step == automatic_trainer.global_step == 2 * BATCHES
    for a, b in zip(_weights(manual), _weights(automatic), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("first", ["manual", "automatic"])
def test_a_checkpoint_of_either_kind_resumes_in_the_other(tiny_mnist: Path, tmp_path: Path, first: str) -> None:
    """``global_step`` and the weights continue across kinds, as if the run had not stopped."""
    clip = {"gradient_clip_val": 1e30}
    first_flags, then_flags = (clip, {}) if first == "automatic" else ({}, clip)
    _, trainer = _fit(tiny_mnist, 1, **first_flags)
    path = tmp_path / "one_epoch.ckpt"
    trainer.save_checkpoint(path)
    resumed, resumed_trainer = _fit(tiny_mnist, 2, ckpt_path=path, **then_flags)
    assert resumed.automatic_optimization is (first == "manual")
    assert resumed_trainer.global_step == 2 * BATCHES
    straight, _ = _fit(tiny_mnist, 2)
    for a, b in zip(_weights(resumed), _weights(straight), strict=True):
        assert torch.equal(a, b)


def test_accumulation_takes_lightnings_automatic_optimization(tiny_mnist: Path) -> None:
    """``accumulate_grad_batches`` is automatic optimization only: the Classifier then leaves the step to it."""
    model, trainer = _fit(tiny_mnist, 1, accumulate_grad_batches=3)
    assert model.automatic_optimization is True
    assert trainer.global_step == 1


def test_the_kind_of_optimization_cannot_be_set() -> None:
    with pytest.raises(AttributeError, match="clipping and accumulation"):
        Classifier("mlp").automatic_optimization = True
