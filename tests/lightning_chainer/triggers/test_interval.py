"""IntervalTrigger fires where real Chainer 7.8.1's IntervalTrigger fires, and continues the same after a resume."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import chainer_trainers, step_at

from lightning_chainer.triggers import IntervalTrigger, get_trigger
from mnist_lightning.chainer_compat import import_chainer

ITERS_PER_EPOCH = 7  #: no fractional period below is a whole number of iterations of an epoch this long
ITERATIONS = range(1, 41)

PERIODS = [(1, "iteration"), (3, "iteration"), (1, "epoch"), (0.5, "epoch"), (2, "epoch"), (1.5, "epoch")]


def fired(trigger: Any, iterations: range) -> list[int]:
    """The iterations of ``iterations`` at which our ``trigger`` fires."""
    return [i for i in iterations if trigger(step_at(i, ITERS_PER_EPOCH))]


@pytest.mark.parametrize(("period", "unit"), PERIODS)
def test_interval_trigger_fires_where_chainers_fires(period: float, unit: str) -> None:
    import_chainer()
    from chainer.training import triggers

    reference = triggers.IntervalTrigger(period, unit)
    theirs = [i for i, trainer in chainer_trainers(ITERATIONS, ITERS_PER_EPOCH) if reference(trainer)]
    ours = fired(IntervalTrigger(period, unit), ITERATIONS)
    assert ours == theirs and len(ours) >= 2
    assert fired(get_trigger((period, unit)), ITERATIONS) == ours  # what a tuple given as a trigger becomes


@pytest.mark.parametrize(("period", "unit"), PERIODS)
def test_interval_trigger_state_continues_the_schedule_after_a_resume(period: float, unit: str) -> None:
    whole = fired(IntervalTrigger(period, unit), ITERATIONS)
    first = IntervalTrigger(period, unit)
    before = fired(first, range(1, 18))
    resumed = IntervalTrigger(period, unit)
    resumed.load_state_dict(first.state_dict())
    assert before + fired(resumed, range(18, ITERATIONS.stop)) == whole
    assert resumed.get_training_length() == (period, unit)


def test_interval_trigger_refuses_an_unknown_unit() -> None:
    with pytest.raises(ValueError, match="Trigger unit must be either 'epoch' or 'iteration'."):
        IntervalTrigger(1, "epochs")
