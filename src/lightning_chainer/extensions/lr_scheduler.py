"""LRScheduler: pytorch-pfn-extras' extension that steps a ``torch.optim.lr_scheduler`` scheduler on a trigger."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch.optim.lr_scheduler import LRScheduler as _TorchLRScheduler
from torch.optim.lr_scheduler import ReduceLROnPlateau

from lightning_chainer.extension import Extension
from lightning_chainer.step import PRIORITY_READER, Step

if TYPE_CHECKING:
    import lightning.pytorch as pl

#: What the default stepper hands ReduceLROnPlateau: Chainer's name for the validation loss, which Lightning's
#: validation loop and Evaluator report. pytorch-pfn-extras reads ``'val/loss'``, the name its examples report.
DEFAULT_PLATEAU_KEY = "validation/main/loss"

#: ``stepper(step, scheduler)``: steps ``scheduler`` at a step where the trigger fired.
Stepper = Callable[[Step, Any], None]

_SCHEDULERS = (_TorchLRScheduler, ReduceLROnPlateau)


def observed(step: Step, key: str) -> Any:
    """The value of ``key`` in this iteration's observation.

    Args:
        step: the iteration.
        key: an observation key such as ``'validation/main/loss'``.

    Raises:
        ValueError: ``key`` was not observed in this iteration (pytorch-pfn-extras raises the same).
    """
    if key not in step.observation:
        raise ValueError(
            f"LRScheduler: {key!r} is not in the observation of iteration {step.iteration} "
            f"({', '.join(sorted(step.observation)) or 'empty'}); step the scheduler on a trigger where it is "
            "observed, or pass stepper=LRScheduler.step_by_value(key) with a key that is."
        )
    return step.observation[key]


def default_stepper(step: Step, scheduler: Any) -> None:
    """``scheduler.step()``; ReduceLROnPlateau gets the observed :data:`DEFAULT_PLATEAU_KEY`.

    Args:
        step: the iteration.
        scheduler: the scheduler to step.
    """
    if isinstance(scheduler, ReduceLROnPlateau):
        scheduler.step(observed(step, DEFAULT_PLATEAU_KEY))
    else:
        scheduler.step()


def _param_groups(optimizer: torch.optim.Optimizer) -> list[dict[str, Any]]:
    """Every param group's hyper-parameters, tensors copied (schedulers fill a tensor lr in place)."""
    return [
        {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in group.items() if k != "params"}
        for group in optimizer.param_groups
    ]


def _restore_param_groups(optimizer: torch.optim.Optimizer, saved: list[dict[str, Any]]) -> None:
    for group, values in zip(optimizer.param_groups, saved, strict=True):
        for key, value in values.items():
            if isinstance(group.get(key), torch.Tensor) and isinstance(value, torch.Tensor):
                group[key].copy_(value)
            else:
                group[key] = value


class LRScheduler(Extension):
    """Calls ``stepper(step, scheduler)`` at each trigger; the default stepper is ``scheduler.step()``, and
    ``scheduler.step(observation['validation/main/loss'])`` for a ReduceLROnPlateau.

    ``scheduler`` is a scheduler already built on the optimizer that ``configure_optimizers`` returns, or a
    factory ``lambda optimizer: StepLR(optimizer, 2)`` called with the first of ``trainer.optimizers`` at the start
    of training, when Lightning has built it. The scheduler's ``state_dict`` is saved with the extension. On a
    resume it is loaded into the scheduler, and the factory's scheduler is built first; the optimizer keeps the
    hyper-parameters the checkpoint restored, which building the scheduler would set back to its first epoch's.

    Args:
        scheduler: a ``torch.optim.lr_scheduler`` scheduler, or a function of the optimizer that returns one.
        stepper: steps the scheduler at a trigger; :meth:`step_by_value` gives one that passes an observed value.
        trigger: when to step; every epoch by default, as in pytorch-pfn-extras.
        is_async: pytorch-pfn-extras' flag for its asynchronous manager; the extensions here run in their
            iteration, so it changes nothing.
    """

    priority = PRIORITY_READER

    def __init__(
        self,
        scheduler: Any,
        *,
        stepper: Stepper = default_stepper,
        trigger: Any = (1, "epoch"),
        is_async: bool = True,
    ) -> None:
        if not isinstance(scheduler, _SCHEDULERS) and not callable(scheduler):
            raise TypeError(
                "LRScheduler takes a torch.optim.lr_scheduler scheduler or a function optimizer -> scheduler, "
                f"such as lambda optimizer: StepLR(optimizer, 2), not {scheduler!r}."
            )
        if not callable(stepper):
            raise TypeError(f"LRScheduler's stepper must be a function (step, scheduler) -> None, not {stepper!r}.")
        super().__init__(trigger)
        self._factory: Callable[[torch.optim.Optimizer], Any] | None = None
        #: The scheduler; for a factory, ``None`` until the start of training builds it.
        self.scheduler: Any = None
        if isinstance(scheduler, _SCHEDULERS):
            self.scheduler = scheduler
        else:
            self._factory = scheduler
        self.stepper = stepper
        self.is_async = is_async
        self._pending: dict[str, Any] | None = None

    @staticmethod
    def step_by_value(key: str | None) -> Stepper:
        """A stepper that calls ``scheduler.step(observation[key])`` (``scheduler.step(None)`` for ``None``).

        Args:
            key: the observation key whose value the scheduler gets.
        """

        def stepper(step: Step, scheduler: Any) -> None:
            scheduler.step(None if key is None else observed(step, key))

        return stepper

    def initialize(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        optimizers = list(trainer.optimizers)
        if self._factory is not None:
            if not optimizers:
                raise ValueError("LRScheduler: the module has no optimizer; return one from configure_optimizers.")
            saved = _param_groups(optimizers[0]) if self._pending is not None else None
            scheduler = self._factory(optimizers[0])
            if not isinstance(scheduler, _SCHEDULERS):
                raise TypeError(
                    f"LRScheduler's factory must return a torch.optim.lr_scheduler scheduler, not {scheduler!r}."
                )
            self.scheduler = scheduler
        else:
            saved = None
        if not any(self.scheduler.optimizer is optimizer for optimizer in optimizers):
            raise ValueError(
                "LRScheduler: the scheduler's optimizer is not one the trainer trains; build the scheduler on the "
                "optimizer configure_optimizers returns, or pass a factory such as "
                "lambda optimizer: StepLR(optimizer, 2)."
            )
        if self._pending is not None:
            self.scheduler.load_state_dict(self._pending)
            self._pending = None
        if saved is not None:
            _restore_param_groups(self.scheduler.optimizer, saved)

    def __call__(self, step: Step) -> None:
        self.stepper(step, self.scheduler)

    def extension_state(self) -> dict[str, Any]:
        if self._pending is not None:
            return {"scheduler": self._pending}
        return {} if self.scheduler is None else {"scheduler": self.scheduler.state_dict()}

    def load_extension_state(self, state: dict[str, Any]) -> None:
        if "scheduler" in state:
            # the optimizer may not exist yet: Lightning restores callbacks before configure_optimizers
            self._pending = state["scheduler"]
