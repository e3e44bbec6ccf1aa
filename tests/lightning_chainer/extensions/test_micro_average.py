"""MicroAverage: the ratio of the interval's sums."""

from __future__ import annotations

from pathlib import Path

import torch
from helpers import FixedModule, make_trainer, train_loader

from lightning_chainer.extensions import LogReport, MicroAverage


def test_micro_average_reports_ratio_of_sums(tmp_path: Path) -> None:
    class Counts(FixedModule):
        def training_step(self, batch, batch_idx):
            self.log("main/correct", torch.tensor(float(batch_idx % 3)), on_step=True, on_epoch=False)
            self.log("main/total", torch.tensor(4.0), on_step=True, on_epoch=False)
            return super().training_step(batch, batch_idx)

    cbs = [MicroAverage("main/correct", "main/total", "main/micro"), LogReport(out=str(tmp_path))]
    make_trainer(cbs, max_epochs=1).fit(Counts(), train_loader())
    assert cbs[1].log[0]["main/micro"] == sum(i % 3 for i in range(8)) / 32
