"""LinearShift: move an optimizer hyper-parameter linearly between two values over a range of triggers."""

from __future__ import annotations

from typing import Any

from lightning_chainer.extensions.hyperparameter_shift import HyperparameterShift


class LinearShift(HyperparameterShift):
    """``attr`` stays ``value_range[0]`` for ``time_range[0]`` triggers, then moves linearly to ``value_range[1]``.

    Chainer's semantics (its count ``t`` and last value are saved for resume); default trigger every iteration.
    """

    def __init__(
        self,
        attr: str,
        value_range: tuple[float, float],
        time_range: tuple[int, int],
        optimizer_index: int = 0,
        trigger: Any = (1, "iteration"),
    ) -> None:
        super().__init__(attr, optimizer_index, trigger)
        self._value_range = value_range
        self._time_range = time_range

    def value(self) -> float:
        (t1, t2), (v1, v2) = self._time_range, self._value_range
        if self._t <= t1:
            return v1
        if self._t >= t2:
            return v2
        return v1 + (self._t - t1) / (t2 - t1) * (v2 - v1)
