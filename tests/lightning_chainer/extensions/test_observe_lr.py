"""observe_lr: reports the learning rate of each interval, as a LinearShift moves it."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import FixedModule, make_trainer, train_loader

from lightning_chainer.extensions import LinearShift, LogReport, observe_lr


def test_observe_lr_and_linear_shift(tmp_path: Path) -> None:
    cbs = [observe_lr(), LinearShift("lr", (0.1, 0.3), (1, 3), trigger=(1, "epoch")), LogReport(out=str(tmp_path))]
    make_trainer(cbs, max_epochs=4).fit(FixedModule(), train_loader())
    assert [e["lr"] for e in cbs[2].log] == pytest.approx([0.1, 0.1, 0.2, 0.3])
