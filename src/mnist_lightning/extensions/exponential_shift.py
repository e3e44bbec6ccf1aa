"""ExponentialShift: multiply an optimizer hyper-parameter by ``rate`` at each trigger (Chainer's schedule)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mnist_lightning.extensions.observation import PRIORITY_READER, Extension, Step

if TYPE_CHECKING:
    import lightning.pytorch as pl
    import torch


def set_hyperparameter(optimizer: torch.optim.Optimizer, attr: str, value: float) -> None:
    """Set ``attr`` (e.g. ``'lr'``) in every param group."""
    for group in optimizer.param_groups:
        group[attr] = value


class ExponentialShift(Extension):
    """Sets ``attr`` to ``init * rate**t`` after the t-th trigger, clamped at ``target`` (Chainer's semantics).

    ``init`` defaults to the optimizer's value at the start of training; the step count and last value are
    saved, so a resumed run continues the schedule. Default trigger is every iteration, as Chainer.
    """

    priority = PRIORITY_READER

    def __init__(
        self,
        attr: str,
        rate: float,
        init: float | None = None,
        target: float | None = None,
        optimizer_index: int = 0,
        trigger: Any = (1, "iteration"),
    ) -> None:
        super().__init__(trigger)
        self._attr = attr
        self._rate = rate
        self._init = init
        self._target = target
        self._optimizer_index = optimizer_index
        self._t = 0
        self._last_value: float | None = None

    def _state_key_fields(self) -> dict[str, Any]:
        return dict(attr=self._attr, optimizer_index=self._optimizer_index)

    def _optimizer(self, trainer: pl.Trainer) -> torch.optim.Optimizer:
        return trainer.optimizers[self._optimizer_index]

    def initialize(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        optimizer = self._optimizer(trainer)
        if self._init is None:
            self._init = optimizer.param_groups[0][self._attr]
        value = self._last_value if self._last_value is not None else self._init
        self._update(optimizer, value)

    def __call__(self, step: Step) -> None:
        self._t += 1
        value = self._init * (self._rate**self._t)
        if self._target is not None:
            if self._rate > 1:
                if value / self._target > 1:
                    value = self._target
            elif value / self._target < 1:
                value = self._target
        self._update(self._optimizer(step.trainer), value)

    def _update(self, optimizer: torch.optim.Optimizer, value: float) -> None:
        set_hyperparameter(optimizer, self._attr, value)
        self._last_value = value

    def extension_state(self) -> dict[str, Any]:
        return {"t": self._t, "last_value": self._last_value, "init": self._init}

    def load_extension_state(self, state: dict[str, Any]) -> None:
        if state:
            self._t = int(state["t"])
            self._last_value = state["last_value"]
            if self._init is None:
                self._init = state["init"]
