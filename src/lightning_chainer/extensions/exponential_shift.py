"""ExponentialShift: multiply an optimizer hyper-parameter by ``rate`` at each trigger (Chainer's schedule)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lightning_chainer.extensions.hyperparameter_shift import InitShift, clamp_at_target

if TYPE_CHECKING:
    import torch


class ExponentialShift(InitShift):
    """Sets ``attr`` to ``init * rate**t`` after the t-th trigger, stopped at ``target`` (Chainer's semantics).

    ``init`` defaults to the optimizer's value at the start of training. The default trigger is every iteration,
    as in Chainer.

    Args:
        attr: a param-group key such as ``'lr'``, or Chainer's ``'alpha'``, ``'beta1'``, ``'beta2'``.
        rate: the factor of each trigger; at least 0.
        init: the value before the first trigger; ``None`` reads it from the optimizer.
        target: where the shift stops; ``None`` for no stop.
        optimizer: ``None`` (the module's optimizer), an index into ``trainer.optimizers``, or an optimizer.
        trigger: when the value moves on.
    """

    def __init__(
        self,
        attr: str,
        rate: float,
        init: float | None = None,
        target: float | None = None,
        optimizer: torch.optim.Optimizer | int | None = None,
        trigger: Any = (1, "iteration"),
    ) -> None:
        if rate < 0:
            raise ValueError(f"ExponentialShift's rate must be at least 0, not {rate}; use a rate in [0, 1) to decay.")
        super().__init__(attr, init, optimizer, trigger)
        self._rate = rate
        self._target = target

    def value(self) -> float:
        assert self._init is not None, "initialize() sets init before the first trigger"
        return clamp_at_target(self._init * (self._rate**self._t), self._target, self._rate > 1)
