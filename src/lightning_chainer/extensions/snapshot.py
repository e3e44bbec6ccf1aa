"""snapshot / snapshot_object: Chainer's snapshots as atomic Lightning checkpoints and module state_dicts."""

from __future__ import annotations

import contextlib
import io
import os
import random
import secrets
import shutil
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from lightning.pytorch.strategies import Strategy

from lightning_chainer._lightning import lightning_checkpoint
from lightning_chainer.extension import Extension
from lightning_chainer.extensions.autoload import find_latest_snapshot, list_snapshots, newest_readable_snapshot
from lightning_chainer.files import TEMP_SUFFIX, WriteError, atomic_write, remove_temp_files, resolve_out
from lightning_chainer.step import PRIORITY_SNAPSHOT, Step

if TYPE_CHECKING:
    import lightning.pytorch as pl
    from torch import nn


def _strategy_saves_itself(strategy: Strategy) -> bool:
    """DeepSpeed, FSDP, XLA and model parallel save (sharded) checkpoints with collective code of their own."""
    return type(strategy).save_checkpoint is not Strategy.save_checkpoint


def _serialized(obj: Any) -> memoryview:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getbuffer()


class Snapshot(Extension):
    """Saves a full Lightning checkpoint (model, optimizers, loops, every callback's state) at ``trigger``.

    The file is written under a hidden temporary name in ``out`` (nothing goes through ``$TMPDIR``), fsynced and
    renamed into place, so a killed process leaves the old or the new file, never a truncated one; leftover temp
    files are removed when the next run starts. ``n_retains > 0`` keeps that many (by the number in the name).
    Every rank builds the checkpoint (it is collective), rank 0 writes and prunes. Snapshots run after every
    other extension and trigger of the iteration. Resume with ``Trainer.fit(ckpt_path=...)``.
    """

    priority = PRIORITY_SNAPSHOT

    def __init__(
        self,
        filename: str = "snapshot_iter_{iteration}",
        trigger: Any = (1, "epoch"),
        n_retains: int = -1,
        autoload: bool = False,
        snapshot_on_error: bool = False,
        out: str | None = None,
    ) -> None:
        super().__init__(trigger)
        self.filename = filename
        self.n_retains = n_retains
        self.autoload = autoload
        self.snapshot_on_error = snapshot_on_error
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
        if self.autoload and trainer.ckpt_path is None:
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
        return self.filename.format(iteration=step.iteration, epoch=step.epoch, epoch_detail=step.epoch_detail)

    def __call__(self, step: Step) -> None:
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
        return _serialized(checkpoint) if trainer.is_global_zero else None

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
            name = self.filename.format(iteration=trainer.global_step, epoch=epoch, epoch_detail=float(epoch))
            self.save(trainer, trainer.lightning_module, name)


def _remove_tree(path: str) -> None:
    """Remove a file or a folder (a sharded checkpoint), whatever is left of it."""
    if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        with contextlib.suppress(OSError):
            os.remove(path)


def rng_states() -> dict[str, Any]:
    """Python's, NumPy's, torch's and CUDA's RNG states as plain lists and tensors (``weights_only``-loadable)."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    states: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    """Undo :func:`rng_states`: every generator continues from where the snapshot left it."""
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = states["numpy"]
    # A checkpoint loaded with a map_location onto the GPU brings these back there; the setters take CPU tensors.
    np.random.set_state((kind, keys.cpu().numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(states["torch"].cpu())
    if "cuda" in states and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([state.cpu() for state in states["cuda"]])


class SnapshotObject(Snapshot):
    """Saves only ``target.state_dict()`` (e.g. ``model_epoch_{epoch}``); read it back with ``load_snapshot_object``."""

    def __init__(self, target: nn.Module, filename: str, **kwargs: Any) -> None:
        super().__init__(filename=filename, **kwargs)
        self.target = target

    def payload(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> memoryview | None:
        return _serialized(self.target.state_dict()) if trainer.is_global_zero else None

    def _saved_by_strategy(self, trainer: pl.Trainer) -> bool:
        return False  # a module's own state_dict, whatever the strategy


def snapshot(
    filename: str = "snapshot_iter_{iteration}",
    trigger: Any = (1, "epoch"),
    n_retains: int = -1,
    autoload: bool = False,
    snapshot_on_error: bool = False,
    out: str | None = None,
) -> Snapshot:
    """Chainer's ``extensions.snapshot()``: a full, resumable Lightning checkpoint at ``trigger``."""
    return Snapshot(filename, trigger, n_retains, autoload, snapshot_on_error, out)


def snapshot_object(target: nn.Module, filename: str, trigger: Any = (1, "epoch"), **kwargs: Any) -> SnapshotObject:
    """Chainer's ``extensions.snapshot_object``: only ``target``'s ``state_dict`` (filename may use ``{epoch}``)."""
    return SnapshotObject(target, filename, trigger=trigger, **kwargs)


def load_snapshot_object(path: str, target: nn.Module) -> nn.Module:
    """Load a ``snapshot_object`` file into ``target`` (a freshly built module) and return it."""
    target.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return target


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
        if isinstance(callback, Snapshot) and callback.autoload:
            path = callback.autoload_path(trainer)
            if path is not None:
                trainer.ckpt_path = callback._autoloaded = path
                return path
    return None
