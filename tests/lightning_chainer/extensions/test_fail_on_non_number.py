"""FailOnNonNumber: names the first iteration whose loss was not a number, across its held losses."""

from __future__ import annotations

import pytest
from helpers import FixedModule, make_trainer, train_loader

from lightning_chainer.extensions import FailOnNonNumber


def test_fail_on_non_number_names_the_first_bad_iteration() -> None:
    class Diverging(FixedModule):
        def training_step(self, batch, batch_idx):
            loss = super().training_step(batch, batch_idx)
            return loss * float("inf") if self.global_step >= 2 else loss

    with pytest.raises(RuntimeError, match="at iteration 3"):
        make_trainer([FailOnNonNumber(trigger=(1, "epoch"))], max_epochs=1).fit(Diverging(), train_loader())


def test_fail_on_non_number_finds_the_first_bad_loss_across_buffer_flushes(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a 3-loss buffer, 8 steps flush it twice before the epoch's trigger; iteration 5 is still named."""

    class Diverging(FixedModule):
        def training_step(self, batch, batch_idx):
            loss = super().training_step(batch, batch_idx)
            return loss * float("nan") if self.global_step in (4, 6) else loss

    monkeypatch.setattr(FailOnNonNumber, "chunk", 3)
    with pytest.raises(RuntimeError, match="at iteration 5\\."):
        make_trainer([FailOnNonNumber(trigger=(1, "epoch"))], max_epochs=1).fit(Diverging(), train_loader())
