"""The per-iteration driver: reads each step's observation and runs every extension in Chainer's priority order.

Chainer runs every extension once per iteration, in priority order, around one ``trainer.observation`` dict. The
:class:`~lightning_chainer.manager.ExtensionsManager` (or, without one, the first
:class:`~lightning_chainer.extension.Extension` in ``trainer.callbacks``) leads: it hands each training iteration
(after Lightning's validation when one follows that batch) to the driver, so writers (Evaluator, observe_lr) run
before readers (LogReport, PrintReport) and snapshots run last.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch

from lightning_chainer._lightning import read_lightning
from lightning_chainer.step import PRIORITY_SNAPSHOT, Step

if TYPE_CHECKING:
    import lightning.pytorch as pl

    from lightning_chainer.extension import Extension
    from lightning_chainer.step import Trigger


def returned_observation(outputs: Any) -> dict[str, Any]:
    """The scalar entries, other than ``loss``, of the dict a ``training_step`` returned.

    This is the cheap way to report: Lightning hands the returned dict to ``on_train_batch_end`` as it is,
    while each ``self.log`` call costs about 0.3 ms of Python per step in Lightning 2.6.
    """
    if not isinstance(outputs, Mapping):
        return {}
    return {
        key: value
        for key, value in outputs.items()
        if key != "loss"
        and (
            (isinstance(value, torch.Tensor) and value.dim() == 0)
            or (isinstance(value, (int, float)) and not isinstance(value, bool))
        )
    }


class Driver:
    """Runs every Extension of one trainer per iteration, in Chainer's priority order.

    ``leader`` is the callback that hands the driver Lightning's hooks: an :class:`ExtensionsManager`, or the first
    ``Extension`` in ``trainer.callbacks``. ``stop_trigger`` (the manager's) is evaluated once per iteration after
    the extensions and before the snapshots; when it fires, Lightning stops after this iteration.
    """

    def __init__(self, found: list[Extension], leader: Any = None, stop_trigger: Trigger | None = None) -> None:
        self.extensions = sorted(found, key=lambda e: -e.priority)  # stable: registration order within a priority
        self.leader = leader if leader is not None else (found[0] if found else None)
        self.stop_trigger = stop_trigger
        self.observation: dict[str, Any] = {}
        self.pending: Step | None = None
        self.seen: dict[str, torch.Tensor] = {}
        #: The iteration the extensions run for (or ran for last): what Chainer's ``trainer.updater`` reads.
        self.step: Step | None = None
        #: ``(name, reader) -> extension``: how an extension that reads another by name (PrintReport's
        #: ``log_report='LogReport'``) finds it; an ExtensionsManager sets its own, by its unique names.
        self.lookup: Any = None

    def start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Chainer's start of ``trainer.run()``: every ``initialize``, then the ``call_before_training`` calls.

        As in Chainer, an extension whose trigger has ``finished`` (a ManualScheduleTrigger past its last point)
        is not initialized, and the calls before training happen on a fresh run only (iteration 0).
        """
        for ext in self.extensions:
            if not getattr(ext.trigger, "finished", False):
                ext.initialize(trainer, pl_module)
        before = [ext for ext in self.extensions if ext.call_before_training]
        if before and trainer.global_step == 0:
            self.step = Step(trainer, pl_module, iteration=0, epoch=0, epoch_detail=0.0)
            for ext in before:
                ext.before_training(self.step)

    def end(self, trainer: pl.Trainer) -> None:
        """Training ended: the held iteration runs, then every ``finalize``."""
        self.flush()
        for ext in self.extensions:
            ext.finalize(trainer)

    def fail(self, trainer: pl.Trainer, exception: BaseException) -> None:
        """Training failed: every ``on_error``, then every ``finalize``."""
        for ext in self.extensions:
            ext.on_error(trainer, exception)
        for ext in self.extensions:
            ext.finalize(trainer)

    def flush(self) -> None:
        """Finish an iteration that waited for a validation run that did not come."""
        if self.pending is not None:
            step, self.pending = self.pending, None
            self.run(step)

    def batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch_idx: int) -> None:
        self.flush()
        view = read_lightning(trainer, "train")
        for name, value in view.step_values:
            if self.seen.get(name) is not value:  # a key not logged this step keeps last step's cache
                self.seen[name] = value
                self.observation[name] = value
        self.observation.update(returned_observation(outputs))
        for name, value in self.observation.items():  # once here rather than in every extension's summary
            if isinstance(value, torch.Tensor) and value.requires_grad:
                self.observation[name] = value.detach()
        n = trainer.num_training_batches
        epoch = trainer.current_epoch
        if isinstance(n, int) or (isinstance(n, float) and math.isfinite(n)):
            n = int(n)
            epoch_detail = (epoch * n + batch_idx + 1) / n
            completed = epoch + (1 if batch_idx + 1 >= n else 0)
        else:
            epoch_detail, completed = float(epoch), epoch
        step = Step(trainer, pl_module, trainer.global_step, completed, epoch_detail)
        if view.validation_follows:
            self.pending = step
        else:
            self.run(step)

    def validation_end(self, trainer: pl.Trainer) -> None:
        for name in read_lightning(trainer, "validation").epoch_keys:
            if name in trainer.callback_metrics:
                self.observation[name] = trainer.callback_metrics[name]
        self.flush()

    def run(self, step: Step) -> None:
        step.observation = self.observation
        self.observation = {}
        self.step = step
        snapshots = []
        for ext in self.extensions:
            if ext.priority <= PRIORITY_SNAPSHOT:
                if ext.trigger(step):  # every snapshot trigger is evaluated before any snapshot is written
                    snapshots.append(ext)
            else:
                ext.run(step)
        # Chainer checks its stop trigger after the extensions; here before the snapshots, so that a snapshot
        # holds the stop trigger's state after this iteration's check.
        if self.stop_trigger is not None and self.stop_trigger(step):
            step.trainer.should_stop = True
        for ext in snapshots:
            ext(step)


#: The driver of each trainer, found by its leading extension.
DRIVERS: weakref.WeakKeyDictionary[Any, Driver] = weakref.WeakKeyDictionary()
