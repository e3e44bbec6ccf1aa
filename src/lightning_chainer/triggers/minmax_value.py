"""Chainer's ``MaxValueTrigger`` / ``MinValueTrigger``: fire when an observed mean is the best so far."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lightning_chainer.summary import Summary
from lightning_chainer.triggers._util import get_trigger

if TYPE_CHECKING:
    from lightning_chainer.step import Step


class BestValueTrigger:
    """Fires at the end of each interval whose mean of ``key`` beats every earlier interval's (strictly)."""

    def __init__(self, key: str, compare: Callable[[float, float], bool], trigger: Any = (1, "epoch")) -> None:
        self._key = key
        self._compare = compare
        self._interval_trigger = get_trigger(trigger)
        self._best_value: float | None = None
        self._summary = Summary()

    def __call__(self, step: Step) -> bool:
        if self._key in step.observation:
            self._summary.add({self._key: step.observation[self._key]})
        if not self._interval_trigger(step):
            return False
        stats = self._summary.compute_mean(step.trainer)
        self._summary = Summary()
        value = stats[self._key]  # KeyError when the key was never seen in the interval, as Chainer
        if self._best_value is None or self._compare(self._best_value, value):
            self._best_value = value
            return True
        return False

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"best_value": self._best_value, "summary": self._summary.state_dict()}
        if hasattr(self._interval_trigger, "state_dict"):
            state["interval_trigger"] = self._interval_trigger.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._best_value = state["best_value"]
        self._summary.load_state_dict(state["summary"])
        if "interval_trigger" in state and hasattr(self._interval_trigger, "load_state_dict"):
            self._interval_trigger.load_state_dict(state["interval_trigger"])


class MaxValueTrigger(BestValueTrigger):
    """Fires when the interval mean of ``key`` is the largest so far (e.g. to snapshot the best model)."""

    def __init__(self, key: str, trigger: Any = (1, "epoch")) -> None:
        # operator.lt(best, new) is ``new > best``; a module-level function, not a lambda, so that the trigger
        # pickles (ddp_spawn sends the callbacks to its processes).
        super().__init__(key, operator.lt, trigger)


class MinValueTrigger(BestValueTrigger):
    """Fires when the interval mean of ``key`` is the smallest so far."""

    def __init__(self, key: str, trigger: Any = (1, "epoch")) -> None:
        super().__init__(key, operator.gt, trigger)  # new < best
