"""StepShift: multiply an optimizer hyper-parameter by ``gamma`` every ``step`` triggers (Chainer's schedule)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from lightning_chainer.extensions.hyperparameter_shift import InitShift, clamp_at_target

if TYPE_CHECKING:
    import torch


class StepShift(InitShift):
    """Sets ``attr`` to ``init * gamma**floor(t / step)`` after the t-th trigger, stopped at ``target``.

    Chainer's semantics: ``init`` defaults to the optimizer's value at the start of training, and the default
    trigger is every iteration.

    Args:
        attr: a param-group key such as ``'lr'``, or Chainer's ``'alpha'``, ``'beta1'``, ``'beta2'``.
        gamma: the factor of each step.
        step: the number of triggers in a step; a positive int.
        init: the value before the first trigger; ``None`` reads it from the optimizer.
        target: where the shift stops; ``None`` for no stop.
        optimizer: ``None`` (the module's optimizer), an index into ``trainer.optimizers``, or an optimizer.
        trigger: when the count moves on.
    """

    def __init__(
        self,
        attr: str,
        gamma: float,
        step: int,
        init: float | None = None,
        target: float | None = None,
        optimizer: torch.optim.Optimizer | int | None = None,
        trigger: Any = (1, "iteration"),
    ) -> None:
        if isinstance(step, bool) or not isinstance(step, int) or step < 1:
            raise ValueError(f"StepShift's step must be a positive int (triggers per step), not {step!r}.")
        super().__init__(attr, init, optimizer, trigger)
        self._gamma = gamma
        self._step = step
        self._target = target

    def value(self) -> float:
        assert self._init is not None, "initialize() sets init before the first trigger"
        value = self._init * self._gamma ** math.floor(self._t / self._step)
        return clamp_at_target(value, self._target, self._gamma > 1)
