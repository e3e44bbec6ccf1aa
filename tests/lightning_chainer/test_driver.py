"""The driver: what ``training_step`` returns joins the observation, and snapshots run after every trigger."""

from __future__ import annotations

from pathlib import Path

import torch
from helpers import FixedModule, make_trainer, train_loader

from lightning_chainer.extensions import LogReport, snapshot


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
