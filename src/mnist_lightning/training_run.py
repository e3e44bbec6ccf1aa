"""One training run of the CLI: its parts, the folders it holds, and the checks of the snapshot it resumes from."""

from __future__ import annotations

import argparse
import atexit
import os
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback

from lightning_chainer import extensions as E
from mnist_lightning.checks import UsageError, is_out_of_memory, logger_version
from mnist_lightning.classifier import Classifier
from mnist_lightning.compiling import compile_in_place
from mnist_lightning.data import ImageDataModule
from mnist_lightning.datasets import get_dataset
from mnist_lightning.resume import SetLearningRate, Snapshot, check_flags, check_weights
from mnist_lightning.run_folder import (
    VERSION_ENV,
    RunLock,
    claim_version,
    is_rank_zero_process,
    remove_if_unused,
)


@dataclass
class Run:
    """What ``cli.build`` makes: the trainer and its parts, the snapshot to start from, the folders this run holds."""

    trainer: L.Trainer
    model: Classifier
    datamodule: ImageDataModule
    out: str
    ckpt_path: str | None = None
    lock: RunLock | None = None
    #: Folders this run created (deepest first), removed again when it fails before its first step.
    created: list[Path] = field(default_factory=list)
    start_step: int = 0

    def close(self, failed: bool) -> None:
        """Release the output folder; after a failure before the first step, remove the folders it made."""
        if self.lock is not None:
            self.lock.release()
        if failed and self.trainer.global_step == self.start_step:
            remove_if_unused(self.created)

    def last_snapshot(self) -> str | None:
        """The newest complete snapshot in the output folder, or None."""
        for callback in self.trainer.callbacks:
            if isinstance(callback, E.Snapshot) and not isinstance(callback, E.SnapshotObject):
                return E.find_latest_snapshot(callback.out or self.out, callback.filename)
        return None


def build_model(args: argparse.Namespace) -> Classifier:
    """The Classifier the flags describe, for ``--dataset``'s examples; ``--compile`` compiles its predictor."""
    info = get_dataset(args.dataset)
    try:
        model = Classifier(
            args.model,
            n_units=args.unit,
            optimizer=args.optimizer,
            lr=args.lr,
            input_shape=info.shape,
            n_classes=info.classes,
        )
    except (RuntimeError, MemoryError) as error:
        if isinstance(error, MemoryError) or is_out_of_memory(error):
            size = f" with {args.unit} units" if args.model == "mlp" else ""
            raise UsageError(f"not enough memory to build the {args.model}{size}: choose a smaller model.") from None
        raise
    if getattr(args, "compile", False):
        compile_in_place(model.predictor)
    return model


def claim_folders(args: argparse.Namespace) -> tuple[int | str | None, RunLock | None, list[Path]]:
    """Rank 0 claims ``lightning_logs/version_N`` (unless a resume continues one) and locks the output folder."""
    version = logger_version(args.resume, args.out)
    if not is_rank_zero_process():
        inherited = os.environ.get(VERSION_ENV)
        return (int(inherited) if inherited and inherited.isdigit() else version), None, []
    created: list[Path] = []
    if version is None:
        version, created = claim_version("lightning_logs")
        os.environ[VERSION_ENV] = str(version)  # the rank processes Lightning starts find the same folder
    out = Path(args.out) if args.out is not None else Path("lightning_logs") / f"version_{version}"
    if not out.exists():
        created = [*[p for p in (out.absolute(), *out.absolute().parents) if not p.exists()], *created]
        out.mkdir(parents=True)
    lock = RunLock(out)
    try:
        lock.acquire()
    except BaseException:
        remove_if_unused(created)
        raise
    atexit.register(lock.release)
    return version, lock, created


def resume_callbacks(snapshot: Snapshot, args: argparse.Namespace, model: Classifier, flag: str) -> list[Callback]:
    """Check ``snapshot`` against the flags and the model; a new ``--lr`` is applied and said, never ignored."""
    check_flags(snapshot, args, flag)
    check_weights(snapshot, model, flag)
    saved = snapshot.learning_rate
    if args.lr is not None and saved is not None and args.lr != saved:
        if is_rank_zero_process():
            print(f"--lr {args.lr:g} replaces the snapshot's learning rate {saved:g} from here on.", flush=True)
        return [SetLearningRate(args.lr)]
    return []
