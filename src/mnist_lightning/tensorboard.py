"""TensorBoard for the training command: the run's logger, the log's curves and charts, and HParams.

Every scalar curve is the ``log``'s (TensorBoardReport), at Chainer's 1-based iteration. Lightning's placeholder
``hp_metric = -1`` is switched off: after testing, the run's hyper-parameters are written once, with the best
and last validation accuracy of the log and the test scores as their metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePath
from typing import Any

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger

from lightning_chainer import extensions as E

#: The names of the HParams metrics: scalars of their own, so that no curve of the log gets a second point.
BEST = "hp/best/validation/main/accuracy"
LAST = "hp/last/validation/main/accuracy"
TEST = "hp/test/main/accuracy"


def tensorboard_logger(version: int | str | None) -> TensorBoardLogger:
    """Lightning's logger on ``lightning_logs/version_N``, without the placeholder ``hp_metric``.

    Args:
        version: the run's version number (or folder name); None lets Lightning pick the next one.
    """
    return TensorBoardLogger(".", name="lightning_logs", version=version, default_hp_metric=False)


def tensorboard_report(plots: Sequence[tuple[Sequence[str], str]]) -> E.TensorBoardReport:
    """The log's entries in TensorBoard, with one custom-scalars chart per PlotReport, titled as its file.

    Args:
        plots: ``(keys, filename)`` of each PlotReport (``loss.png`` draws ``main/loss`` and
            ``validation/main/loss``): the chart ``loss`` draws the same keys.
    """
    return E.TensorBoardReport(layout={PurePath(filename).stem: list(keys) for keys, filename in plots})


def hyperparameters(trainer: L.Trainer) -> dict[str, Any]:
    """The module's and the data's hyper-parameters, the epoch count and the learning rate the run ended with."""
    params: dict[str, Any] = dict(trainer.lightning_module.hparams)
    if trainer.datamodule is not None:
        params.update(trainer.datamodule.hparams)
    params["epoch"] = trainer.max_epochs
    if trainer.optimizers:  # --lr None means the optimizer's default, and a resume may have set another
        params["lr"] = float(trainer.optimizers[0].param_groups[0]["lr"])
    return params


def run_metrics(trainer: L.Trainer, scores: dict[str, float]) -> dict[str, float]:
    """The best and last ``validation/main/accuracy`` of the log, and the test accuracy in ``scores``."""
    metrics: dict[str, float] = {}
    log = next((c.log for c in trainer.callbacks if isinstance(c, E.LogReport)), [])
    accuracies = [e["validation/main/accuracy"] for e in log if "validation/main/accuracy" in e]
    if accuracies:
        metrics[BEST], metrics[LAST] = max(accuracies), accuracies[-1]
    if "test/main/accuracy" in scores:
        metrics[TEST] = float(scores["test/main/accuracy"])
    return metrics


def log_hparams(trainer: L.Trainer, scores: dict[str, float]) -> None:
    """Write the run's hyper-parameters with its real metrics to TensorBoard's HParams, at the last iteration.

    Args:
        trainer: the trainer after ``fit`` and ``test``.
        scores: what ``trainer.test`` returned for the first loader (``test/main/accuracy``, ...).
    """
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(hyperparameters(trainer), run_metrics(trainer, scores), step=trainer.global_step)
            # Lightning closed its writer after test(): this write opened another, which only finalize flushes.
            logger.finalize("success")
