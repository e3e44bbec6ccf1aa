"""InverseShift: Caffe's ``inv`` policy, ``init * (1 + gamma * t) ** -power``, on an optimizer hyper-parameter."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lightning_chainer.extensions.hyperparameter_shift import InitShift, clamp_at_target

if TYPE_CHECKING:
    import torch


class InverseShift(InitShift):
    """Sets ``attr`` to ``init * (1 + gamma * t) ** (-power)`` after the t-th trigger, stopped at ``target``.

    Chainer's semantics: ``init`` defaults to the optimizer's value at the start of training, and the default
    trigger is every iteration.

    Args:
        attr: a param-group key such as ``'lr'``, or Chainer's ``'alpha'``, ``'beta1'``, ``'beta2'``.
        gamma: how fast the base grows with the count; at least 0.
        power: the exponent; a negative one makes the value grow.
        init: the value before the first trigger; ``None`` reads it from the optimizer.
        target: where the shift stops; ``None`` for no stop.
        optimizer: ``None`` (the module's optimizer), an index into ``trainer.optimizers``, or an optimizer.
        trigger: when the value moves on.
    """

    def __init__(
        self,
        attr: str,
        gamma: float,
        power: float,
        init: float | None = None,
        target: float | None = None,
        optimizer: torch.optim.Optimizer | int | None = None,
        trigger: Any = (1, "iteration"),
    ) -> None:
        if gamma < 0:
            raise ValueError(
                f"InverseShift's gamma must be at least 0, not {gamma}; use a negative power to make the value grow."
            )
        super().__init__(attr, init, optimizer, trigger)
        self._gamma = gamma
        self._power = power
        self._target = target

    def value(self) -> float:
        assert self._init is not None, "initialize() sets init before the first trigger"
        value = self._init * (1 + self._gamma * self._t) ** (-self._power)
        return clamp_at_target(value, self._target, self._power < 0)
