"""What an ExtensionsManager does when a fit is set up, for extensions and a Trainer made for ``callbacks=[...]``.

Each function is one step of ``ExtensionsManager.setup``: refuse an Extension left in ``trainer.callbacks``, let a
ProgressBar extension replace Lightning's bar, lift Lightning's default epoch limit for a stop trigger, and
load the snapshot ``snapshot(autoload=True)`` finds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lightning.pytorch.callbacks import ProgressBar as LightningProgressBar

from lightning_chainer._lightning import preload_checkpoint
from lightning_chainer.extension import Extension
from lightning_chainer.extensions.snapshot_extension import Snapshot

if TYPE_CHECKING:
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import Callback

#: Lightning's ``max_epochs`` when neither it nor ``max_steps`` was given.
LIGHTNING_DEFAULT_MAX_EPOCHS = 1000


def refuse_mixing(trainer: pl.Trainer, manager: Callback) -> None:
    """Raise when ``trainer.callbacks`` holds an Extension or another manager next to ``manager``.

    Args:
        trainer: the trainer being set up.
        manager: the ExtensionsManager in its callbacks.

    Raises:
        ValueError: one sentence saying where the callback belongs instead.
    """
    for callback in trainer.callbacks:
        if callback is manager:
            continue
        kind = type(callback).__name__
        if isinstance(callback, type(manager)):
            raise ValueError(f"a Trainer takes one {kind}: extend one of them with every extension.")
        if kind == "EarlyStoppingTrigger":
            raise ValueError(
                f"EarlyStoppingTrigger is in Trainer(callbacks=[...]) next to an {type(manager).__name__}: pass it "
                "as its stop_trigger=... instead."
            )
        if isinstance(callback, Extension):
            raise ValueError(
                f"{kind} is in Trainer(callbacks=[...]) next to an {type(manager).__name__}, which runs the "
                "extensions it is given: pass it to trainer.extend(...) instead."
            )


def replace_progress_bar(trainer: pl.Trainer, extensions: list[Extension]) -> None:
    """A ProgressBar extension is the bar, as in Chainer: Lightning's own (tqdm) would draw over the table.

    Args:
        trainer: the trainer being set up.
        extensions: the manager's extensions.
    """
    if any(isinstance(ext, LightningProgressBar) for ext in extensions):
        trainer.callbacks = [cb for cb in trainer.callbacks if not isinstance(cb, LightningProgressBar)]


def lift_default_epoch_limit(trainer: pl.Trainer) -> None:
    """With neither ``max_epochs`` nor ``max_steps`` given, Lightning stops at 1000 epochs; a stop trigger decides.

    An explicit ``max_epochs=1000`` (with no ``max_steps``) cannot be told from the default, and is lifted too.

    Args:
        trainer: the trainer being set up for ``fit`` (Lightning has set its limits by then).
    """
    if trainer.max_steps == -1 and trainer.fit_loop.max_epochs == LIGHTNING_DEFAULT_MAX_EPOCHS:
        trainer.fit_loop.max_epochs = -1


def preload_autoload(trainer: pl.Trainer, extensions: list[Extension]) -> tuple[Snapshot, str] | None:
    """Chainer's ``snapshot(autoload=True)``: the fit resumes from the newest readable snapshot in its folder.

    Lightning restores only a checkpoint chosen before any callback runs, so it is loaded here, in ``setup``
    (see :func:`~lightning_chainer._lightning.preload_checkpoint`); a ``ckpt_path`` given to ``fit`` wins.

    Args:
        trainer: the trainer being set up for ``fit``.
        extensions: the manager's extensions; the first full snapshot with ``autoload`` decides.

    Returns:
        The snapshot extension and the path it loads, or None when it finds none (or none autoloads).

    Raises:
        SnapshotError: snapshots exist but none can be read.
    """
    for ext in extensions:
        if isinstance(ext, Snapshot) and ext.autoload and ext._resumes_run:
            path = ext.autoload_path(trainer)
            if path is None:
                return None
            preload_checkpoint(trainer, path)
            return ext, path
    return None
