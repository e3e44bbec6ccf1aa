"""LRScheduler steps a torch scheduler on a trigger as pytorch-pfn-extras' does, saves it in the snapshot, and a
run resumed from a mid-run snapshot continues the same learning-rate sequence."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from helpers import ITERS_PER_EPOCH, FixedModule, make_trainer, step_at, train_loader, val_loader
from lightning.pytorch.callbacks import Callback
from torch.optim.lr_scheduler import LambdaLR, ReduceLROnPlateau, StepLR

from lightning_chainer import Step
from lightning_chainer.extensions import LRScheduler, snapshot
from lightning_chainer.extensions.lr_scheduler import DEFAULT_PLATEAU_KEY

EPOCHS = 4
PERIOD = 3  #: iterations between two scheduler steps: not a divisor of an epoch, so a resume falls between two


def sgd(lr: float = 0.1) -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)


def lr_of(optimizer: torch.optim.Optimizer) -> float:
    return float(optimizer.param_groups[0]["lr"])


def inverse(optimizer: torch.optim.Optimizer) -> LambdaLR:
    """A scheduler whose construction sets the first epoch's rate (so a resumed one must not keep it)."""
    return LambdaLR(optimizer, lambda epoch: 1 / (1 + epoch))


SCHEDULES = {
    "StepLR": lambda optimizer: StepLR(optimizer, 2, gamma=0.5),
    "LambdaLR": inverse,
}


def by_hand(build: Any, iterations: int) -> list[float]:
    """The learning rate each iteration trains with when the scheduler is stepped after every ``PERIOD``-th."""
    optimizer = sgd()
    scheduler = build(optimizer)
    seen = []
    for i in range(1, iterations + 1):
        seen.append(lr_of(optimizer))
        optimizer.step()
        if i % PERIOD == 0:
            scheduler.step()
    return seen


@pytest.mark.parametrize("given", ["instance", "factory"])
@pytest.mark.parametrize("build", SCHEDULES.values(), ids=SCHEDULES.keys())
def test_lr_scheduler_sets_the_rates_of_the_scheduler_stepped_by_hand(build: Any, given: str) -> None:
    optimizer = sgd()
    extension = LRScheduler(build(optimizer) if given == "instance" else build, trigger=(PERIOD, "iteration"))
    extension.initialize(SimpleNamespace(optimizers=[optimizer]), None)
    seen = []
    for i in range(1, 21):
        seen.append(lr_of(optimizer))
        optimizer.step()
        extension.run(step_at(i, ITERS_PER_EPOCH))
    assert seen == by_hand(build, 20)
    assert len(set(seen)) > 2


class Rates(Callback):
    """The learning rate each training iteration runs with, by Lightning's ``global_step``."""

    def __init__(self) -> None:
        self.seen: dict[int, float] = {}

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        self.seen[trainer.global_step] = lr_of(trainer.optimizers[0])


class Prebuilt(FixedModule):
    """Trains the optimizer built with the module, as a user who builds the scheduler on it does."""

    def __init__(self) -> None:
        super().__init__()
        self.optimizer = torch.optim.SGD(self.parameters(), lr=self.lr)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optimizer


def fit(out: Path, given: str, build: Any, ckpt_path: Path | None = None) -> dict[int, float]:
    module = Prebuilt() if given == "instance" else FixedModule()
    scheduler = build(module.optimizer) if given == "instance" else build
    rates = Rates()
    callbacks = [LRScheduler(scheduler, trigger=(PERIOD, "iteration")), snapshot(out=str(out)), rates]
    make_trainer(callbacks, max_epochs=EPOCHS).fit(module, train_loader(), ckpt_path=ckpt_path)
    return rates.seen


@pytest.mark.parametrize(("given", "build"), [("instance", SCHEDULES["StepLR"]), ("factory", inverse)])
def test_a_run_resumed_from_a_mid_run_snapshot_continues_the_same_rates(tmp_path: Path, given: str, build: Any) -> None:
    whole = fit(tmp_path / "whole", given, build)
    iterations = EPOCHS * ITERS_PER_EPOCH
    assert list(whole.values()) == by_hand(build, iterations)
    middle = 2 * ITERS_PER_EPOCH
    path = tmp_path / "whole" / f"snapshot_iter_{middle}"
    state = torch.load(path, weights_only=True)["callbacks"]["LRScheduler"]["extension"]["scheduler"]
    assert state["last_epoch"] == middle // PERIOD
    resumed = fit(tmp_path / "resumed", given, build, ckpt_path=path)
    assert list(resumed) == list(range(middle, iterations))
    assert resumed == {step: rate for step, rate in whole.items() if step >= middle}


def plateau_step(i: int, loss: float | None, key: str = DEFAULT_PLATEAU_KEY) -> Step:
    step = step_at(i, ITERS_PER_EPOCH)
    if loss is not None:
        step.observation[key] = torch.tensor(loss)
    return step


def test_reduce_lr_on_plateau_gets_the_observed_validation_loss() -> None:
    losses = [1.0, 0.9, 0.95, 0.97, 0.99, 0.5, 0.6, 0.7]
    optimizer, hand_optimizer = sgd(), sgd()
    extension = LRScheduler(ReduceLROnPlateau(optimizer, patience=1, factor=0.5), trigger=(1, "iteration"))
    extension.initialize(SimpleNamespace(optimizers=[optimizer]), None)
    scheduler = ReduceLROnPlateau(hand_optimizer, patience=1, factor=0.5)
    ours, theirs = [], []
    for i, loss in enumerate(losses, 1):
        extension.run(plateau_step(i, loss))
        scheduler.step(loss)
        ours.append(lr_of(optimizer))
        theirs.append(lr_of(hand_optimizer))
    assert ours == theirs
    assert len(set(ours)) > 1


def test_step_by_value_reads_another_key_and_a_missing_one_is_named() -> None:
    optimizer = sgd()
    extension = LRScheduler(
        ReduceLROnPlateau(optimizer, patience=0, factor=0.5),
        stepper=LRScheduler.step_by_value("val/loss"),
        trigger=(1, "iteration"),
    )
    extension.initialize(SimpleNamespace(optimizers=[optimizer]), None)
    extension.run(plateau_step(1, 1.0, "val/loss"))
    extension.run(plateau_step(2, 1.0, "val/loss"))
    assert lr_of(optimizer) == 0.05
    with pytest.raises(ValueError, match=r"LRScheduler: 'val/loss' is not in the observation of iteration 3 \("):
        extension.run(plateau_step(3, 1.0, DEFAULT_PLATEAU_KEY))


class Plateau(FixedModule):
    """Its validation loss never improves after the first epoch."""

    def __init__(self) -> None:
        super().__init__()
        self.val_loss_table[1:] = self.val_loss_table[0] + 1


def test_reduce_lr_on_plateau_in_a_run_sees_each_epochs_validation_loss() -> None:
    optimizer_rates = Rates()
    plateau = LRScheduler(lambda optimizer: ReduceLROnPlateau(optimizer, patience=0, factor=0.5))
    module = Plateau()
    trainer = make_trainer([plateau, optimizer_rates], max_epochs=EPOCHS, num_sanity_val_steps=0)
    trainer.fit(module, train_loader(), val_loader())
    hand_optimizer = sgd()
    scheduler = ReduceLROnPlateau(hand_optimizer, patience=0, factor=0.5)
    expected = []
    for epoch in range(EPOCHS):
        expected += [lr_of(hand_optimizer)] * ITERS_PER_EPOCH
        scheduler.step(float(module.val_loss_table[epoch]))
    assert list(optimizer_rates.seen.values()) == expected
    assert len(set(expected)) > 2


def test_lr_scheduler_refuses_what_is_no_scheduler_nor_factory() -> None:
    with pytest.raises(TypeError, match="LRScheduler takes a torch.optim.lr_scheduler scheduler or a function"):
        LRScheduler(0.1)
    with pytest.raises(TypeError, match="LRScheduler's stepper must be a function"):
        LRScheduler(StepLR(sgd(), 2), stepper="step")  # type: ignore[arg-type]


def test_lr_scheduler_refuses_at_train_start_a_factory_without_a_scheduler_and_a_foreign_optimizer() -> None:
    trainer = SimpleNamespace(optimizers=[sgd()])
    with pytest.raises(TypeError, match="LRScheduler's factory must return a torch.optim.lr_scheduler scheduler"):
        LRScheduler(lambda optimizer: optimizer).initialize(trainer, None)
    with pytest.raises(ValueError, match="LRScheduler: the scheduler's optimizer is not one the trainer trains"):
        LRScheduler(StepLR(sgd(), 2)).initialize(trainer, None)
