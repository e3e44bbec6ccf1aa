"""Chainer's ``snapshot()`` and ``snapshot_object()``: its arguments honoured with its meaning, or refused.

``snapshot(savefun=None, filename='snapshot_iter_{.updater.iteration}', *, target=None, condition=None,
writer=None, snapshot_on_error=False, n_retains=-1, autoload=False)`` is Chainer 7.8.1's signature; ``trigger``
(Chainer's ``trainer.extend(trigger=)``) and ``out`` (its ``trainer.out``) are added. A ``savefun`` or a
``writer`` has no meaning for a Lightning checkpoint written atomically by rank 0, so either is refused when the
extension is built, in one sentence, as is a template naming anything but the iteration, epoch or epoch_detail.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Any

from lightning_chainer.extensions.autoload import find_latest_snapshot, list_snapshots
from lightning_chainer.extensions.snapshot_extension import DEFAULT_FILENAME, Snapshot, apply_autoload
from lightning_chainer.extensions.snapshot_object import SnapshotObject, load_snapshot_object
from lightning_chainer.rng import restore_rng_states, rng_states

__all__ = [
    "DEFAULT_FILENAME",
    "Snapshot",
    "SnapshotObject",
    "apply_autoload",
    "find_latest_snapshot",
    "list_snapshots",
    "load_snapshot_object",
    "restore_rng_states",
    "rng_states",
    "snapshot",
    "snapshot_object",
]


def _chainer_options(savefun: Any, writer: Any, n_retains: int, deprecated: dict[str, Any]) -> int:
    """Refuse what Chainer's snapshot takes but cannot mean the same here; ``n_retains`` after ``num_retain``."""
    if isinstance(savefun, (str, tuple)):
        raise TypeError(
            "snapshot()'s first argument (snapshot_object's third) is Chainer's savefun: pass the file name as "
            "filename='...' and the trigger as trigger=(1, 'epoch')."
        )
    if savefun is not None:
        raise TypeError(
            "snapshot(savefun=...) is not supported: snapshots are torch.save files (a Lightning checkpoint, or "
            "snapshot_object's state_dict) that Trainer.fit(ckpt_path=...) and load_snapshot_object read; drop it."
        )
    if writer is not None:
        raise TypeError(
            "snapshot(writer=...) is not supported: rank 0 writes each snapshot itself (a temp file in out, "
            "fsynced and renamed) while every rank waits for it; drop writer."
        )
    if "num_retain" in deprecated:
        warnings.warn("Argument `num_retain` is deprecated. Please use `n_retains` instead", DeprecationWarning, 3)
        n_retains = deprecated.pop("num_retain")
    if deprecated:
        raise TypeError(f"snapshot() got an unexpected keyword argument {next(iter(deprecated))!r}.")
    return n_retains


def snapshot(
    savefun: None = None,
    filename: str = DEFAULT_FILENAME,
    *,
    target: Any = None,
    condition: Callable[[], bool] | None = None,
    writer: None = None,
    snapshot_on_error: bool = False,
    n_retains: int = -1,
    autoload: bool = False,
    trigger: Any = (1, "epoch"),
    out: str | os.PathLike[str] | None = None,
    **deprecated: Any,
) -> Snapshot:
    """Chainer's ``extensions.snapshot()``: a full, resumable Lightning checkpoint at ``trigger``.

    Args:
        savefun: Chainer's save function; only None (snapshots are ``torch.save`` files).
        filename: the template, Chainer's ``'snapshot_iter_{.updater.iteration}'`` or ``'..._{iteration}'``.
        target: as Chainer's, an object to save instead of the whole run: :func:`snapshot_object`.
        condition: ``condition()`` decides, when the trigger fires, whether the snapshot is taken.
        writer: Chainer's snapshot writer; only None.
        snapshot_on_error: also take one when training fails.
        n_retains: how many snapshots to keep (0 or less: all); ``num_retain=`` is Chainer's deprecated name.
        autoload: resume from the newest readable snapshot in ``out`` (see :func:`apply_autoload`).
        trigger: when to take a snapshot (Chainer's ``trainer.extend(trigger=)``).
        out: the folder; None: the logger's run folder, else ``result``.
        **deprecated: ``num_retain`` only.

    Raises:
        TypeError: ``savefun`` or ``writer`` given, or an argument Chainer's snapshot does not take.
        ValueError: ``filename`` names a field other than the iteration, epoch or epoch_detail.
    """
    n_retains = _chainer_options(savefun, writer, n_retains, deprecated)
    options: dict[str, Any] = dict(
        trigger=trigger, n_retains=n_retains, autoload=autoload, snapshot_on_error=snapshot_on_error, out=out
    )
    if target is not None:
        return SnapshotObject(target, filename, condition=condition, **options)
    return Snapshot(filename, condition=condition, **options)


def snapshot_object(target: Any, filename: str, savefun: None = None, **kwargs: Any) -> SnapshotObject:
    """Chainer's ``extensions.snapshot_object``: only ``target``'s ``state_dict``.

    Args:
        target: a torch module (or anything with ``state_dict``/``load_state_dict``).
        filename: the template, e.g. ``'model_epoch_{.updater.epoch}'``.
        savefun: Chainer's save function; only None.
        **kwargs: :func:`snapshot`'s keywords.
    """
    if target is None:
        raise TypeError("snapshot_object(target=None) has nothing to save: pass a module, or use snapshot().")
    return snapshot(savefun, filename, target=target, **kwargs)  # type: ignore[return-value]
