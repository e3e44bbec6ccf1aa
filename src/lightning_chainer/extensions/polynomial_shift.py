"""PolynomialShift: ``init * (1 - t / max_count) ** rate`` on an optimizer hyper-parameter (Chainer's schedule)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lightning_chainer.extensions.hyperparameter_shift import InitShift

if TYPE_CHECKING:
    import torch


class PolynomialShift(InitShift):
    """Sets ``attr`` to ``init * max(1 - t / max_count, 0) ** rate`` after the t-th trigger, stopped at ``target``.

    Chainer's semantics: ``init`` defaults to the optimizer's value at the start of training, and the default
    trigger is every iteration. With a ``target``, the value is ``target`` once the schedule reaches 0 (at
    ``max_count`` triggers); Chainer divides by that 0 there and stops with a ZeroDivisionError.

    Args:
        attr: a param-group key such as ``'lr'``, or Chainer's ``'alpha'``, ``'beta1'``, ``'beta2'``.
        rate: the exponent; at least 0.
        max_count: the number of triggers after which the value is 0; a positive int.
        init: the value before the first trigger; ``None`` reads it from the optimizer.
        target: where the shift stops; ``None`` for no stop.
        optimizer: ``None`` (the module's optimizer), an index into ``trainer.optimizers``, or an optimizer.
        trigger: when the value moves on.
    """

    def __init__(
        self,
        attr: str,
        rate: float,
        max_count: int,
        init: float | None = None,
        target: float | None = None,
        optimizer: torch.optim.Optimizer | int | None = None,
        trigger: Any = (1, "iteration"),
    ) -> None:
        if rate < 0:
            # 0 ** rate divides by zero at max_count; Chainer fails there
            raise ValueError(
                f"PolynomialShift's rate must be at least 0, not {rate}; use InverseShift with a negative power "
                "to make a value grow."
            )
        if isinstance(max_count, bool) or not isinstance(max_count, int) or max_count < 1:
            raise ValueError(f"PolynomialShift's max_count must be a positive int (triggers), not {max_count!r}.")
        super().__init__(attr, init, optimizer, trigger)
        self._rate = rate
        self._max_count = max_count
        self._target = target

    def value(self) -> float:
        assert self._init is not None, "initialize() sets init before the first trigger"
        decay = max(1 - self._t / self._max_count, 0)
        value = self._init * decay**self._rate
        if self._target is None:
            return value
        if value == 0:  # it has passed any target on its way down
            return self._target
        # Chainer compares target / value (InverseShift and the others compare value / target)
        if self._rate > 0:
            return self._target if self._target / value > 1 else value
        return self._target if self._target / value < 1 else value
