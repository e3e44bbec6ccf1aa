"""Snapshot: the extension behind ``snapshot()``, a full Lightning checkpoint written atomically, and autoload."""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import shutil
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from lightning.pytorch.strategies import Strategy

from lightning_chainer._lightning import lightning_checkpoint
from lightning_chainer.extension import Extension
from lightning_chainer.extensions.autoload import find_latest_snapshot, list_snapshots, newest_readable_snapshot
from lightning_chainer.files import TEMP_SUFFIX, WriteError, atomic_write, remove_temp_files, resolve_out
from lightning_chainer.rng import restore_rng_states, rng_states
from lightning_chainer.step import PRIORITY_SNAPSHOT, Step
from lightning_chainer.templates import check_number_template, format_number_template

if TYPE_CHECKING:
    import lightning.pytorch as pl


def _strategy_saves_itself(strategy: Strategy) -> bool:
    """DeepSpeed, FSDP, XLA and model parallel save (sharded) checkpoints with collective code of their own."""
    return type(strategy).save_checkpoint is not Strategy.save_checkpoint


def serialized(obj: Any) -> memoryview:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getbuffer()


#: Chainer's default snapshot name; ``snapshot_iter_{iteration}`` names the same files.
DEFAULT_FILENAME = "snapshot_iter_{.updater.iteration}"


class Snapshot(Extension):
    """Saves a full Lightning checkpoint (model, optimizers, loops, every callback's state) at ``trigger``.

    ``filename`` is a template in Chainer's spelling (``{.updater.iteration}``, ``{.updater.epoch}``,
    ``{.updater.epoch_detail}``) or this library's (``{iteration}``, ...); both give Chainer's names. The file is
    written under a hidden temporary name in ``out`` (nothing goes through ``$TMPDIR``), fsynced and renamed into
    place, so a killed process leaves the old or the new file, never a truncated one; leftover temp files are
    removed when the next run starts. ``n_retains > 0`` keeps that many (by the number in the name). Every rank
    builds the checkpoint (it is collective), rank 0 writes and prunes. Snapshots run after every other extension
    and trigger of the iteration. Resume with ``Trainer.fit(ckpt_path=...)``.

    Args:
        filename: the file name template.
        trigger: when to take a snapshot.
        n_retains: how many snapshots to keep (the highest numbers); 0 or less keeps all.
        autoload: resume from the newest readable snapshot in ``out`` (see :func:`apply_autoload`).
        snapshot_on_error: also take one when training fails.
        out: the folder; None: the logger's run folder, else ``result``.
        condition: Chainer's ``condition()``: a snapshot whose trigger fired is taken only when it returns true
            (on every rank alike: building a checkpoint is collective).
    """

    priority = PRIORITY_SNAPSHOT
    #: Whether ``autoload`` resumes the whole run (a full snapshot) from the file it finds.
    _resumes_run = True

    def __init__(
        self,
        filename: str = DEFAULT_FILENAME,
        trigger: Any = (1, "epoch"),
        n_retains: int = -1,
        autoload: bool = False,
        snapshot_on_error: bool = False,
        out: str | os.PathLike[str] | None = None,
        *,
        condition: Callable[[], bool] | None = None,
    ) -> None:
        super().__init__(trigger)
        if callable(filename):
            raise TypeError(
                "snapshot(filename=...) must be a template string such as 'snapshot_iter_{.updater.iteration}', "
                "not a function: n_retains and autoload find the files by the template."
            )
        self.filename = check_number_template(filename, "snapshot(filename=...)")
        for flag, value in (("autoload", autoload), ("snapshot_on_error", snapshot_on_error)):
            if not isinstance(value, bool):
                raise TypeError(f"snapshot({flag}={value!r}) must be True or False.")
        if not isinstance(n_retains, int) or isinstance(n_retains, bool):
            raise TypeError(f"snapshot(n_retains={n_retains!r}) must be an int (0 or less keeps every snapshot).")
        if condition is not None and not callable(condition):
            raise TypeError(f"snapshot(condition={condition!r}) must be a function of no arguments returning a bool.")
        self.n_retains = n_retains
        self.autoload = autoload
        self.snapshot_on_error = snapshot_on_error
        self.condition = condition
        out = os.fspath(out) if out is not None else None
        self._out = out
        self.out: str | None = out
        self._autoloaded: str | None = None

    def _state_key_fields(self) -> dict[str, Any]:
        return dict(filename=self.filename)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if stage == "fit":
            self.out = resolve_out(trainer, self._out)
            if trainer.is_global_zero:
                remove_temp_files(self.out, self.filename)

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_fit_start(trainer, pl_module)
        if self.autoload and self._resumes_run and trainer.ckpt_path is None:
            latest = find_latest_snapshot(self.out or "result", self.filename)
            if latest is not None:
                raise RuntimeError(
                    f"snapshot(autoload=True) found {latest} but the run did not resume from it: call "
                    "apply_autoload(trainer) before trainer.fit, or pass ckpt_path=find_latest_snapshot(out)."
                )

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Lightning keeps a ckpt_path set on the trainer for every later call: a test() after fit would load the
        # snapshot the run resumed from instead of scoring the weights it trained.
        if self._autoloaded is not None and trainer.ckpt_path == self._autoloaded:
            trainer.ckpt_path = None
        self._autoloaded = None

    def autoload_path(self, trainer: pl.Trainer) -> str | None:
        """The newest readable snapshot in this extension's folder (resolved as ``setup`` would), or None.

        Raises:
            SnapshotError: snapshots exist but none can be read.
        """
        out = self._out if self._out is not None else resolve_out(trainer, None)
        return newest_readable_snapshot(out, self.filename, report=trainer.is_global_zero)

    def _name(self, step: Step) -> str:
        return format_number_template(self.filename, step.iteration, step.epoch, step.epoch_detail)

    def __call__(self, step: Step) -> None:
        if self.condition is None or self.condition():
            self.save(step.trainer, step.pl_module, self._name(step))

    def save(self, trainer: pl.Trainer, pl_module: pl.LightningModule, name: str) -> str:
        """Write the snapshot ``name`` into ``out`` atomically and prune older ones; returns its path.

        Args:
            trainer: the trainer (every rank calls this).
            pl_module: the module being trained.
            name: the file name, already formatted.

        Raises:
            WriteError: on every rank when rank 0 could not write the file; the earlier snapshots are kept.
        """
        path = os.path.join(self.out or "result", name)
        if self._saved_by_strategy(trainer):
            self._save_through_strategy(trainer, path)
            return path
        data = self.payload(trainer, pl_module)
        failure: WriteError | None = None
        if trainer.is_global_zero and data is not None:
            try:
                atomic_write(path, data)
            except WriteError as error:
                failure = error
        # Also the barrier: no rank runs ahead of the file, and none waits for a rank 0 that failed.
        reason = trainer.strategy.broadcast(failure.reason if failure is not None else None)
        if failure is not None:
            raise failure
        if reason is not None:
            raise WriteError(path, reason)
        if trainer.is_global_zero:
            self._prune(path)
        return path

    def payload(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> memoryview | None:
        """The snapshot's bytes on rank 0, None on the other ranks (every rank calls it: it is collective)."""
        checkpoint = lightning_checkpoint(trainer)
        return serialized(checkpoint) if trainer.is_global_zero else None

    def _saved_by_strategy(self, trainer: pl.Trainer) -> bool:
        return _strategy_saves_itself(trainer.strategy)

    def _save_through_strategy(self, trainer: pl.Trainer, path: str) -> None:
        """The strategy's own collective save writes a temp name in ``out`` (a folder for sharded ones), renamed.

        Lightning's CheckpointIO, where such a strategy uses it, may stage the bytes in ``$TMPDIR`` on the way.
        """
        token = trainer.strategy.broadcast(secrets.token_hex(4))
        tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{token}{TEMP_SUFFIX}")
        try:
            trainer.save_checkpoint(tmp)
            if trainer.is_global_zero:
                os.replace(tmp, path)
        except OSError as error:
            if trainer.is_global_zero:
                _remove_tree(tmp)
            raise WriteError.from_os_error(path, error) from error
        if trainer.is_global_zero:
            self._prune(path)

    def _prune(self, path: str) -> None:
        if self.n_retains > 0:
            for old in list_snapshots(self.out or "result", self.filename)[: -self.n_retains]:
                if os.path.abspath(old) != os.path.abspath(path):
                    os.remove(old)

    def extension_state(self) -> dict[str, Any]:
        """The RNG states at the moment of the snapshot, so dropout or augmentation resume where they were."""
        return {"rng": rng_states()}

    def load_extension_state(self, state: dict[str, Any]) -> None:
        if "rng" in state:
            restore_rng_states(state["rng"])

    def on_error(self, trainer: pl.Trainer, exception: BaseException) -> None:
        # A write that just failed (a full disk, say) is not tried again under another name.
        if self.snapshot_on_error and trainer.lightning_module is not None and not isinstance(exception, WriteError):
            epoch = trainer.current_epoch
            name = format_number_template(self.filename, trainer.global_step, epoch, float(epoch))
            self.save(trainer, trainer.lightning_module, name)


def _remove_tree(path: str) -> None:
    """Remove a file or a folder (a sharded checkpoint), whatever is left of it."""
    if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        with contextlib.suppress(OSError):
            os.remove(path)


def apply_autoload(trainer: pl.Trainer) -> str | None:
    """Before ``trainer.fit``: point ``trainer.ckpt_path`` at the newest readable snapshot of an autoload snapshot.

    A newer snapshot that cannot be read is named on stderr (rank 0) and passed over.

    Args:
        trainer: the trainer whose callbacks hold a ``snapshot(autoload=True)``.

    Returns:
        The chosen snapshot's path, or None when there is none (the run starts from scratch).

    Raises:
        SnapshotError: snapshots exist but none can be read.
    """
    for callback in trainer.callbacks:
        if isinstance(callback, Snapshot) and callback.autoload and callback._resumes_run:
            path = callback.autoload_path(trainer)
            if path is not None:
                trainer.ckpt_path = callback._autoloaded = path
                return path
    return None
