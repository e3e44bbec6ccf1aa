"""Chainer's ``EarlyStoppingTrigger``, also a callback that stops Lightning's loop when it fires."""

from __future__ import annotations

import operator
import warnings
from typing import TYPE_CHECKING, Any

from lightning_chainer.extension import Extension
from lightning_chainer.step import PRIORITY_STOP, Step
from lightning_chainer.summary import Summary
from lightning_chainer.triggers._util import get_trigger

if TYPE_CHECKING:
    import lightning.pytorch as pl


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
