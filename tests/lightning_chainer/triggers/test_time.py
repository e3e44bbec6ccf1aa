"""TimeTrigger fires where real Chainer 7.8.1's TimeTrigger fires on the same clock, and continues after a resume.

Both sides read one fake clock. Chainer's trigger reads ``trainer.elapsed_time``, which is
``_snapshot_elapsed_time + now - _start_at``; ours reads its own elapsed time, built on ``time.perf_counter``.
Each run here starts at its first iteration, so both count the same seconds.
"""

from __future__ import annotations

import dataclasses
import time
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from helpers import chainer_trainers, step_at

from lightning_chainer.triggers import TimeTrigger
from mnist_lightning.chainer_compat import import_chainer

ITERS_PER_EPOCH = 6
ITERATIONS = range(1, 61)
#: The clock at each iteration: short steps, with a few long ones that pass several periods at once.
CLOCK = dict(zip(ITERATIONS, np.cumsum(np.random.default_rng(3).exponential(0.3, len(ITERATIONS))), strict=True))
CLOCK[30] += 4.0
CLOCK.update({i: t + 4.0 for i, t in CLOCK.items() if i > 30})


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> dict[str, float]:
    """``time.perf_counter`` returns ``clock['now']``."""
    now = {"now": 0.0}
    monkeypatch.setattr(time, "perf_counter", lambda: now["now"])
    return now


def chainer_run(period: float, resume_at: int | None) -> list[int]:
    """Iterations where Chainer's trigger fires, resumed through its serializers from a snapshot taken right after
    the iteration before ``resume_at``."""
    import_chainer()
    from chainer import serializers
    from chainer.training import triggers

    trigger = triggers.TimeTrigger(period)
    snapshot_elapsed, start_at = 0.0, CLOCK[1]
    fired = []
    for i, trainer in chainer_trainers(ITERATIONS, ITERS_PER_EPOCH):
        if i == resume_at:
            saved = serializers.DictionarySerializer()
            trigger.serialize(saved)
            snapshot_elapsed += CLOCK[i - 1] - start_at  # the trainer's _snapshot_elapsed_time
            start_at = CLOCK[i]
            trigger = triggers.TimeTrigger(period)
            trigger.serialize(serializers.NpzDeserializer(saved.target))
        trainer.elapsed_time = snapshot_elapsed + CLOCK[i] - start_at
        if trigger(trainer):
            fired.append(i)
    return fired


def our_run(period: float, resume_at: int | None, clock: dict[str, float], trainer: Any = None) -> list[int]:
    """What :func:`chainer_run` records, for our trigger resumed through ``state_dict`` / ``load_state_dict``."""
    trigger = TimeTrigger(period)
    fired = []
    for i in ITERATIONS:
        if i == resume_at:
            saved = trigger.state_dict()  # the clock still reads iteration i - 1's time
            trigger = TimeTrigger(period)
            trigger.load_state_dict(saved)
        clock["now"] = 100.0 + CLOCK[i]
        if trigger(dataclasses.replace(step_at(i, ITERS_PER_EPOCH), trainer=trainer)):
            fired.append(i)
    return fired


@pytest.mark.parametrize("period", [0.5, 1, 2.5, 7.0])
@pytest.mark.parametrize("resume_at", [None, 2, 17, 31, 45])
def test_time_trigger_fires_where_chainers_does_before_and_after_a_resume(
    period: float, resume_at: int | None, clock: dict[str, float]
) -> None:
    ours = our_run(period, resume_at, clock)
    assert ours == chainer_run(period, resume_at)
    assert len(ours) >= 2


def test_time_trigger_catches_up_one_period_per_iteration_after_a_long_one(clock: dict[str, float]) -> None:
    fired = our_run(1.0, None, clock)
    assert {30, 31, 32, 33} <= set(fired)  # the 4 s step at iteration 30 passed four periods


def test_time_trigger_state_holds_the_elapsed_time_and_the_next_fire_time(clock: dict[str, float]) -> None:
    trigger = TimeTrigger(2.0)
    for i, now in ((1, 10.0), (2, 12.5)):
        clock["now"] = now
        assert trigger(step_at(i, ITERS_PER_EPOCH)) == (i == 2)
    clock["now"] = 13.0
    assert trigger.state_dict() == {"next_time": 4.0, "elapsed_time": 3.0}
    resumed = TimeTrigger(2.0)
    resumed.load_state_dict(trigger.state_dict())
    clock["now"] = 500.0
    assert not resumed(step_at(3, ITERS_PER_EPOCH))  # the clock restarts at the resumed run's first iteration
    clock["now"] = 501.5
    assert resumed(step_at(4, ITERS_PER_EPOCH)) and resumed.state_dict() == {"next_time": 6.0, "elapsed_time": 4.5}


def test_time_trigger_on_several_ranks_follows_rank_zero(clock: dict[str, float]) -> None:
    rank_zero_says = {"fire": False}
    broadcasts = []

    def broadcast(obj: Any, src: int = 0) -> Any:
        broadcasts.append((obj, src))
        return rank_zero_says["fire"]

    trainer = SimpleNamespace(world_size=2, strategy=SimpleNamespace(broadcast=broadcast))
    trigger = TimeTrigger(1.0)
    for i, now, rank_zero in ((1, 0.0, False), (2, 5.0, False), (3, 5.5, True)):
        clock["now"] = now
        rank_zero_says["fire"] = rank_zero
        assert trigger(dataclasses.replace(step_at(i, ITERS_PER_EPOCH), trainer=trainer)) == rank_zero
    assert broadcasts == [(False, 0), (True, 0), (True, 0)]
    assert trigger.state_dict()["next_time"] == 2.0  # moved on only by the firing rank 0 decided


@pytest.mark.parametrize("period", [0, -1.0, float("inf"), float("nan"), "60", None, True])
def test_time_trigger_refuses_a_period_that_is_not_a_positive_number(period: Any) -> None:
    with pytest.raises(ValueError, match=r"period must be a positive number of seconds, e.g. TimeTrigger\(60.0\)"):
        TimeTrigger(period)
