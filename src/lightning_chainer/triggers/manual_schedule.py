"""Chainer's ``ManualScheduleTrigger``: at listed epochs or iterations."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lightning_chainer.step import Step


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
