"""LinearShift: move an optimizer hyper-parameter linearly between two values over a range of triggers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mnist_lightning.extensions.exponential_shift import set_hyperparameter
from mnist_lightning.extensions.observation import PRIORITY_READER, Extension, Step

if TYPE_CHECKING:
    import lightning.pytorch as pl


class LinearShift(Extension):
    """``attr`` stays ``value_range[0]`` for ``time_range[0]`` triggers, then moves linearly to ``value_range[1]``.

    Chainer's semantics (its count ``t`` and last value are saved for resume); default trigger every iteration.
    """

    priority = PRIORITY_READER

    def __init__(
        self,
        attr: str,
        value_range: tuple[float, float],
        time_range: tuple[int, int],
        optimizer_index: int = 0,
        trigger: Any = (1, "iteration"),
    ) -> None:
        super().__init__(trigger)
        self._attr = attr
        self._value_range = value_range
        self._time_range = time_range
        self._optimizer_index = optimizer_index
        self._t = 0
        self._last_value: float | None = None

    def _state_key_fields(self) -> dict[str, Any]:
        return dict(attr=self._attr, optimizer_index=self._optimizer_index)

    def _next_value(self) -> float:
        (t1, t2), (v1, v2) = self._time_range, self._value_range
        if self._t <= t1:
            return v1
        if self._t >= t2:
            return v2
        return v1 + (self._t - t1) / (t2 - t1) * (v2 - v1)

    def _update(self, trainer: pl.Trainer, value: float) -> None:
        set_hyperparameter(trainer.optimizers[self._optimizer_index], self._attr, value)
        self._last_value = value

    def initialize(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._update(trainer, self._last_value if self._last_value is not None else self._next_value())

    def __call__(self, step: Step) -> None:
        self._t += 1
        self._update(step.trainer, self._next_value())

    def extension_state(self) -> dict[str, Any]:
        return {"t": self._t, "last_value": self._last_value}

    def load_extension_state(self, state: dict[str, Any]) -> None:
        if state:
            self._t = int(state["t"])
            self._last_value = state["last_value"]
