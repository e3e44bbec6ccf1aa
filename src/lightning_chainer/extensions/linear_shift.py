"""LinearShift: move an optimizer hyper-parameter linearly between two values over a range of triggers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lightning_chainer.extensions.hyperparameter_shift import HyperparameterShift

if TYPE_CHECKING:
    import torch


class LinearShift(HyperparameterShift):
    """``attr`` stays ``value_range[0]`` for ``time_range[0]`` triggers, then moves linearly to ``value_range[1]``,
    reached at trigger ``time_range[1]`` (Chainer's semantics). The default trigger is every iteration.

    Args:
        attr: a param-group key such as ``'lr'``, or Chainer's ``'alpha'``, ``'beta1'``, ``'beta2'``.
        value_range: the first and the last value.
        time_range: the counts of triggers at which the move starts and ends.
        optimizer: ``None`` (the module's optimizer), an index into ``trainer.optimizers``, or an optimizer.
        trigger: when the value moves on.
    """

    def __init__(
        self,
        attr: str,
        value_range: tuple[float, float],
        time_range: tuple[int, int],
        optimizer: torch.optim.Optimizer | int | None = None,
        trigger: Any = (1, "iteration"),
    ) -> None:
        for label, pair in (("value_range", value_range), ("time_range", time_range)):
            if isinstance(pair, str) or not hasattr(pair, "__len__") or len(pair) != 2:
                raise ValueError(f"LinearShift's {label} must be a pair (first, last), not {pair!r}.")
        super().__init__(attr, optimizer, trigger)
        self._value_range = value_range
        self._time_range = time_range

    def value(self) -> float:
        (t1, t2), (v1, v2) = self._time_range, self._value_range
        if self._t <= t1:
            return v1
        if self._t >= t2:
            return v2
        return v1 + (self._t - t1) / (t2 - t1) * (v2 - v1)
