"""SnapshotObject: the extension behind ``snapshot_object()``, one object's ``state_dict`` at each trigger."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from lightning_chainer.extensions.autoload import newest_readable_snapshot, state_dict_problem
from lightning_chainer.extensions.snapshot_extension import Snapshot, serialized

if TYPE_CHECKING:
    import lightning.pytorch as pl
    from torch import nn


class SnapshotObject(Snapshot):
    """Saves only ``target.state_dict()`` (``model_epoch_{.updater.epoch}``, say); read it by ``load_snapshot_object``.

    With ``autoload=True`` it loads the newest readable one of its files into ``target`` when training starts,
    as Chainer's; the run itself resumes only from a full snapshot.
    """

    _resumes_run = False

    def __init__(self, target: Any, filename: str, **kwargs: Any) -> None:
        if not callable(getattr(target, "state_dict", None)) or not callable(getattr(target, "load_state_dict", None)):
            raise TypeError(
                f"snapshot_object's target must have state_dict() and load_state_dict() (a torch module or "
                f"optimizer), not a {type(target).__name__}."
            )
        super().__init__(filename=filename, **kwargs)
        self.target = target

    def autoload_path(self, trainer: pl.Trainer) -> str | None:
        """None: the run does not resume from a ``state_dict``; :meth:`initialize` loads it into the target."""
        return None

    def initialize(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.autoload:
            path = newest_readable_snapshot(
                self.out or "result", self.filename, report=trainer.is_global_zero, problem=state_dict_problem
            )
            if path is not None:
                load_snapshot_object(path, self.target)

    def payload(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> memoryview | None:
        return serialized(self.target.state_dict()) if trainer.is_global_zero else None

    def _saved_by_strategy(self, trainer: pl.Trainer) -> bool:
        return False  # a module's own state_dict, whatever the strategy


def load_snapshot_object(path: str, target: nn.Module) -> nn.Module:
    """Load a ``snapshot_object`` file into ``target`` (a freshly built module) and return it."""
    target.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return target
