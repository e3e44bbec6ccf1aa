"""Chainer's ``IntervalTrigger``: every N epochs or iterations."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lightning_chainer.step import Step


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
