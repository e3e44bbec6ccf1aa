"""ExponentialShift: multiply an optimizer hyper-parameter by ``rate`` at each trigger (Chainer's schedule)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lightning_chainer.extensions.hyperparameter_shift import HyperparameterShift

if TYPE_CHECKING:
    import torch


class ExponentialShift(HyperparameterShift):
    """Sets ``attr`` to ``init * rate**t`` after the t-th trigger, clamped at ``target`` (Chainer's semantics).

    ``init`` defaults to the optimizer's value at the start of training; the step count, last value and
    ``init`` are saved, so a resumed run continues the schedule. Default trigger is every iteration, as Chainer.
    """

    def __init__(
        self,
        attr: str,
        rate: float,
        init: float | None = None,
        target: float | None = None,
        optimizer_index: int = 0,
        trigger: Any = (1, "iteration"),
    ) -> None:
        super().__init__(attr, optimizer_index, trigger)
        self._rate = rate
        self._init = init
        self._target = target

    def start(self, optimizer: torch.optim.Optimizer) -> float:
        if self._init is None:
            self._init = optimizer.param_groups[0][self._attr]
        return self._init

    def value(self) -> float:
        assert self._init is not None, "initialize() sets init before the first trigger"
        value = self._init * (self._rate**self._t)
        if self._target is not None:
            if self._rate > 1:
                if value / self._target > 1:
                    value = self._target
            elif value / self._target < 1:
                value = self._target
        return value

    def extension_state(self) -> dict[str, Any]:
        return {**super().extension_state(), "init": self._init}

    def load_extension_state(self, state: dict[str, Any]) -> None:
        super().load_extension_state(state)
        if state and self._init is None:
            self._init = state["init"]
