"""EarlyStoppingTrigger: its count and best value travel in snapshots, so a resumed run keeps its patience."""

from __future__ import annotations

from pathlib import Path

import torch
from helpers import FixedModule, make_trainer, train_loader, val_loader

from lightning_chainer.extensions import LogReport, snapshot
from lightning_chainer.triggers import EarlyStoppingTrigger


def test_early_stopping_state_survives_resume(tmp_path: Path) -> None:
    class Plateau(FixedModule):
        def validation_step(self, batch, batch_idx):
            self.log("validation/main/loss", torch.tensor(1.0), batch_size=batch[0].shape[0])

    def cbs(out: Path) -> list:
        return [
            EarlyStoppingTrigger(monitor="validation/main/loss", patience=3),
            LogReport(out=str(out)),
            snapshot(out=str(out)),
        ]

    first = cbs(tmp_path / "a")
    make_trainer(first, max_epochs=3).fit(Plateau(), train_loader(), val_loader())
    assert first[0].count == 2  # epoch 1 sets best, epochs 2 and 3 do not improve
    resumed = cbs(tmp_path / "b")
    trainer = make_trainer(resumed, max_epochs=10)
    trainer.fit(Plateau(), train_loader(), val_loader(), ckpt_path=str(tmp_path / "a" / "snapshot_iter_24"))
    assert resumed[0].count == 3
    assert [e["epoch"] for e in resumed[1].log] == [1, 2, 3, 4]  # stopped after one more epoch, not three
