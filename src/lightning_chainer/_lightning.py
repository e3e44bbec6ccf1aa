"""The only module that reads Lightning internals: a per-step view of ``self.log`` and the checkpoint dict.

Lightning has no public API for either; everything private this library touches is here, so a Lightning upgrade
is checked in one place (``tests/lightning_chainer/test_lightning_internals.py`` keeps it that way).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import torch

if TYPE_CHECKING:
    import lightning.pytorch as pl


class _LightningView(NamedTuple):
    step_values: list[tuple[str, torch.Tensor]]
    epoch_keys: list[str]
    validation_follows: bool


def read_lightning(trainer: pl.Trainer, phase: str) -> _LightningView:
    """This step's ``self.log`` values, or the keys validation logged; Lightning has no public per-step view.

    ``trainer.callback_metrics`` mixes this step's values with stale epoch and validation values, so for
    ``phase='train'`` (in ``on_train_batch_end``) this returns the active ``_ResultCollection``'s ``on_step``
    items with their ``_forward_cache`` (this step's value, still on the device) and whether Lightning's
    validation runs right after this batch (``_should_check_val_fx``), so that it joins this iteration as
    Chainer's Evaluator does. For ``phase='validation'`` (``on_validation_end``) it names the ``on_epoch``
    keys the evaluation loop logged, whose reduced values are in ``trainer.callback_metrics``.
    """
    # In on_train_batch_end the training epoch loop's collection is the active one; ``trainer._results`` and
    # ``fit_loop._results`` find it by comparing Lightning's running-stage enums, which costs more than the rest.
    results = trainer.fit_loop.epoch_loop._results if phase == "train" else trainer._results
    items = list(results.valid_items()) if results is not None else []
    if phase == "train":
        values = [(m.meta.name, m._forward_cache) for _, m in items if m.meta.on_step and m._forward_cache is not None]
        loop = trainer.fit_loop
        follows = _validation_may_follow(trainer) and bool(loop.epoch_loop._should_check_val_fx(loop._data_fetcher))
        return _LightningView(values, [], follows)
    keys = [m.meta.name for _, m in items if m.meta.on_epoch]
    return _LightningView([], keys, False)


def _validation_may_follow(trainer: pl.Trainer) -> bool:
    """False when Lightning's (costly, ~50 us) validation check cannot be true for this batch.

    Validation follows a batch only at the end of an epoch, every ``val_check_batch`` batches, on a stop
    request, or on a time interval; any case this does not recognise is left to Lightning to decide.
    """
    loop = trainer.fit_loop.epoch_loop
    every = trainer.val_check_batch
    if not isinstance(every, int) or every <= 0:
        return True
    return (
        loop.batch_progress.is_last_batch
        or trainer.should_stop
        or getattr(trainer, "_val_check_time_interval", None) is not None
        or (loop.batch_idx + 1) % every == 0
        or (loop.total_batch_idx + 1) % every == 0
    )


def lightning_checkpoint(trainer: pl.Trainer) -> dict[str, Any]:
    """The checkpoint dict ``trainer.save_checkpoint`` writes; collective, so every rank calls it.

    Lightning has no public call that returns the dict without writing it through its CheckpointIO, whose fsspec
    transaction stages the file in ``$TMPDIR``; ``Trainer.save_checkpoint`` gets it from this private method.

    Args:
        trainer: the trainer to checkpoint.
    """
    return trainer._checkpoint_connector.dump_checkpoint(weights_only=False)


def preload_checkpoint(trainer: pl.Trainer, path: str) -> None:
    """From a callback's ``setup``: the fit being set up restores everything from ``path``, as ``ckpt_path=``.

    Lightning chooses the checkpoint of a fit before any callback runs and restores it only from the path given
    to ``fit``. Once it is loaded into the connector here, Lightning's own restore steps (module, datamodule,
    callbacks, then loops and optimizers) read it as they would a ``ckpt_path``; an explicit ``ckpt_path`` given
    to ``fit`` loads after this one and wins.

    Args:
        trainer: the trainer whose ``fit`` is calling its callbacks' ``setup``.
        path: a full Lightning checkpoint.
    """
    trainer._checkpoint_connector.resume_start(path)
