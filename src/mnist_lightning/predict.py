"""The prediction command: a snapshot or model file -> the class and probability of each image, with the accuracy.

``scripts/predict.py``, ``python -m mnist_lightning predict`` and ``mnist-lightning-predict`` run :func:`main`. The
model, its data set and its preprocessing come from the file (``trained.py``); the examples from IDX files, image
files and folders (``inputs.py``), or the data set's test split; the batches go through ``trainer.predict`` and
``Classifier.predict_step``, fed by the same loader code as the training run's test.

Exit status: 0; 1 when files of a folder were skipped (each named on one line of stderr, the others classified);
2 for bad input, in one sentence on stderr (``--debug`` shows the traceback instead), with no file written.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

import lightning as L
import torch

from lightning_chainer import quiet_console
from lightning_chainer.files import WriteError
from mnist_lightning.arguments import OneLineParser, positive_int
from mnist_lightning.checks import (
    UsageError,
    check_accelerator,
    check_new_file,
    display,
    escape_undecodable_output,
    is_out_of_memory,
)
from mnist_lightning.data import EpochShuffle, ImageDataModule, TensorLoader
from mnist_lightning.idx import DataError
from mnist_lightning.images import ImageError
from mnist_lightning.inputs import InputError, read_inputs
from mnist_lightning.prediction_output import (
    OUTPUT_FORMATS,
    Predictions,
    accuracy_line,
    table,
    write_confusion_matrix,
    write_predictions,
)
from mnist_lightning.trained import TrainedModel, TrainedModelError, load_trained

IMAGE_HELP = """\
Image files (PNG, JPEG, ... of any size) are converted as MNIST's digits were made: grayscale, the digit (white on
black) fitted into a 20x20 box keeping its aspect ratio, and centred by its centre of mass in the 28x28 field.
Give --invert for black-on-white scans. An IDX images file (...-images-idx3-ubyte) brings its labels from the
...-labels-idx1-ubyte file beside it. A folder's files are read in name order; its bad files are skipped and named
on stderr, and the exit status is then 1. Details: docs/predict.md.
"""

ERRORS = (UsageError, DataError, InputError, ImageError, TrainedModelError, WriteError)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``scripts/predict.py``."""
    p = OneLineParser(
        prog="predict.py",
        description="Classify images with a trained model: a snapshot of train.py or a model file. The data set, "
        "input shape, classes and pixel normalisation are read from the file.",
        epilog=IMAGE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("snapshot", metavar="SNAPSHOT", help="a snapshot_iter_* of train.py, or a model file")
    p.add_argument(
        "inputs",
        metavar="INPUT",
        nargs="*",
        help="IDX images files, image files or folders of them (default: the test split of the model's data set)",
    )
    p.add_argument(
        "--data-dir",
        metavar="DIR",
        default=os.environ.get("DATA_DIR") or os.environ.get("MNIST_DATA_DIR") or "data",
        help="the test split's data folder, as train.py finds it (default: $DATA_DIR, $MNIST_DATA_DIR or data/)",
    )
    p.add_argument("--output", metavar="FILE", help="write the predictions to FILE.csv or FILE.json, not stdout")
    p.add_argument("--confusion-matrix", metavar="FILE.png", help="draw the confusion matrix of the labelled inputs")
    p.add_argument("--invert", action="store_true", help="image files hold dark digits on a light background")
    p.add_argument(
        "--batch-size", "-b", type=positive_int, default=1000, metavar="N", help="examples per batch (default: 1000)"
    )
    p.add_argument(
        "--accelerator", choices=("cpu", "gpu", "auto"), default="auto", help="where to predict (default: auto)"
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    return p


def check_outputs(args: argparse.Namespace) -> None:
    """Refuse output paths that could not be written, before anything is read or predicted.

    Args:
        args: the parsed flags.
    """
    if args.output is not None:
        if os.path.splitext(args.output)[1].lower() not in OUTPUT_FORMATS:
            raise UsageError(f"--output {args.output}: give a file name ending in .csv or .json.")
        check_new_file(args.output, "--output")
    if args.confusion_matrix is not None:
        if os.path.splitext(args.confusion_matrix)[1].lower() != ".png":
            raise UsageError(f"--confusion-matrix {args.confusion_matrix}: give a file name ending in .png.")
        check_new_file(args.confusion_matrix, "--confusion-matrix")


def _trainer(accelerator: str) -> L.Trainer:
    """One device, nothing written: prediction needs no logger, checkpoint or progress bar."""
    return L.Trainer(
        accelerator=accelerator,
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )


def _collect(outputs: list[dict[str, torch.Tensor]], names: list[str], trained: TrainedModel) -> Predictions:
    """``trainer.predict``'s per-batch outputs (on the CPU) -> one :class:`Predictions`."""
    predicted = torch.cat([o["predictions"] for o in outputs])
    probabilities = torch.cat([o["probabilities"] for o in outputs]).gather(1, predicted[:, None])[:, 0]
    labels = torch.cat([o["labels"] for o in outputs]).long()
    return Predictions(
        names, predicted.numpy(), probabilities.double().numpy(), labels.numpy(), trained.preprocessing.class_names
    )


def predict_test_split(trained: TrainedModel, args: argparse.Namespace, trainer: L.Trainer) -> Predictions:
    """The test split of the model's data set, through the DataModule's ``predict_dataloader``.

    Args:
        trained: the model and its preprocessing.
        args: the parsed flags (``--data-dir``, ``--batch-size``).
        trainer: the trainer to predict with.
    """
    pre = trained.preprocessing
    datamodule = ImageDataModule(
        args.data_dir, dataset=pre.dataset, test_batch_size=args.batch_size, normalize=pre.normalize
    )
    datamodule.prepare_data()
    outputs = trainer.predict(trained.model, datamodule=datamodule)
    n = sum(len(o["predictions"]) for o in outputs)
    return _collect(outputs, [f"{pre.dataset} test[{i}]" for i in range(n)], trained)


def predict_inputs(
    trained: TrainedModel, args: argparse.Namespace, trainer: L.Trainer
) -> tuple[Predictions, list[str]]:
    """The examples of the INPUT paths, and one sentence per file of a folder that was skipped.

    Args:
        trained: the model and its preprocessing.
        args: the parsed flags (``inputs``, ``--invert``, ``--batch-size``, ``--confusion-matrix``).
        trainer: the trainer to predict with.
    """
    pre = trained.preprocessing
    examples = read_inputs(args.inputs, pre, args.invert)
    for sentence in examples.skipped:
        print(f"skipped: {sentence}", file=sys.stderr)
    images, labels = examples.arrays(pre.input_shape)
    if len(images) == 0:
        raise UsageError("none of the inputs could be read, so nothing was classified.")
    if args.confusion_matrix is not None and not (labels >= 0).any():
        raise UsageError(
            "--confusion-matrix needs labels, and none of the inputs has one (an IDX images file has them when its "
            "labels file lies beside it)."
        )
    # The uint8 images go to the device once; each batch is scaled there, by the training run's loader code.
    device = trainer.strategy.root_device
    loader = TensorLoader(
        torch.from_numpy(images).to(device),
        torch.from_numpy(labels).to(device),
        args.batch_size,
        EpochShuffle(len(labels), shuffle=False, even=False),
        mean=pre.mean,
        std=pre.std,
    )
    outputs = trainer.predict(trained.model, dataloaders=loader)
    return _collect(outputs, examples.names, trained), examples.skipped


def _describe(trained: TrainedModel) -> str:
    pre = trained.preprocessing
    pixels = "normalised by its mean and standard deviation" if pre.normalize else "scaled to [0, 1]"
    name = trained.model.hparams.predictor
    return f"# {trained.kind} {display(trained.path)}: {name} on {pre.dataset}, pixels {pixels}"


def report(predictions: Predictions, trained: TrainedModel, args: argparse.Namespace) -> None:
    """Print the table (or write ``--output``), the accuracy when there are labels, and ``--confusion-matrix``.

    Args:
        predictions: what was predicted.
        trained: the model it was predicted with.
        args: the parsed flags.
    """
    if args.output is None:
        print(_describe(trained))
        sys.stdout.write(table(predictions))
    else:
        write_predictions(args.output, predictions)
        print(f"wrote {len(predictions.names)} predictions to {display(args.output)}")
    if predictions.labelled.any():
        print(accuracy_line(predictions))
    if args.confusion_matrix is not None:
        title = f"{trained.model.hparams.predictor} on {trained.preprocessing.dataset}"
        write_confusion_matrix(args.confusion_matrix, predictions, title)
        print(f"wrote the confusion matrix to {display(args.confusion_matrix)}")
    sys.stdout.flush()


def run(args: argparse.Namespace) -> int:
    """Predict as the flags say; returns the exit status (1 when files of a folder were skipped).

    Args:
        args: the parsed flags.
    """
    check_accelerator(args.accelerator)
    check_outputs(args)
    trained = load_trained(args.snapshot)
    trainer = _trainer(args.accelerator)
    try:
        if args.inputs:
            predictions, skipped = predict_inputs(trained, args, trainer)
        else:
            predictions, skipped = predict_test_split(trained, args, trainer), []
    except (RuntimeError, MemoryError) as error:
        if is_out_of_memory(error) or isinstance(error, MemoryError):
            raise UsageError(
                f"out of memory on {trainer.strategy.root_device}: choose a smaller --batch-size."
            ) from None
        raise
    report(predictions, trained, args)
    return 1 if skipped else 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``scripts/predict.py``: returns the exit status.

    Args:
        argv: the arguments after the program's name (default: ``sys.argv[1:]``).
    """
    argv = sys.argv[1:] if argv is None else argv
    escape_undecodable_output()
    args = build_parser().parse_args(argv)
    quiet_console()  # Lightning's start-up lines (GPU available..., tips) are not predictions
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    try:
        return run(args)
    except ERRORS as error:
        if args.debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2
