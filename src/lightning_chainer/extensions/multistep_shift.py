"""MultistepShift: multiply an optimizer hyper-parameter by ``gamma`` at each of a list of trigger counts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from lightning_chainer.extensions.hyperparameter_shift import InitShift
from lightning_chainer.step import Step

if TYPE_CHECKING:
    import torch


class MultistepShift(InitShift):
    """Sets ``attr`` to ``init * gamma**k`` once ``k`` of the counts in ``step_value`` are reached (Chainer's).

    With ``step_value=(s1, s2)``, the value is ``init`` before trigger ``s1``, ``init * gamma`` from ``s1``,
    ``init * gamma**2`` from ``s2``. As in Chainer, ``init`` is a required argument whose ``None`` reads the
    optimizer's value at the start of training, and the default trigger is every iteration. The count of steps
    taken (``_current_step``) is saved with Chainer's count and ``init``; a resumed run sets the value it had,
    where Chainer sets ``init`` until its next trigger.

    Args:
        attr: a param-group key such as ``'lr'``, or Chainer's ``'alpha'``, ``'beta1'``, ``'beta2'``.
        gamma: the factor of each step.
        step_value: the counts of triggers at which a step is taken, increasing.
        init: the value before the first step; ``None`` reads it from the optimizer.
        optimizer: ``None`` (the module's optimizer), an index into ``trainer.optimizers``, or an optimizer.
        trigger: when the count moves on.
    """

    def __init__(
        self,
        attr: str,
        gamma: float,
        step_value: Sequence[int],
        init: float | None,
        optimizer: torch.optim.Optimizer | int | None = None,
        trigger: Any = (1, "iteration"),
    ) -> None:
        if (
            isinstance(step_value, str)
            or not isinstance(step_value, Sequence)
            or not all(isinstance(s, int) and not isinstance(s, bool) for s in step_value)
            or any(a >= b for a, b in zip(step_value, step_value[1:], strict=False))
        ):
            raise ValueError(
                f"MultistepShift's step_value must be increasing ints (the trigger counts of the steps), "
                f"such as (30, 60), not {step_value!r}."
            )
        super().__init__(attr, init, optimizer, trigger)
        self._gamma = gamma
        self._step_value = tuple(step_value)
        self._current_step = 0

    def value(self) -> float:
        assert self._init is not None, "initialize() sets init before the first trigger"
        return self._init * pow(self._gamma, self._current_step)

    def __call__(self, step: Step) -> None:
        self._t += 1
        # one step a trigger at most, as in Chainer
        if self._current_step < len(self._step_value) and self._t >= self._step_value[self._current_step]:
            self._current_step += 1
        self._shift()

    def extension_state(self) -> dict[str, Any]:
        return {**super().extension_state(), "_current_step": self._current_step}

    def load_extension_state(self, state: dict[str, Any]) -> None:
        super().load_extension_state(state)
        if state:
            self._current_step = int(state["_current_step"])
