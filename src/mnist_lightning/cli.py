"""The training command: Chainer's MNIST example flags and Lightning's device flags -> Trainer.fit + test.

This is the only module that knows the models, the data, the Classifier and the extensions together.
Bad input ends in one sentence on stderr and exit status 2 (``--debug`` shows the traceback instead).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from mnist_lightning import extensions as E
from mnist_lightning.allocator import keep_freed_memory
from mnist_lightning.arguments import OneLineParser, add_training_flags, non_negative_int, positive_int
from mnist_lightning.classifier import OPTIMIZERS, Classifier
from mnist_lightning.data import PIPELINES, MNISTDataModule
from mnist_lightning.mnist import MNISTDataError
from mnist_lightning.models import MODELS
from mnist_lightning.weights import WeightsError, load_npz, save_npz

ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")


class UsageError(Exception):
    """A flag, a path or a snapshot that cannot be used; the message is one sentence for the user."""


def _limit(text: str) -> int | float:
    """Lightning's limit_*_batches: an int counts batches, a float in (0, 1] is a fraction."""
    try:
        value: int | float = float(text) if "." in text or "e" in text.lower() else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a batch count or a fraction, got {text!r}") from None
    if isinstance(value, float):
        if not 0.0 < value <= 1.0:
            raise argparse.ArgumentTypeError(f"a fraction must be in (0, 1], got {value}")
        return value
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive batch count, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``scripts/train.py``."""
    p = OneLineParser(
        prog="train.py",
        description="Train LeNet or an MLP on MNIST with Lightning and Chainer-style extensions.",
    )
    add_training_flags(p, MODELS, OPTIMIZERS)
    p.add_argument("--out", "-o", default=None, help="output folder (default: lightning_logs/version_N)")
    p.add_argument("--resume", "-r", default=None, metavar="PATH", help="resume from this snapshot")
    p.add_argument("--num-workers", type=non_negative_int, default=0, help="loader workers (torchvision pipeline)")
    p.add_argument(
        "--data-pipeline",
        choices=PIPELINES,
        default="tensor",
        help="tensor: in-memory batches cut by index (default); torchvision: per-sample dataset + DataLoader",
    )
    p.add_argument(
        "--data-on-device",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="hold the whole dataset on the accelerator (default: on for CUDA)",
    )
    p.add_argument("--accelerator", choices=ACCELERATORS, default="auto", help="cpu, gpu, ... (default: auto)")
    p.add_argument("--devices", default="auto", help="device count or ids (default: auto)")
    p.add_argument("--strategy", default="auto", help="auto, ddp, ... (default: auto)")
    p.add_argument("--precision", default="32-true", help="Lightning precision (default: 32-true)")
    p.add_argument("--num-nodes", type=positive_int, default=1, help="nodes (default: 1)")
    p.add_argument("--fast-dev-run", action="store_true", help="one batch of each loop, no outputs")
    p.add_argument("--limit-train-batches", type=_limit, default=None, help="batches (or fraction) per epoch")
    p.add_argument("--limit-val-batches", type=_limit, default=None, help="validation batches (or fraction)")
    p.add_argument("--deterministic", action="store_true", help="use deterministic algorithms")
    p.add_argument("--init-from", default=None, metavar="PATH", help="initial weights from this .npz (see compare.py)")
    p.add_argument("--export-init", default=None, metavar="PATH", help="write the initial weights to this .npz")
    p.add_argument("--autoload", action="store_true", help="resume from the newest snapshot in --out, if any")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (for logs and CI)")
    p.add_argument("--noplot", action="store_true", help="no loss.png / accuracy.png")
    p.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    return p


def _check_accelerator(accelerator: str) -> None:
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise UsageError(
            f"--accelerator {accelerator} was asked for, but PyTorch sees no CUDA GPU on this machine; "
            "use --accelerator cpu (or auto)."
        )
    if accelerator == "mps" and not torch.backends.mps.is_available():
        raise UsageError("--accelerator mps was asked for, but MPS is not available on this machine.")


def _devices(text: str) -> int | str | list[int]:
    if text == "auto" or text == "-1":
        return text if text == "auto" else -1
    if re.fullmatch(r"\d+", text):
        return int(text)
    if re.fullmatch(r"\d+(,\d+)*,?", text):
        return [int(i) for i in text.split(",") if i]
    raise UsageError(f"--devices must be 'auto', a count or a comma-separated list of ids, got {text!r}.")


def read_snapshot_hparams(path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The model's and the datamodule's hyper-parameters in the checkpoint at ``path`` (UsageError if unusable)."""
    if not os.path.isfile(path):
        raise UsageError(f"--resume {path}: no such file.")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        raise UsageError(f"--resume {path}: not a Lightning checkpoint (torch.load could not read it).") from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise UsageError(f"--resume {path}: not a Lightning checkpoint (it holds no state_dict).")
    return dict(checkpoint.get("hyper_parameters", {})), dict(checkpoint.get("datamodule_hyper_parameters", {}))


def _check_resume(path: str, args: argparse.Namespace) -> None:
    hparams, data_hparams = read_snapshot_hparams(path)
    model = hparams.get("predictor")
    if model != args.model:
        raise UsageError(f"--resume {path} is a snapshot of model {model!r}, not --model {args.model}.")
    if args.model == "mlp" and hparams.get("n_units") != args.unit:
        raise UsageError(
            f"--resume {path} is a snapshot of an MLP with {hparams.get('n_units')} units, not --unit {args.unit}."
        )
    normalized = bool(data_hparams.get("normalize", False))
    if normalized != args.normalize:
        trained = "normalised pixels" if normalized else "pixels in [0, 1]"
        raise UsageError(f"--resume {path} was trained on {trained}: {'add' if normalized else 'drop'} --normalize.")


def _logger_version(resume: str | None, out: str | None) -> int | str | None:
    """Resuming a snapshot inside ``lightning_logs/version_N/`` continues that run's TensorBoard folder."""
    if resume is None or out is not None:
        return None
    folder = Path(resume).resolve().parent
    if folder.parent == Path("lightning_logs").resolve() and folder.name.startswith("version_"):
        suffix = folder.name[len("version_") :]
        return int(suffix) if suffix.isdigit() else folder.name
    return None


def _check_out(out: str) -> None:
    """Try the output folder for real (permissions alone say nothing to root), leaving no folder behind."""
    path = Path(out).absolute()
    if path.exists() and not path.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder.")
    created = [p for p in (path, *path.parents) if not p.exists()]
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError:
        raise UsageError(f"--out {out} is not writable.") from None
    finally:
        for folder in created:  # deepest first
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()


def chainer_extensions(args: argparse.Namespace) -> list[Callback]:
    """The extensions of Chainer's MNIST example, as callbacks: log, table, bar, snapshots, plots.

    ``--fast-dev-run`` keeps the console ones and writes no file, as Lightning does with its own outputs.
    """
    files = not args.fast_dev_run
    callbacks: list[Callback] = [
        E.FailOnNonNumber(trigger=(1, "epoch")),
        E.LogReport(out=args.out, filename="log" if files else None),
        E.PrintReport(
            ["epoch", "main/loss", "validation/main/loss", "main/accuracy", "validation/main/accuracy", "elapsed_time"]
        ),
    ]
    if not args.no_progress:
        callbacks.append(E.ProgressBar())
    if files:
        callbacks.append(E.snapshot(trigger=(1, "epoch"), autoload=args.autoload, out=args.out))
    if files and not args.noplot:
        # A plot costs ~30 ms: redraw at most every 10 s (and at the end), not after every short epoch.
        for keys, filename in (
            (["main/loss", "validation/main/loss"], "loss.png"),
            (["main/accuracy", "validation/main/accuracy"], "accuracy.png"),
        ):
            callbacks.append(E.PlotReport(keys, x_key="epoch", filename=filename, out=args.out, redraw_interval=10.0))
    return callbacks


def _trainer(args: argparse.Namespace, devices: Any, logger: TensorBoardLogger, callbacks: list[Callback]) -> L.Trainer:
    """The Lightning Trainer the flags describe."""
    return L.Trainer(
        max_epochs=args.epoch,
        accelerator=args.accelerator,
        devices=devices,
        strategy=args.strategy,
        num_nodes=args.num_nodes,
        precision=args.precision,
        fast_dev_run=args.fast_dev_run,
        limit_train_batches=args.limit_train_batches,
        limit_val_batches=args.limit_val_batches,
        deterministic=args.deterministic or None,
        logger=logger,
        callbacks=callbacks,
        enable_progress_bar=not args.no_progress,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
        enable_model_summary=False,
        log_every_n_steps=50,
    )


def build(
    args: argparse.Namespace, extra_callbacks: Sequence[Callback] = ()
) -> tuple[L.Trainer, Classifier, MNISTDataModule, str]:
    """Check the arguments and build (trainer, model, datamodule, output folder) without training.

    ``extra_callbacks`` are appended to the Trainer's callbacks (the benchmark adds its epoch timer).
    """
    _check_accelerator(args.accelerator)
    devices = _devices(args.devices)
    if args.out is not None:
        _check_out(args.out)
    if args.resume is not None:
        if args.autoload:
            raise UsageError("--resume and --autoload both choose the snapshot to start from: give one of them.")
        _check_resume(args.resume, args)

    L.seed_everything(args.seed, workers=True, verbose=False)
    datamodule = MNISTDataModule(
        args.data_dir,
        batch_size=args.batchsize,
        seed=args.seed,
        num_workers=args.num_workers,
        pipeline=args.data_pipeline,
        data_on_device=args.data_on_device,
        normalize=args.normalize,
    )
    # Fail before any folder is made when the data is absent and cannot be downloaded.
    datamodule.prepare_data()
    model = Classifier(args.model, n_units=args.unit, optimizer=args.optimizer, lr=args.lr)
    if args.init_from is not None:
        load_npz(model.predictor, args.init_from, args.model, args.unit)

    logger = TensorBoardLogger(".", name="lightning_logs", version=_logger_version(args.resume, args.out))
    try:
        trainer = _trainer(args, devices, logger, [*chainer_extensions(args), *extra_callbacks])
    except (ValueError, MisconfigurationException) as error:  # --strategy, --precision, --devices Lightning refuses
        first_line = str(error).splitlines()[0].rstrip(".")
        raise UsageError(f"Lightning refused the device flags: {first_line}.") from None
    out = args.out or trainer.log_dir or "result"
    if args.export_init is not None and trainer.is_global_zero:
        save_npz(model.predictor, args.export_init, args.model, args.unit)
    if args.autoload:
        E.apply_autoload(trainer)
        if trainer.ckpt_path is not None:
            _check_resume(trainer.ckpt_path, args)
    return trainer, model, datamodule, out


def run(args: argparse.Namespace) -> None:
    """Train, validate every epoch, then test; prints the settings first and the test accuracy last."""
    # Lightning's start-up chatter (GPU available..., tips) would crowd the Chainer-style console.
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    trainer, model, datamodule, out = build(args)
    if trainer.is_global_zero:
        print(f"Device: {trainer.strategy.root_device} (accelerator {args.accelerator})")
        print(f"# Model: {args.model}")
        if args.model == "mlp":
            print(f"# unit: {args.unit}")
        print(f"# Minibatch-size: {args.batchsize}")
        print(f"# epoch: {args.epoch}")
        print(f"# out: {os.path.normpath(out)}")
        print("", flush=True)

    trainer.fit(model, datamodule=datamodule, ckpt_path=args.resume)
    results = trainer.test(model, datamodule=datamodule, verbose=False)
    if trainer.is_global_zero and results:
        print(f"test/main/loss: {results[0]['test/main/loss']:.4f}")
        print(f"test/main/accuracy: {results[0]['test/main/accuracy']:.4f}", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``scripts/train.py``: returns the exit status."""
    args = build_parser().parse_args(argv)
    keep_freed_memory()
    # Lightning 2.6 on torch 2.14 warns about its own use of a deprecated torch API on every run.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    try:
        run(args)
    except (UsageError, MNISTDataError, WeightsError, E.NonNumberError) as error:
        if args.debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
