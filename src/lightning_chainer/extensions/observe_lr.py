"""observe_value / observe_lr: report a value computed from the trainer, as Chainer's WRITER extensions."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lightning_chainer.extension import Extension
from lightning_chainer.step import PRIORITY_WRITER, Step

if TYPE_CHECKING:
    import lightning.pytorch as pl


class ObserveValue(Extension):
    """At ``trigger`` reports ``target_func(trainer)`` as ``observation_key`` (before the readers run)."""

    priority = PRIORITY_WRITER

    def __init__(
        self, observation_key: str, target_func: Callable[[pl.Trainer], Any], trigger: Any = (1, "epoch")
    ) -> None:
        super().__init__(trigger)
        self.observation_key = observation_key
        self.target_func = target_func

    def _state_key_fields(self) -> dict[str, Any]:
        return dict(key=self.observation_key)

    def __call__(self, step: Step) -> None:
        step.observation[self.observation_key] = self.target_func(step.trainer)


def observe_value(
    observation_key: str, target_func: Callable[[pl.Trainer], Any], trigger: Any = (1, "epoch")
) -> ObserveValue:
    """Chainer's ``extensions.observe_value``."""
    return ObserveValue(observation_key, target_func, trigger)


def observe_lr(optimizer_index: int = 0, observation_key: str = "lr", trigger: Any = (1, "epoch")) -> ObserveValue:
    """Reports the ``lr`` of the optimizer's first param group: the rate used during the interval just ended."""

    def lr(trainer: pl.Trainer) -> float:
        return float(trainer.optimizers[optimizer_index].param_groups[0]["lr"])

    return ObserveValue(observation_key, lr, trigger)
