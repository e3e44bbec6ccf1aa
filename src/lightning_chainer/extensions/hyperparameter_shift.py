"""HyperparameterShift: what ExponentialShift and LinearShift share (one optimizer attribute, a count, resume)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lightning_chainer.extension import Extension
from lightning_chainer.step import PRIORITY_READER, Step

if TYPE_CHECKING:
    import lightning.pytorch as pl
    import torch


class HyperparameterShift(Extension):
    """Sets ``attr`` in every param group of one optimizer to ``value()`` after each trigger, as Chainer's shifts.

    Subclasses say what the value is after ``self._t`` triggers (:meth:`value`) and, if it depends on the
    optimizer, where it starts (:meth:`start`). The count and the last value set are saved, so a resumed run
    continues the schedule. Default trigger is every iteration, as Chainer.
    """

    priority = PRIORITY_READER

    def __init__(self, attr: str, optimizer_index: int = 0, trigger: Any = (1, "iteration")) -> None:
        super().__init__(trigger)
        self._attr = attr
        self._optimizer_index = optimizer_index
        self._t = 0
        self._last_value: float | None = None

    def value(self) -> float:
        """The value after ``self._t`` triggers."""
        raise NotImplementedError

    def start(self, optimizer: torch.optim.Optimizer) -> float:
        """The value at the start of training (before any trigger)."""
        return self.value()

    def _state_key_fields(self) -> dict[str, Any]:
        return dict(attr=self._attr, optimizer_index=self._optimizer_index)

    def _set(self, trainer: pl.Trainer, value: float) -> None:
        for group in trainer.optimizers[self._optimizer_index].param_groups:
            group[self._attr] = value
        self._last_value = value

    def initialize(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        optimizer = trainer.optimizers[self._optimizer_index]
        self._set(trainer, self._last_value if self._last_value is not None else self.start(optimizer))

    def __call__(self, step: Step) -> None:
        self._t += 1
        self._set(step.trainer, self.value())

    def extension_state(self) -> dict[str, Any]:
        return {"t": self._t, "last_value": self._last_value}

    def load_extension_state(self, state: dict[str, Any]) -> None:
        if state:
            self._t = int(state["t"])
            self._last_value = state["last_value"]
