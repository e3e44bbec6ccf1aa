"""snapshot / snapshot_object: Chainer's snapshots as atomic Lightning checkpoints and module state_dicts."""

from __future__ import annotations

import glob
import os
import random
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from mnist_lightning.extensions.observation import PRIORITY_SNAPSHOT, Extension, Step, atomic_write, resolve_out

if TYPE_CHECKING:
    import lightning.pytorch as pl
    from torch import nn


def _pattern(filename: str) -> tuple[str, str]:
    """The fixed text before the first ``{`` and after the last ``}`` of a filename template."""
    prefix = filename.split("{", 1)[0]
    suffix = filename.rsplit("}", 1)[-1] if "}" in filename else ""
    return prefix, suffix


def list_snapshots(out: str, filename: str = "snapshot_iter_{iteration}") -> list[str]:
    """Complete snapshots in ``out`` matching the template, oldest first (temporary files are hidden dot-files)."""
    prefix, suffix = _pattern(filename)
    paths = [
        p
        for p in glob.glob(os.path.join(glob.escape(out), glob.escape(prefix) + "*" + glob.escape(suffix)))
        if os.path.isfile(p) and not os.path.basename(p).startswith(".")
    ]
    return sorted(paths, key=lambda p: (os.path.getmtime(p), p))


def find_latest_snapshot(out: str, filename: str = "snapshot_iter_{iteration}") -> str | None:
    """The newest complete snapshot in ``out`` (what Chainer's ``autoload`` loads), or None."""
    paths = list_snapshots(out, filename)
    return paths[-1] if paths else None


class Snapshot(Extension):
    """Saves a full Lightning checkpoint (model, optimizers, loops, every callback's state) at ``trigger``.

    The file is written under a hidden temporary name in ``out`` and renamed into place, so a killed process
    leaves the old or the new file, never a truncated one; ``n_retains > 0`` prunes older ones afterwards.
    ``trainer.save_checkpoint`` runs on every rank (it is collective); rank 0 renames and prunes. Snapshots
    run after every other extension and trigger of the iteration. Resume with ``Trainer.fit(ckpt_path=...)``.
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

    def _state_key_fields(self) -> dict[str, Any]:
        return dict(filename=self.filename)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if stage == "fit":
            self.out = resolve_out(trainer, self._out)

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_fit_start(trainer, pl_module)
        if self.autoload and trainer.ckpt_path is None:
            latest = find_latest_snapshot(self.out or "result", self.filename)
            if latest is not None:
                raise RuntimeError(
                    f"snapshot(autoload=True) found {latest} but the run did not resume from it: call "
                    "apply_autoload(trainer) before trainer.fit, or pass ckpt_path=find_latest_snapshot(out)."
                )

    def autoload_path(self, trainer: pl.Trainer) -> str | None:
        """The newest complete snapshot in this extension's folder (resolved as ``setup`` would), or None."""
        return find_latest_snapshot(self._out if self._out is not None else resolve_out(trainer, None), self.filename)

    def _name(self, step: Step) -> str:
        return self.filename.format(iteration=step.iteration, epoch=step.epoch, epoch_detail=step.epoch_detail)

    def __call__(self, step: Step) -> None:
        self.save(step.trainer, step.pl_module, self._name(step))

    def save(self, trainer: pl.Trainer, pl_module: pl.LightningModule, name: str) -> str:
        """Write the snapshot ``name`` into ``out`` atomically; returns its path."""
        out = self.out or "result"
        path = os.path.join(out, name)
        tmp = os.path.join(out, f".{name}.tmp")
        if trainer.is_global_zero:
            os.makedirs(out, exist_ok=True)
        try:
            self.write(trainer, pl_module, tmp)
        except BaseException:
            if trainer.is_global_zero and os.path.exists(tmp):
                os.remove(tmp)
            raise
        if trainer.is_global_zero:
            with open(tmp, "rb") as f:  # on disk before it takes the real name, not only in the page cache
                os.fsync(f.fileno())
            os.replace(tmp, path)
            if self.n_retains > 0:
                for old in list_snapshots(out, self.filename)[: -self.n_retains]:
                    if os.path.abspath(old) != os.path.abspath(path):
                        os.remove(old)
        trainer.strategy.barrier("snapshot")
        return path

    def write(self, trainer: pl.Trainer, pl_module: pl.LightningModule, path: str) -> None:
        """Save the trainer's full checkpoint to ``path`` (collective: every rank calls it)."""
        trainer.save_checkpoint(path)

    def extension_state(self) -> dict[str, Any]:
        """The RNG states at the moment of the snapshot, so dropout or augmentation resume where they were."""
        return {"rng": rng_states()}

    def load_extension_state(self, state: dict[str, Any]) -> None:
        if "rng" in state:
            restore_rng_states(state["rng"])

    def on_error(self, trainer: pl.Trainer, exception: BaseException) -> None:
        if self.snapshot_on_error and trainer.lightning_module is not None:
            epoch = trainer.current_epoch
            name = self.filename.format(iteration=trainer.global_step, epoch=epoch, epoch_detail=float(epoch))
            self.save(trainer, trainer.lightning_module, name)


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
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])


class SnapshotObject(Snapshot):
    """Saves only ``target.state_dict()`` (e.g. ``model_epoch_{epoch}``); read it back with ``load_snapshot_object``."""

    def __init__(self, target: nn.Module, filename: str, **kwargs: Any) -> None:
        super().__init__(filename=filename, **kwargs)
        self.target = target

    def write(self, trainer: pl.Trainer, pl_module: pl.LightningModule, path: str) -> None:
        if trainer.is_global_zero:
            import io

            buffer = io.BytesIO()
            torch.save(self.target.state_dict(), buffer)
            atomic_write(path, buffer.getvalue())


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
    """Before ``trainer.fit``: point ``trainer.ckpt_path`` at the newest snapshot of an ``autoload=True`` snapshot."""
    for callback in trainer.callbacks:
        if isinstance(callback, Snapshot) and callback.autoload:
            path = callback.autoload_path(trainer)
            if path is not None:
                trainer.ckpt_path = path
                return path
    return None
