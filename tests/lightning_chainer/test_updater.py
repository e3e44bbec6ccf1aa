"""Chainer's ``trainer.updater`` over Lightning: counters from the iteration being run, the optimizer as 'main'."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import FixedModule, make_trainer, train_loader

from lightning_chainer import ExtensionsManager
from lightning_chainer.step import Step
from lightning_chainer.updater import Updater


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An ExtensionsManager writes into ``result`` of the working directory, as Chainer: the test's own folder."""
    monkeypatch.chdir(tmp_path)


def test_the_counters_are_the_steps_and_lightnings_before_any() -> None:
    step: list[Step | None] = [None]
    updater = Updater(lambda: (None, step[0]))
    assert (updater.iteration, updater.epoch, updater.epoch_detail, updater.is_new_epoch) == (0, 0, 0.0, False)
    step[0] = Step(None, None, iteration=16, epoch=2, epoch_detail=2.0)
    assert (updater.iteration, updater.epoch, updater.epoch_detail, updater.is_new_epoch) == (16, 2, 2.0, True)
    step[0] = Step(None, None, iteration=17, epoch=2, epoch_detail=2.125)
    assert updater.is_new_epoch is False


def test_get_optimizer_is_lightnings_optimizer_with_its_target_and_refuses_other_names() -> None:
    found: list[Any] = []
    manager = ExtensionsManager((1, "epoch"))
    with pytest.raises(RuntimeError, match="before fit"):
        manager.updater.get_optimizer("main")
    with pytest.raises(KeyError, match="'gen'"):
        manager.updater.get_optimizer("gen")

    def look(trainer: Any) -> None:
        found.append((trainer.updater.get_optimizer("main"), trainer.updater.get_all_optimizers()["main"]))

    manager.extend(look, trigger=(1, "epoch"))
    module = FixedModule()
    lightning = make_trainer([manager], max_epochs=None)
    lightning.fit(module, train_loader())
    ((optimizer, same),) = found
    assert optimizer.target is module and same is optimizer
    assert optimizer.param_groups is lightning.optimizers[0].param_groups
    assert manager.updater.get_iterator("main") is lightning.train_dataloader
