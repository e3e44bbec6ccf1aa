"""``model_best``: the predictor at its best validation accuracy so far, as Chainer's examples keep it.

Chainer's examples write ``snapshot_object(model.predictor, 'model_best')`` under
``MaxValueTrigger('validation/main/accuracy')``. Here the file is a model file of ``trained.py``
(:func:`~mnist_lightning.trained.model_file_contents`): the predictor's ``state_dict`` with the Classifier's
hyper-parameters and the data set and normalisation it was trained with, so that ``load_trained`` (predict,
export) rebuilds and feeds it from the file alone. It also records where the best value was seen: ``epoch``,
``iteration``, ``monitor`` and ``best_value``.

The trigger's best value is part of every snapshot, so a resumed run keeps the same ``model_best`` as an
uninterrupted one.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import torch

from lightning_chainer import extensions as E
from lightning_chainer import triggers
from mnist_lightning.trained import model_file_contents

if TYPE_CHECKING:
    import lightning.pytorch as pl
    from torch import nn

#: The file name in the run's output folder, as in Chainer's examples.
BEST_MODEL = "model_best"
#: The observation whose largest epoch value picks the model.
MONITOR = "validation/main/accuracy"


class BestModelSnapshot(E.SnapshotObject):
    """``snapshot_object`` of a Classifier's predictor, written as a model file that describes itself.

    Args:
        target: the predictor of the Classifier being trained.
        filename: the file name in ``out``.
        trigger: when to write it, e.g. ``MaxValueTrigger(MONITOR)``.
        out: the output folder (default: the logger's run folder, as for every extension).
    """

    def __init__(self, target: nn.Module, filename: str, trigger: Any, out: str | None = None) -> None:
        super().__init__(target, filename, trigger=trigger, out=out)
        self._where: dict[str, Any] = {}

    def __call__(self, step: E.Step) -> None:
        value = step.observation.get(MONITOR)
        self._where = {
            "epoch": step.epoch,
            "iteration": step.iteration,
            "monitor": MONITOR,
            "best_value": None if value is None else float(value),
        }
        super().__call__(step)

    def payload(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> memoryview | None:
        if not trainer.is_global_zero:
            return None
        # Data hyper-parameters without these keys mean the defaults, as a resume reads them.
        data = getattr(trainer.datamodule, "hparams", {})
        contents = model_file_contents(pl_module, data.get("dataset", "mnist"), bool(data.get("normalize", False)))
        buffer = io.BytesIO()
        torch.save({**contents, **self._where}, buffer)
        return buffer.getbuffer()


def best_model(predictor: nn.Module, out: str | None = None) -> BestModelSnapshot:
    """The ``model_best`` extension: the predictor written whenever an epoch's validation accuracy is the best so far.

    Args:
        predictor: the Classifier's predictor.
        out: the run's output folder (``-o``), or None for the logger's run folder.
    """
    return BestModelSnapshot(predictor, BEST_MODEL, triggers.MaxValueTrigger(MONITOR, (1, "epoch")), out=out)
