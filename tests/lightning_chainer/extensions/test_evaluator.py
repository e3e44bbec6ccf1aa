"""Evaluator: the mean of batch means as Chainer, per-sample means when weighted, the module left as it was."""

from __future__ import annotations

from pathlib import Path

import torch
from helpers import FixedModule, make_trainer, train_loader, val_loader

from lightning_chainer.extensions import Evaluator, LogReport


def test_evaluator_weighted_gives_per_sample_mean_and_restores_train_mode(tmp_path: Path) -> None:
    class SizeModule(FixedModule):
        def validation_step(self, batch, batch_idx):
            n = batch[0].shape[0]
            self.log("validation/main/loss", torch.tensor(float(n)), batch_size=n)

    module = SizeModule()
    cbs = [
        Evaluator(val_loader(6), name="test", trigger=(1, "epoch")),
        Evaluator(val_loader(6), name="exact", weighted=True),
        LogReport(out=str(tmp_path)),
    ]
    make_trainer(cbs, max_epochs=1, limit_val_batches=0).fit(module, train_loader())
    entry = cbs[2].log[0]
    assert entry["test/main/loss"] == 3.0  # batches of 4 and 2: mean of batch means
    assert entry["exact/main/loss"] == (4 * 4 + 2 * 2) / 6
    assert module.training and "log" not in module.__dict__
