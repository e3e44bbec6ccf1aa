"""What ``lightning_chainer._lightning`` reads from Lightning: this step's ``self.log`` values, and where
validation runs, checked against what Lightning really does (a Lightning upgrade that moves them fails here)."""

from __future__ import annotations

import pytest
import torch
from helpers import FixedModule, make_trainer, train_loader, val_loader

from lightning_chainer import Extension
from lightning_chainer._lightning import read_lightning


class Recorder(Extension):
    """Records what the driver hands to extensions every iteration."""

    def __init__(self) -> None:
        super().__init__()
        self.steps: list[tuple[int, int, float, dict]] = []
        self.lightning: list = []

    def __call__(self, step) -> None:
        self.steps.append((step.iteration, step.epoch, step.epoch_detail, dict(step.observation)))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.lightning.append(read_lightning(trainer, "train"))
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)


def test_lightning_internals_still_give_step_values_and_validation_timing() -> None:
    rec = Recorder()
    make_trainer([rec], max_epochs=1).fit(FixedModule(), train_loader(), val_loader())
    names = [[n for n, _ in view.step_values] for view in rec.lightning]
    assert names == [["main/loss", "main/accuracy"]] * 8
    assert all(isinstance(v, torch.Tensor) and v.dim() == 0 for view in rec.lightning for _, v in view.step_values)
    assert [view.validation_follows for view in rec.lightning] == [False] * 7 + [True]
    iteration, epoch, detail, obs = rec.steps[-1]
    assert (iteration, epoch, detail) == (8, 1, 1.0)
    assert list(obs) == ["main/loss", "main/accuracy", "validation/main/loss", "validation/main/accuracy"]
    assert [s[2] for s in rec.steps] == [i / 8 for i in range(1, 9)]


@pytest.mark.parametrize(
    "options",
    [
        {"max_epochs": 2},
        {"max_epochs": 2, "val_check_interval": 3},
        {"max_epochs": 2, "val_check_interval": 5, "check_val_every_n_epoch": None},
        {"max_epochs": 3, "check_val_every_n_epoch": 2},
        {"max_epochs": 2, "limit_train_batches": 6, "val_check_interval": 2},
    ],
)
def test_validation_follows_exactly_where_lightning_validates(options: dict) -> None:
    """read_lightning's ``validation_follows`` agrees with where validation really ran, schedule by schedule."""

    class Validated(Recorder):
        def __init__(self) -> None:
            super().__init__()
            self.validated_after: list[int] = []

        def on_validation_end(self, trainer, pl_module) -> None:
            if not trainer.sanity_checking:
                self.validated_after.append(trainer.global_step)
            super().on_validation_end(trainer, pl_module)

    rec = Validated()
    make_trainer([rec], **options).fit(FixedModule(), train_loader(), val_loader())
    follows = [index + 1 for index, view in enumerate(rec.lightning) if view.validation_follows]
    assert rec.validated_after and follows == rec.validated_after
