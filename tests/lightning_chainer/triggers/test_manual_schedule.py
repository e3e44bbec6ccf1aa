"""ManualScheduleTrigger fires and finishes where real Chainer 7.8.1's does, and continues the same after a resume."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import chainer_trainers, step_at

from lightning_chainer.triggers import ManualScheduleTrigger
from mnist_lightning.chainer_compat import import_chainer

ITERS_PER_EPOCH = 7
ITERATIONS = range(1, 31)

SCHEDULES = [([0.5, 2], "epoch"), (3, "iteration"), ([4, 10, 11], "iteration"), ([1, 2.5, 3], "epoch"), (100, "epoch")]


def run(trigger: Any, iterations: range) -> list[tuple[int, bool, bool]]:
    """``(iteration, fired, finished)`` of our ``trigger`` at each of ``iterations``."""
    return [(i, trigger(step_at(i, ITERS_PER_EPOCH)), trigger.finished) for i in iterations]


@pytest.mark.parametrize(("points", "unit"), SCHEDULES)
def test_manual_schedule_fires_and_finishes_where_chainers_does(points: Any, unit: str) -> None:
    import_chainer()
    from chainer.training import triggers

    reference = triggers.ManualScheduleTrigger(points, unit)
    theirs = [(i, bool(reference(t)), reference.finished) for i, t in chainer_trainers(ITERATIONS, ITERS_PER_EPOCH)]
    ours = run(ManualScheduleTrigger(points, unit), ITERATIONS)
    assert ours == theirs
    assert any(fire for _, fire, _ in ours) == (points != 100)  # each schedule within the run fires
    assert ours[-1][2] == (points != 100)  # ... and is finished by its end


@pytest.mark.parametrize(("points", "unit"), SCHEDULES)
def test_manual_schedule_state_continues_after_a_resume(points: Any, unit: str) -> None:
    whole = run(ManualScheduleTrigger(points, unit), ITERATIONS)
    first = ManualScheduleTrigger(points, unit)
    before = run(first, range(1, 16))
    resumed = ManualScheduleTrigger(points, unit)
    resumed.load_state_dict(first.state_dict())
    assert before + run(resumed, range(16, ITERATIONS.stop)) == whole


def test_manual_schedule_takes_a_tuple_of_points_as_a_list() -> None:
    fires = [i for i, fire, _ in run(ManualScheduleTrigger((1, 2.5), "epoch"), range(1, 22)) if fire]
    assert fires == [7, 18]


def test_manual_schedule_refuses_an_unknown_unit() -> None:
    with pytest.raises(ValueError, match="Trigger unit must be either 'epoch' or 'iteration'."):
        ManualScheduleTrigger([1], "step")
