"""MinValueTrigger and MaxValueTrigger fire at each new best interval mean; ManualScheduleTrigger beside them."""

from __future__ import annotations

import pickle
from pathlib import Path

from helpers import FixedModule, make_trainer, train_loader

from lightning_chainer import Extension
from lightning_chainer.extensions import LogReport
from lightning_chainer.triggers import ManualScheduleTrigger, MaxValueTrigger, MinValueTrigger


def test_best_value_and_manual_schedule_triggers(tmp_path: Path) -> None:
    class Fired(Extension):
        def __init__(self, trigger, name: str) -> None:
            super().__init__(trigger, name=name)
            self.at: list[int] = []

        def __call__(self, step) -> None:
            self.at.append(step.iteration)

    best_loss = Fired(MinValueTrigger("main/loss"), "loss")
    best_acc = Fired(MaxValueTrigger("main/accuracy", trigger=(4, "iteration")), "acc")
    manual = Fired(ManualScheduleTrigger([0.5, 2], "epoch"), "manual")
    cbs = [best_loss, best_acc, manual, LogReport(out=str(tmp_path), trigger=(4, "iteration"))]
    make_trainer(cbs, max_epochs=3).fit(FixedModule(), train_loader())
    log = cbs[3].log
    losses = [e["main/loss"] for e in log[1::2]]  # epoch ends
    expected, best = [], None
    for e, loss in zip(log[1::2], losses, strict=True):
        if best is None or loss < best:
            best = loss
            expected.append(e["iteration"])
    assert best_loss.at == expected
    expected, best = [], None
    for e in log:
        if best is None or e["main/accuracy"] > best:
            best = e["main/accuracy"]
            expected.append(e["iteration"])
    assert best_acc.at == expected
    assert manual.at == [4, 16] and manual.trigger.finished


def test_the_value_triggers_pickle_as_ddp_spawn_sends_them() -> None:
    """compare(best, new): a larger new value beats the best of a MaxValueTrigger, a smaller one a MinValueTrigger."""
    highest = pickle.loads(pickle.dumps(MaxValueTrigger("validation/main/accuracy")))
    lowest = pickle.loads(pickle.dumps(MinValueTrigger("validation/main/loss")))
    assert (highest._compare(0.5, 0.6), highest._compare(0.6, 0.5), highest._compare(0.5, 0.5)) == (True, False, False)
    assert (lowest._compare(0.6, 0.5), lowest._compare(0.5, 0.6), lowest._compare(0.5, 0.5)) == (True, False, False)
