"""The training command: Chainer's MNIST example flags and Lightning's device flags -> Trainer.fit + test.

This is the only module that knows the models, the data, the Classifier and the extensions together.
Bad input ends in one sentence on stderr and exit status 2 (``--debug`` shows the traceback instead); SIGINT and
SIGTERM end in one sentence and status 130 / 143 (see ``interrupts.py``).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import warnings
from collections.abc import Sequence
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from lightning_chainer import extensions as E
from lightning_chainer import quiet_console
from mnist_lightning.allocator import keep_freed_memory
from mnist_lightning.arguments import OneLineParser, add_training_flags, non_negative_int, positive_int
from mnist_lightning.best_model import best_model
from mnist_lightning.checks import (
    UsageError,
    check_accelerator,
    check_new_file,
    check_out,
    display,
    escape_undecodable_output,
    is_out_of_memory,
    limit,
    parse_devices,
)
from mnist_lightning.classifier import OPTIMIZERS, Classifier
from mnist_lightning.compiling import check_compile
from mnist_lightning.data import PIPELINES, ImageDataModule
from mnist_lightning.datasets import DATASETS
from mnist_lightning.distributed import DEFAULT_DDP_TIMEOUT, apply_ddp_timeout, distributed_error_message
from mnist_lightning.idx import DataError
from mnist_lightning.interrupts import InterruptWatch, RunInterrupted, interrupted_message
from mnist_lightning.models import MODELS
from mnist_lightning.resume import ResumeError, check_flags, read_snapshot
from mnist_lightning.run_folder import FolderInUseError, remove_if_unused
from mnist_lightning.tensorboard import log_hparams, tensorboard_logger, tensorboard_report
from mnist_lightning.training_run import Run, build_model, claim_folders, resume_callbacks
from mnist_lightning.weights import WeightsError, load_npz, save_npz

ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")
#: The PlotReports' key groups and files; TensorBoard's custom-scalars page draws the same charts.
PLOTS = (
    (["main/loss", "validation/main/loss"], "loss.png"),
    (["main/accuracy", "validation/main/accuracy"], "accuracy.png"),
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``scripts/train.py``."""
    p = OneLineParser(
        prog="train.py",
        description="Train a model (LeNet, an MLP, ...) on MNIST, Fashion-MNIST or KMNIST with Lightning and "
        "Chainer-style extensions.",
    )
    add_training_flags(p, MODELS, OPTIMIZERS, DATASETS)
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
    p.add_argument(
        "--ddp-timeout",
        type=positive_int,
        default=DEFAULT_DDP_TIMEOUT,
        metavar="SECONDS",
        help=f"how long DDP ranks wait to join and in each collective (default: {DEFAULT_DDP_TIMEOUT})",
    )
    p.add_argument("--fast-dev-run", action="store_true", help="one batch of each loop, no outputs")
    p.add_argument("--limit-train-batches", type=limit, default=None, help="batches (or fraction) per epoch")
    p.add_argument("--limit-val-batches", type=limit, default=None, help="validation batches (or fraction)")
    p.add_argument("--deterministic", action="store_true", help="use deterministic algorithms")
    p.add_argument(
        "--compile", action="store_true", help="torch.compile the predictor (files keep the eager model's keys)"
    )
    p.add_argument("--init-from", default=None, metavar="PATH", help="initial weights from this .npz (see compare.py)")
    p.add_argument("--export-init", default=None, metavar="PATH", help="write the initial weights to this .npz")
    p.add_argument("--autoload", action="store_true", help="resume from the newest snapshot in --out, if any")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (for logs and CI)")
    p.add_argument("--noplot", action="store_true", help="no loss.png / accuracy.png")
    p.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    return p


def chainer_extensions(args: argparse.Namespace) -> list[Callback]:
    """The extensions of Chainer's MNIST example, as callbacks: log, table, bar, snapshots, plots.

    ``--fast-dev-run`` keeps the console ones and writes no file, as Lightning does with its own outputs.
    """
    files = not args.fast_dev_run
    callbacks: list[Callback] = [
        E.FailOnNonNumber(trigger=(1, "epoch")),
        E.LogReport(out=args.out, log_name="log" if files else None),
        E.PrintReport(
            ["epoch", "main/loss", "validation/main/loss", "main/accuracy", "validation/main/accuracy", "elapsed_time"]
        ),
    ]
    if not args.no_progress:
        callbacks.append(E.ProgressBar())
    if files:
        callbacks.append(E.snapshot(trigger=(1, "epoch"), autoload=args.autoload, out=args.out))
        callbacks.append(tensorboard_report(PLOTS))
    if files and not args.noplot:
        # A plot costs ~30 ms: redraw at most every 10 s (and at the end), not after every short epoch.
        for keys, filename in PLOTS:
            callbacks.append(E.PlotReport(keys, x_key="epoch", filename=filename, out=args.out, redraw_interval=10.0))
    return callbacks


def _trainer(args: argparse.Namespace, devices: Any, logger: TensorBoardLogger, callbacks: list[Callback]) -> L.Trainer:
    """The Lightning Trainer the flags describe."""
    trainer = L.Trainer(
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
    apply_ddp_timeout(trainer, args.ddp_timeout)
    return trainer


def build(args: argparse.Namespace, extra_callbacks: Sequence[Callback] = ()) -> Run:
    """Check the arguments and build the run (trainer, model, datamodule, output folder) without training.

    ``extra_callbacks`` are appended to the Trainer's callbacks (the benchmark adds its epoch timer). Every check
    that can fail runs before a folder is made; a failure after that removes the folders this run made.
    """
    check_accelerator(args.accelerator)
    devices = parse_devices(args.devices)
    if args.out is not None:
        check_out(args.out)
    if args.export_init is not None:
        check_new_file(args.export_init, "--export-init")
    if args.compile:
        check_compile(args.accelerator)
    if args.resume is not None and args.autoload:
        raise UsageError("--resume and --autoload both choose the snapshot to start from: give one of them.")
    snapshot = read_snapshot(args.resume) if args.resume is not None else None
    if snapshot is not None:
        check_flags(snapshot, args)

    L.seed_everything(args.seed, workers=True, verbose=False)
    datamodule = ImageDataModule(
        args.data_dir,
        dataset=args.dataset,
        batch_size=args.batchsize,
        seed=args.seed,
        num_workers=args.num_workers,
        pipeline=args.data_pipeline,
        data_on_device=args.data_on_device,
        normalize=args.normalize,
        validation=args.validation,
    )
    # Fail before any folder is made when the data is absent and cannot be downloaded.
    datamodule.prepare_data()
    model = build_model(args)
    # Chainer's snapshot_object(model.predictor, 'model_best') under MaxValueTrigger('validation/main/accuracy').
    best = [] if args.fast_dev_run else [best_model(model.predictor, out=args.out)]
    callbacks = [*chainer_extensions(args), *best, *extra_callbacks]
    if snapshot is not None:
        callbacks += resume_callbacks(snapshot, args, model, "--resume")
    if args.init_from is not None:
        load_npz(model.predictor, args.init_from, args.model, args.unit, **_data_shape(model))

    version, lock, created = (None, None, []) if args.fast_dev_run else claim_folders(args)
    try:
        logger = tensorboard_logger(version)
        try:
            trainer = _trainer(args, devices, logger, callbacks)
        except (ValueError, MisconfigurationException) as error:  # --strategy, --precision, --devices refused
            first_line = str(error).splitlines()[0].rstrip(".")
            raise UsageError(f"Lightning refused the device flags: {first_line}.") from None
        run = Run(trainer, model, datamodule, args.out or trainer.log_dir or "result", args.resume, lock, created)
        if args.export_init is not None and trainer.is_global_zero:
            try:
                save_npz(model.predictor, args.export_init, args.model, args.unit, **_data_shape(model))
            except E.WriteError as error:
                raise UsageError(f"{error}; no snapshot was written yet.") from error
        if args.autoload:
            _autoload(run, args)
        if run.ckpt_path is not None:
            run.start_step = int(read_snapshot(run.ckpt_path).checkpoint.get("global_step", 0))
    except BaseException:
        if lock is not None:
            lock.release()
        remove_if_unused(created)
        raise
    return run


def _data_shape(model: Classifier) -> dict[str, Any]:
    """The input shape and class count the model was built for, as the weights file records them."""
    return {"input_shape": model.hparams.input_shape, "n_classes": model.hparams.n_classes}


def _autoload(run: Run, args: argparse.Namespace) -> None:
    """Chainer's ``autoload``: start from the newest readable snapshot in the output folder, if there is one."""
    path = E.apply_autoload(run.trainer)
    # Given to fit() rather than kept as trainer.ckpt_path, which test() would load again after training.
    run.trainer.ckpt_path = None
    if path is None:
        return
    snapshot = read_snapshot(path, "--autoload picked")
    run.trainer.callbacks.extend(resume_callbacks(snapshot, args, run.model, "--autoload picked"))
    run.ckpt_path = path


def _print_settings(run: Run, args: argparse.Namespace) -> None:
    print(f"Device: {run.trainer.strategy.root_device} (accelerator {args.accelerator})")
    print(f"# Model: {args.model}")
    if args.model == "mlp":
        print(f"# unit: {args.unit}")
    print(f"# Minibatch-size: {args.batchsize}")
    print(f"# epoch: {args.epoch}")
    print(f"# out: {display(os.path.normpath(run.out))}")
    print("", flush=True)


def _fit_and_test(run: Run, args: argparse.Namespace) -> None:
    """Train from ``run.ckpt_path`` (or from scratch), then test the weights in memory; print the test scores."""
    trainer = run.trainer
    if trainer.is_global_zero:
        _print_settings(run, args)
    trainer.fit(run.model, datamodule=run.datamodule, ckpt_path=run.ckpt_path)
    results = trainer.test(run.model, datamodule=run.datamodule, verbose=False, ckpt_path=None)
    log_hparams(trainer, results[0] if results else {})
    if trainer.is_global_zero and results:
        print(f"test/main/loss: {results[0]['test/main/loss']:.4f}")
        print(f"test/main/accuracy: {results[0]['test/main/accuracy']:.4f}", flush=True)


def run(args: argparse.Namespace, watch: InterruptWatch, argv: list[str]) -> int:
    """Train, validate every epoch, then test; returns the exit status (128 + signal when interrupted)."""
    # Lightning's start-up chatter (GPU available..., tips) would crowd the Chainer-style console.
    quiet_console()
    # The Classifier logs no step values (TensorBoard gets the log's entries), so Lightning's advice about its
    # logging interval on a short epoch means nothing here.
    warnings.filterwarnings("ignore", message=r".*smaller than the logging interval.*")
    built = build(args)
    failed = True
    try:
        _fit_and_test(built, args)
        failed = False
    except (KeyboardInterrupt, SystemExit, RunInterrupted):
        if watch.signum is None:
            raise
        if built.trainer.is_global_zero:
            message = interrupted_message(watch.name(), built.trainer.global_step, built.last_snapshot(), argv)
            print(f"error: {message}", file=sys.stderr, flush=True)
        return watch.status
    except E.WriteError as error:
        last = built.last_snapshot()
        kept = f"the last good snapshot {display(last)} is kept" if last else "no snapshot was written yet"
        raise UsageError(f"{error}; {kept}.") from error
    except BaseException as error:
        if is_out_of_memory(error):
            raise UsageError(
                f"out of memory on {built.trainer.strategy.root_device} at iteration {built.trainer.global_step}: "
                "choose a smaller -b (or a smaller model)."
            ) from error
        raise
    finally:
        built.close(failed)
    return 0


ERRORS = (UsageError, DataError, WeightsError, E.NonNumberError, ResumeError, FolderInUseError, E.SnapshotError)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``scripts/train.py``: returns the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    escape_undecodable_output()
    # Past ``ulimit -f`` a write should fail with EFBIG (and name its file), not kill the process.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    watch = InterruptWatch()
    watch.install()
    args = build_parser().parse_args(argv)
    keep_freed_memory()
    try:
        return run(args, watch, argv)
    except (KeyboardInterrupt, RunInterrupted):
        if watch.signum is None:
            raise
        print(f"error: {interrupted_message(watch.name(), 0, None, argv)}", file=sys.stderr, flush=True)
        return watch.status
    except ERRORS as error:
        if args.debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Exception as error:
        message = distributed_error_message(error)
        if message is None or args.debug:
            raise
        print(f"error: {message}", file=sys.stderr)
        return 2
