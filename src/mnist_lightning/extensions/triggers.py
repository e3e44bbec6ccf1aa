"""Chainer's triggers: callables ``trigger(step) -> bool`` evaluated once per iteration, with savable state.

``EarlyStoppingTrigger`` is also a callback: put it in ``Trainer(callbacks=[...])`` and it sets
``trainer.should_stop`` when it fires (Chainer uses it as the Trainer's stop trigger; Lightning stops that way).
"""

from __future__ import annotations

import operator
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from mnist_lightning.extensions.observation import PRIORITY_STOP, Extension, Step, Summary

if TYPE_CHECKING:
    import lightning.pytorch as pl


class Trigger(Protocol):
    """Anything called once per iteration that answers whether its extension runs now."""

    def __call__(self, step: Step) -> bool: ...


class IntervalTrigger:
    """Fires every ``period`` epochs (fractional periods allowed, via ``epoch_detail``) or iterations."""

    def __init__(self, period: int | float, unit: str) -> None:
        if unit not in ("epoch", "iteration"):
            raise ValueError("Trigger unit must be either 'epoch' or 'iteration'.")
        self.period = period
        self.unit = unit
        self._previous_iteration = 0
        self._previous_epoch_detail = 0.0

    def __call__(self, step: Step) -> bool:
        if self.unit == "epoch":
            fire = self._previous_epoch_detail // self.period != step.epoch_detail // self.period
        else:
            fire = self._previous_iteration // self.period != step.iteration // self.period
        self._previous_iteration = step.iteration
        self._previous_epoch_detail = step.epoch_detail
        return fire

    def get_training_length(self) -> tuple[int | float, str]:
        return (self.period, self.unit)

    def state_dict(self) -> dict[str, Any]:
        return {"previous_iteration": self._previous_iteration, "previous_epoch_detail": self._previous_epoch_detail}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._previous_iteration = int(state["previous_iteration"])
        self._previous_epoch_detail = float(state["previous_epoch_detail"])

    def __repr__(self) -> str:
        return f"IntervalTrigger({self.period}, '{self.unit}')"


class ManualScheduleTrigger:
    """Fires when training passes any of ``points`` (epochs or iterations); ``finished`` after the last one."""

    def __init__(self, points: int | float | Sequence[int | float], unit: str) -> None:
        if unit not in ("epoch", "iteration"):
            raise ValueError("Trigger unit must be either 'epoch' or 'iteration'.")
        self.points = list(points) if isinstance(points, (list, tuple)) else [points]
        self.unit = unit
        self.finished = False
        self._previous_iteration = 0
        self._previous_epoch_detail = 0.0

    def __call__(self, step: Step) -> bool:
        if self.unit == "epoch":
            previous, current = self._previous_epoch_detail, step.epoch_detail
        else:
            previous, current = self._previous_iteration, step.iteration
        fire = any(previous < p <= current for p in self.points)
        if fire and current >= max(self.points):
            self.finished = True
        self._previous_iteration = step.iteration
        self._previous_epoch_detail = step.epoch_detail
        return fire

    def state_dict(self) -> dict[str, Any]:
        return {
            "previous_iteration": self._previous_iteration,
            "previous_epoch_detail": self._previous_epoch_detail,
            "finished": self.finished,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._previous_iteration = int(state["previous_iteration"])
        self._previous_epoch_detail = float(state["previous_epoch_detail"])
        self.finished = bool(state.get("finished", False))


def _never(step: Step) -> bool:
    return False


def get_trigger(trigger: Any) -> Trigger:
    """A tuple ``(period, unit)`` becomes an IntervalTrigger, ``None`` never fires, a callable is used as given."""
    if trigger is None:
        return _never
    if callable(trigger):
        return trigger
    period, unit = trigger
    return IntervalTrigger(period, unit)


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
        super().__init__(key, lambda best, new: new > best, trigger)


class MinValueTrigger(BestValueTrigger):
    """Fires when the interval mean of ``key`` is the smallest so far."""

    def __init__(self, key: str, trigger: Any = (1, "epoch")) -> None:
        super().__init__(key, lambda best, new: new < best, trigger)


class EarlyStoppingTrigger(Extension):
    """Stops training when ``monitor`` has not improved for ``patience`` checks, or when ``max_trigger`` fires.

    Use it as a callback: ``Trainer(callbacks=[EarlyStoppingTrigger(...)])``; it sets ``trainer.should_stop``,
    which Lightning honours after the current iteration (and after ``min_epochs``). Unlike Chainer, its count
    and best value are saved in checkpoints, so a resumed run keeps its patience. It is evaluated after the
    readers and before snapshots of the same iteration, so a snapshot holds the state after this check.
    """

    priority = PRIORITY_STOP

    def __init__(
        self,
        check_trigger: Any = (1, "epoch"),
        monitor: str = "main/loss",
        patience: int = 3,
        mode: str = "auto",
        verbose: bool = False,
        max_trigger: Any = (100, "epoch"),
    ) -> None:
        super().__init__(trigger=None)
        self.monitor = monitor
        self.patience = patience
        self.verbose = verbose
        self.count = 0
        self._max_trigger = get_trigger(max_trigger)
        self._interval_trigger = get_trigger(check_trigger)
        self._summary = Summary()
        if mode == "max" or (mode == "auto" and "accuracy" in monitor):
            self._compare, self.best = operator.gt, float("-inf")
        elif mode in ("min", "auto"):
            self._compare, self.best = operator.lt, float("inf")
        else:
            raise ValueError(f"mode must be 'min', 'max' or 'auto', got {mode!r}")

    def _state_key_fields(self) -> dict[str, Any]:
        return dict(monitor=self.monitor)

    def get_training_length(self) -> tuple[int | float, str] | None:
        """The length of ``max_trigger`` (what ProgressBar shows as the training length)."""
        length = getattr(self._max_trigger, "get_training_length", None)
        return length() if length is not None else None

    def check(self, step: Step) -> bool:
        """Chainer's ``EarlyStoppingTrigger.__call__``: True when training should stop."""
        if self.monitor in step.observation:
            self._summary.add({self.monitor: step.observation[self.monitor]})
        if self._max_trigger(step):
            return True
        if not self._interval_trigger(step):
            return False
        if self.monitor not in step.observation:
            warnings.warn(f"{self.monitor} is not in observation", stacklevel=2)
            return False
        current = self._summary.compute_mean(step.trainer)[self.monitor]
        self._summary = Summary()
        if self._compare(current, self.best):
            self.best = current
            self.count = 0
        else:
            self.count += 1
        if self.count >= self.patience:
            if self.verbose and step.trainer.is_global_zero:
                print(f"Epoch {step.epoch}: early stopping")
            return True
        return False

    def __call__(self, step: Step) -> bool:  # type: ignore[override]
        return self.check(step)

    def run(self, step: Step) -> None:
        if self.check(step):
            step.trainer.should_stop = True

    def initialize(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        pass

    def extension_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"count": self.count, "best": self.best, "summary": self._summary.state_dict()}
        for name, trig in (("max_trigger", self._max_trigger), ("check_trigger", self._interval_trigger)):
            if hasattr(trig, "state_dict"):
                state[name] = trig.state_dict()
        return state

    def load_extension_state(self, state: dict[str, Any]) -> None:
        if not state:
            return
        self.count = int(state["count"])
        self.best = float(state["best"])
        self._summary.load_state_dict(state["summary"])
        for name, trig in (("max_trigger", self._max_trigger), ("check_trigger", self._interval_trigger)):
            if name in state and hasattr(trig, "load_state_dict"):
                trig.load_state_dict(state[name])
