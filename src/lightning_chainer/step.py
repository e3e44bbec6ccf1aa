"""One training iteration as extensions and triggers see it, Chainer's priorities, and the trigger protocol.

A small module of its own so that the extension base class and the triggers both depend on it and not on each
other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import lightning.pytorch as pl

PRIORITY_WRITER = 300
PRIORITY_EDITOR = 200
PRIORITY_READER = 100
PRIORITY_STOP = -50
PRIORITY_SNAPSHOT = -100


@dataclass
class Step:
    """One training iteration as the extensions and triggers see it (Chainer's ``trainer`` + ``updater``)."""

    trainer: pl.Trainer
    pl_module: pl.LightningModule
    iteration: int  #: optimizer steps so far (Chainer's ``updater.iteration``; the first update is 1)
    epoch: int  #: completed epochs (Chainer's ``updater.epoch``)
    epoch_detail: float  #: fractional epochs, ``iteration / iterations_per_epoch`` as Chainer
    observation: dict[str, Any] = field(default_factory=dict)

    @property
    def updater(self) -> Step:
        """The step itself, so that a trigger written for Chainer reads ``trainer.updater.iteration`` off it."""
        return self

    @property
    def is_new_epoch(self) -> bool:
        """Whether this iteration completed an epoch (Chainer's ``updater.is_new_epoch``)."""
        return self.iteration > 0 and self.epoch_detail == self.epoch


class Trigger(Protocol):
    """Anything called once per iteration that answers whether its extension runs now."""

    def __call__(self, step: Step) -> bool: ...
