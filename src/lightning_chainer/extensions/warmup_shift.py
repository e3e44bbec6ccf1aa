"""WarmupShift: move an optimizer hyper-parameter evenly from ``warmup_start`` to ``init`` in the first triggers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lightning_chainer.extensions.hyperparameter_shift import HyperparameterShift

if TYPE_CHECKING:
    import torch


class WarmupShift(HyperparameterShift):
    """Sets ``attr`` to ``(t * init + (warmup_iter - t) * warmup_start) / warmup_iter`` for t up to ``warmup_iter``.

    Chainer's semantics: ``warmup_start=None`` reads the optimizer's value at the start of training, the value is
    left alone after the warm-up (so another shift may take over), and the default trigger is every iteration. A
    resumed run within the warm-up sets the value it had; one resumed after it leaves the restored value alone.
    Chainer sets ``warmup_start`` again in both cases, and keeps it after the warm-up.

    Args:
        attr: a param-group key such as ``'lr'``, or Chainer's ``'alpha'``, ``'beta1'``, ``'beta2'``.
        warmup_start: the value at the start; ``None`` reads it from the optimizer.
        warmup_iter: the number of triggers the warm-up lasts; a positive int.
        init: the value at the end of the warm-up.
        optimizer: ``None`` (the module's optimizer), an index into ``trainer.optimizers``, or an optimizer.
        trigger: when the value moves on.
    """

    def __init__(
        self,
        attr: str,
        warmup_start: float | None,
        warmup_iter: int,
        init: float,
        optimizer: torch.optim.Optimizer | int | None = None,
        trigger: Any = (1, "iteration"),
    ) -> None:
        if isinstance(warmup_iter, bool) or not isinstance(warmup_iter, int) or warmup_iter < 1:
            raise ValueError(f"WarmupShift's warmup_iter must be a positive int (triggers), not {warmup_iter!r}.")
        if isinstance(init, bool) or not isinstance(init, (int, float)):
            raise TypeError(f"WarmupShift's init is the value after the warm-up and must be a number, not {init!r}.")
        super().__init__(attr, optimizer, trigger)
        self._warmup_start = warmup_start
        self._warmup_iter = warmup_iter
        self._init = init

    def value(self) -> float | None:
        if self._t > self._warmup_iter:
            return None
        assert self._warmup_start is not None, "initialize() sets warmup_start before the first trigger"
        return (self._t * self._init + (self._warmup_iter - self._t) * self._warmup_start) / self._warmup_iter

    def start(self, current: float) -> float | None:
        if self._warmup_start is None:
            self._warmup_start = current
        if self._t == 0:
            return self._warmup_start
        if self._t >= self._warmup_iter:  # the warm-up is over: the restored value is whatever set it last
            return None
        return super().start(current)

    def extension_state(self) -> dict[str, Any]:
        return {**super().extension_state(), "warmup_start": self._warmup_start}

    def load_extension_state(self, state: dict[str, Any]) -> None:
        super().load_extension_state(state)
        if state and self._warmup_start is None and state.get("warmup_start") is not None:
            self._warmup_start = float(state["warmup_start"])
