"""The driver: what ``training_step`` returns joins the observation, snapshots run after every trigger, and
Chainer's start of training initializes what has not finished."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import FixedModule, make_trainer, train_loader
from manager_helpers import chainer_trainer

from lightning_chainer import ExtensionsManager, make_extension
from lightning_chainer.extensions import LogReport, snapshot
from lightning_chainer.triggers import ManualScheduleTrigger
from mnist_lightning.chainer_compat import import_chainer


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An ExtensionsManager writes into ``result`` of the working directory, as Chainer: the test's own folder."""
    monkeypatch.chdir(tmp_path)


def test_a_returned_dict_is_an_observation_like_self_log(tmp_path: Path) -> None:
    """training_step may return {'loss': ..., 'main/x': ...} instead of calling self.log every step."""

    class Returning(FixedModule):
        def training_step(self, batch, batch_idx):
            loss = super().training_step(batch, batch_idx)
            return {
                "loss": loss,
                "main/returned": torch.tensor(float(self.global_step)),
                "main/vector": loss.new_ones(2),
            }

    log = LogReport(out=str(tmp_path))
    make_trainer([log], max_epochs=2).fit(Returning(), train_loader())
    per_epoch = [sum(range(e * 8, e * 8 + 8)) / 8 for e in range(2)]
    assert [entry["main/returned"] for entry in log.log] == per_epoch
    assert all("main/vector" not in entry and "loss" not in entry for entry in log.log)
    assert "main/loss" in log.log[0]  # what self.log reported still arrives beside it


def test_snapshot_runs_after_every_trigger_of_its_iteration(tmp_path: Path) -> None:
    cbs = [snapshot(out=str(tmp_path), trigger=(1, "epoch")), snapshot(out=str(tmp_path), filename="s_{epoch}")]
    make_trainer(cbs, max_epochs=1).fit(FixedModule(), train_loader())
    ckpt = torch.load(tmp_path / "snapshot_iter_8", weights_only=True)
    states = [v["trigger"]["previous_iteration"] for k, v in ckpt["callbacks"].items() if k.startswith("Snapshot")]
    assert states == [8, 8]  # Chainer saved 7 for the second one and re-fired it after resume


def test_an_extension_whose_trigger_finished_is_not_initialized_as_in_chainer(tmp_path: Path) -> None:
    """Chainer's run() skips ``initialize`` of an extension whose trigger says ``finished`` (a past schedule)."""
    chainer = import_chainer()
    from chainer.training.triggers import ManualScheduleTrigger as ChainerSchedule

    def finished(schedule: type) -> object:
        trigger = schedule([1], "iteration")
        trigger.finished = True
        return trigger

    def initialized(schedule: type) -> list[str]:
        calls: list[str] = []
        make = chainer.training.make_extension if schedule is ChainerSchedule else make_extension
        for label, trigger in (("done", finished(schedule)), ("open", schedule([1], "iteration"))):
            ext = make(initializer=lambda trainer, label=label: calls.append(label))(lambda trainer: None)
            ext.__name__ = label
            target.extend(ext, trigger=trigger)
        return calls

    target = chainer_trainer(chainer, (1, "iteration"), tmp_path)
    theirs = initialized(ChainerSchedule)
    target.run()
    target = ExtensionsManager((1, "iteration"))
    ours = initialized(ManualScheduleTrigger)
    make_trainer([target], max_epochs=None).fit(FixedModule(), train_loader())
    assert ours == theirs == ["open"]
