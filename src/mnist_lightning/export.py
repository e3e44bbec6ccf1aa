"""The export command: a snapshot or model file -> the predictor as an ONNX or ``.pt2`` file, and its preprocessing.

``scripts/export.py``, ``python -m mnist_lightning export`` and ``mnist-lightning-export`` run :func:`main`. The
model and its preprocessing come from the file (``trained.load_trained``). The exported model takes the
preprocessed float32 batch (N, C, H, W), N dynamic, and returns the logits (N, classes); how to make that batch
from uint8 pixels is written beside it as JSON, in ``FILE.json`` (:func:`preprocessing_path`). Both files are
written atomically. ``--check`` runs the written file (onnxruntime, or ``torch.export.load``) on the whole test
split and compares it with PyTorch: the same predicted class for every image, logits within
:data:`LOGIT_TOLERANCE`.

Exit status: 0; 1 when ``--check`` finds a difference; 2 for bad input or a missing package, in one sentence on
stderr (``--debug`` shows the traceback instead), with no file written.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lightning_chainer import quiet_console
from lightning_chainer.files import WriteError, atomic_write
from mnist_lightning.arguments import OneLineParser, positive_int
from mnist_lightning.checks import UsageError, check_new_file, display, escape_undecodable_output
from mnist_lightning.datasets import get_dataset
from mnist_lightning.export_formats import (
    EXPORTERS,
    FORMATS,
    INPUT_NAME,
    OUTPUT_NAME,
    RUNNERS,
    RUNTIMES,
    ExportError,
    require_packages,
)
from mnist_lightning.idx import DataError
from mnist_lightning.trained import TrainedModel, TrainedModelError, load_trained

#: The largest absolute difference of a logit between the exported file and PyTorch that ``--check`` accepts.
LOGIT_TOLERANCE = 1e-4
ERRORS = (UsageError, TrainedModelError, DataError, WriteError, ExportError)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``scripts/export.py``."""
    p = OneLineParser(
        prog="export.py",
        description="Export a trained model (a snapshot of train.py or a model file such as model_best) to ONNX or "
        "torch.export's .pt2. The file takes the preprocessed float32 batch (N, C, H, W), N dynamic, and returns "
        "the logits; FILE.json beside it says how to make the batch from pixels.",
    )
    p.add_argument("snapshot", metavar="SNAPSHOT", help="a snapshot_iter_* of train.py, or a model file (model_best)")
    p.add_argument("--format", required=True, choices=FORMATS, help="onnx (torch.onnx, dynamo) or pt2 (torch.export)")
    p.add_argument("--output", "-o", required=True, metavar="FILE", help="the file to write (and FILE.json)")
    p.add_argument(
        "--check",
        action="store_true",
        help=f"run the written file on the whole test split and compare with PyTorch (logits within "
        f"{LOGIT_TOLERANCE:g}, the same classes)",
    )
    p.add_argument(
        "--data-dir",
        default=os.environ.get("DATA_DIR") or os.environ.get("MNIST_DATA_DIR") or "data",
        help="the test split's data folder for --check (default: $DATA_DIR, $MNIST_DATA_DIR or data/)",
    )
    p.add_argument("--batch-size", "-b", type=positive_int, default=1000, help="--check's batch (default: 1000)")
    p.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    return p


def preprocessing_path(output: str) -> str:
    """Where the preprocessing JSON of the exported ``output`` goes: ``output + '.json'``, beside it.

    Args:
        output: the exported file's path.
    """
    return f"{output}.json"


def preprocessing_json(trained: TrainedModel, fmt: str, output: str) -> dict[str, Any]:
    """What a user of the exported file needs to feed it: input layout, pixel scaling, normalisation, classes.

    Args:
        trained: the model that was exported.
        fmt: its format.
        output: the exported file's path (named by its base name).
    """
    pre = trained.preprocessing
    names = {"input_name": INPUT_NAME, "output_name": OUTPUT_NAME} if fmt == "onnx" else {}
    return {
        "file": os.path.basename(output),
        "format": fmt,
        "model": trained.model.hparams.predictor,
        "dataset": pre.dataset,
        **names,
        "input_shape": ["N", *pre.input_shape],
        "input_dtype": "float32",
        "output_shape": ["N", len(pre.class_names)],
        "pixels": "x = uint8 / 255, then (x - mean[c]) / std[c] per channel c when mean and std are not null",
        "scale": 1 / 255,
        "mean": None if pre.mean is None else list(pre.mean),
        "std": None if pre.std is None else list(pre.std),
        "class_names": list(pre.class_names),
    }


def export(trained: TrainedModel, fmt: str, output: str) -> str:
    """Write ``trained``'s predictor as ``fmt`` to ``output`` and its preprocessing beside it; returns the JSON's path.

    Args:
        trained: the model to export (eval mode, on the CPU).
        fmt: one of :data:`FORMATS`.
        output: the file to write.
    """
    data = EXPORTERS[fmt](trained.predictor.cpu().eval(), trained.preprocessing.input_shape)
    sidecar = preprocessing_path(output)
    atomic_write(output, data)
    atomic_write(sidecar, json.dumps(preprocessing_json(trained, fmt, output), indent=2) + "\n")
    return sidecar


@dataclass(frozen=True)
class CheckResult:
    """The exported file against PyTorch on a labelled split: classes, the largest logit difference, accuracies."""

    images: int
    same_class: int
    max_difference: float
    torch_accuracy: float
    export_accuracy: float

    @property
    def passed(self) -> bool:
        """The same class for every image and every logit within :data:`LOGIT_TOLERANCE`."""
        return self.same_class == self.images and self.max_difference <= LOGIT_TOLERANCE


def check(
    trained: TrainedModel, fmt: str, output: str, images: np.ndarray, labels: np.ndarray, batch_size: int = 1000
) -> CheckResult:
    """Run the file ``output`` on labelled uint8 images and compare it with PyTorch's predictor.

    Args:
        trained: the model that was exported.
        fmt: the file's format.
        output: the exported file.
        images: uint8 pixels (N, C, H, W), e.g. the whole test split.
        labels: their int64 labels (N,).
        batch_size: images per batch.
    """
    run_export = RUNNERS[fmt](output)
    predictor = trained.predictor.cpu().eval()
    same, worst, right_torch, right_export = 0, 0.0, 0, 0
    labels_tensor = torch.from_numpy(labels)
    for start in range(0, len(labels), batch_size):
        x = trained.preprocessing(torch.from_numpy(images[start : start + batch_size].copy()))
        t = labels_tensor[start : start + batch_size]
        with torch.no_grad():
            expected = predictor(x)
        got = run_export(x)
        same += int((got.argmax(1) == expected.argmax(1)).sum())
        worst = max(worst, float((got - expected).abs().max()))
        right_torch += int((expected.argmax(1) == t).sum())
        right_export += int((got.argmax(1) == t).sum())
    n = len(labels)
    return CheckResult(n, same, worst, right_torch / max(n, 1), right_export / max(n, 1))


def check_line(result: CheckResult, fmt: str, dataset: str) -> str:
    """The check's one line of output."""
    verdict = "passed" if result.passed else "FAILED"
    return (
        f"check {verdict}: {RUNTIMES[fmt]} against PyTorch on the {result.images:,} {dataset} test images: the same "
        f"class for {result.same_class:,}, largest logit difference {result.max_difference:.1e} (at most "
        f"{LOGIT_TOLERANCE:.0e}), accuracy {result.export_accuracy:.4f} (PyTorch {result.torch_accuracy:.4f})."
    )


def run(args: argparse.Namespace) -> int:
    """Export (and check) as the flags say; returns the exit status (1 when the check finds a difference).

    Args:
        args: the parsed flags.
    """
    require_packages(args.format, args.check)
    check_new_file(args.output, "--output")
    sidecar = preprocessing_path(args.output)
    if os.path.isdir(sidecar):
        raise UsageError(f"--output {args.output}: {sidecar} is a folder, and the preprocessing JSON goes there.")
    trained = load_trained(args.snapshot)
    # The test split is read before anything is written: missing data files end the command with no file.
    test = get_dataset(trained.preprocessing.dataset).read(args.data_dir, "test") if args.check else None
    export(trained, args.format, args.output)
    print(f"wrote {display(args.output)} ({args.format}) and its preprocessing {display(sidecar)}", flush=True)
    if test is None:
        return 0
    result = check(trained, args.format, args.output, *test, batch_size=args.batch_size)
    print(check_line(result, args.format, trained.preprocessing.dataset), flush=True)
    return 0 if result.passed else 1


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``scripts/export.py``: returns the exit status.

    Args:
        argv: the arguments after the program's name (default: ``sys.argv[1:]``).
    """
    argv = sys.argv[1:] if argv is None else argv
    escape_undecodable_output()
    args = build_parser().parse_args(argv)
    quiet_console()
    try:
        return run(args)
    except ERRORS as error:
        if args.debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2
