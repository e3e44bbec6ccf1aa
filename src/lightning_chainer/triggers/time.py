"""Chainer's ``TimeTrigger``: every ``period`` seconds of training, counted across resumes."""

from __future__ import annotations

import math
from numbers import Real
from typing import TYPE_CHECKING, Any

from lightning_chainer.elapsed_time import ElapsedTime

if TYPE_CHECKING:
    from lightning_chainer.step import Step


class TimeTrigger:
    """Fires at the first iteration after each ``period`` seconds of training.

    As in Chainer, it keeps the next fire time (``period``, ``2 * period``, ...) and fires when the elapsed time
    has passed it, moving it on by one period per firing, so after a long iteration it fires once per iteration
    until it has caught up. The elapsed time is the trigger's own clock: it counts from the first iteration the
    trigger sees and, like the next fire time, is saved with the trigger's state, so a resumed run continues
    both. On several ranks rank 0's clock decides, with one broadcast per call, so every rank fires together.

    Args:
        period: Seconds between firings, a positive number.
    """

    def __init__(self, period: float) -> None:
        if isinstance(period, bool) or not isinstance(period, Real) or not math.isfinite(period) or period <= 0:
            raise ValueError(f"period must be a positive number of seconds, e.g. TimeTrigger(60.0); got {period!r}.")
        self.period = period
        self._next_time = float(period)
        self.elapsed_time = ElapsedTime()
        self._started = False

    def __call__(self, step: Step) -> bool:
        if not self._started:
            self.elapsed_time.start()
            self._started = True
        fire = self._next_time < self.elapsed_time()
        trainer = step.trainer
        if trainer is not None and trainer.world_size > 1:
            fire = bool(trainer.strategy.broadcast(fire, src=0))
        if fire:
            self._next_time += self.period
        return fire

    def state_dict(self) -> dict[str, Any]:
        return {"next_time": self._next_time, "elapsed_time": self.elapsed_time()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._next_time = float(state["next_time"])
        self.elapsed_time.restore(state["elapsed_time"])
        self._started = False

    def __repr__(self) -> str:
        return f"TimeTrigger({self.period})"
