"""Chainer's ``trainer.updater`` as extensions read it, over Lightning's loop: counters, optimizers, the loader.

Lightning's loop is the updater, so this is a read-only view: ``iteration``, ``epoch``, ``epoch_detail`` and
``is_new_epoch`` of the iteration the extensions run for (before the first one, Lightning's counters), and
``get_optimizer('main')``, Lightning's optimizer with Chainer's ``target`` (the LightningModule).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import lightning.pytorch as pl

    from lightning_chainer.step import Step

#: What the view reads: the Lightning trainer (None before ``fit``) and the iteration being run (or None).
Source = Callable[[], "tuple[pl.Trainer | None, Step | None]"]


class Updater:
    """Chainer's ``StandardUpdater`` as its extensions see it; Lightning's fit loop does the updates.

    Args:
        source: returns the Lightning trainer (None before ``fit``) and the iteration the extensions run for.
    """

    def __init__(self, source: Source) -> None:
        self._source = source

    @property
    def iteration(self) -> int:
        """Updates so far (Lightning's ``global_step``)."""
        trainer, step = self._source()
        if step is not None:
            return step.iteration
        return trainer.global_step if trainer is not None else 0

    @property
    def epoch(self) -> int:
        """Completed epochs."""
        trainer, step = self._source()
        if step is not None:
            return step.epoch
        return trainer.current_epoch if trainer is not None else 0

    @property
    def epoch_detail(self) -> float:
        """Fractional epochs: ``iteration / iterations_per_epoch``."""
        _, step = self._source()
        return step.epoch_detail if step is not None else float(self.epoch)

    @property
    def is_new_epoch(self) -> bool:
        """Whether the current iteration completed an epoch."""
        _, step = self._source()
        return step.is_new_epoch if step is not None else False

    def get_all_optimizers(self) -> dict[str, Any]:
        """``{'main': optimizer}``: Chainer's name for Lightning's (first) optimizer."""
        return {"main": self.get_optimizer("main")}

    def get_optimizer(self, name: str = "main") -> Any:
        """Lightning's optimizer, with Chainer's ``target`` (the LightningModule) set on it.

        Args:
            name: ``'main'``, Chainer's name of the one optimizer (the first, when the module has several).

        Raises:
            KeyError: another name (one sentence).
            RuntimeError: before ``fit`` has set up the optimizers.
        """
        if name != "main":
            raise KeyError(f"no optimizer {name!r}: the LightningModule's first optimizer is 'main'.")
        trainer, _ = self._source()
        module = trainer.lightning_module if trainer is not None else None
        if module is None or not trainer.optimizers:
            raise RuntimeError("trainer.updater.get_optimizer('main') has no optimizer before fit sets it up.")
        optimizers = module.optimizers()
        optimizer = optimizers[0] if isinstance(optimizers, list) else optimizers
        optimizer.target = module  # Chainer's optimizer.target: the link it updates
        return optimizer

    def get_iterator(self, name: str = "main") -> Any:
        """Lightning's training loader under Chainer's name ``'main'``.

        Args:
            name: ``'main'``.

        Raises:
            KeyError: another name.
        """
        if name != "main":
            raise KeyError(f"no iterator {name!r}: the training loader is 'main'.")
        trainer, _ = self._source()
        return trainer.train_dataloader if trainer is not None else None
