"""What the command lines share: argparse types, the training flags, and a parser whose errors are one line.

``scripts/train.py``, ``scripts/train_chainer.py`` and ``scripts/benchmark.py`` use it; it imports neither torch
nor Chainer (the standard library and ``split.py``'s NumPy only), so the Chainer script stays free of torch.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Sequence
from typing import NoReturn

from mnist_lightning.split import VALIDATIONS


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad flag ends in one line on stderr (and exit status 2) rather than the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see {self.prog} --help).\n")


def positive_int(text: str) -> int:
    """argparse type for counts: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type for counts that may be zero (``--num-workers``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def positive_float(text: str) -> float:
    """argparse type for rates: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a finite positive number, got {text}")
    return value


#: NumPy's and Lightning's seeds are unsigned 32-bit integers.
MAX_SEED = 2**32 - 1


def seed_value(text: str) -> int:
    """argparse type for ``--seed``: an integer in [0, 2**32 - 1]."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed, got {text!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"a seed must be between 0 and {MAX_SEED}, got {value}")
    return value


def add_training_flags(
    parser: argparse.ArgumentParser, models: Sequence[str], optimizers: Sequence[str], datasets: Sequence[str]
) -> None:
    """The flags both training scripts take with the same meaning and defaults (Chainer's MNIST example's).

    Args:
        parser: the parser to add them to.
        models: the ``--model`` choices.
        optimizers: the ``--optimizer`` choices.
        datasets: the ``--dataset`` choices.
    """
    parser.add_argument("--model", "-m", choices=tuple(models), default="lenet", help="predictor (default: lenet)")
    parser.add_argument("--batchsize", "-b", type=positive_int, default=128, help="minibatch size (default: 128)")
    parser.add_argument("--epoch", "-e", type=positive_int, default=10, help="epochs to train (default: 10)")
    parser.add_argument("--unit", "-u", type=positive_int, default=100, help="MLP hidden units (default: 100)")
    parser.add_argument("--optimizer", choices=tuple(optimizers), default="adam", help="optimizer (default: adam)")
    parser.add_argument(
        "--lr", type=positive_float, default=None, help="learning rate (default: Chainer's for the optimizer)"
    )
    parser.add_argument(
        "--seed", type=seed_value, default=0, help="seed of the split, the shuffle and the weights (default: 0)"
    )
    parser.add_argument(
        "--normalize",
        action="store_true",
        help="normalise pixels by the dataset's mean and standard deviation (default: scale them to [0, 1])",
    )
    parser.add_argument(
        "--dataset",
        choices=tuple(datasets),
        default="mnist",
        help="image set to train on (default: mnist); its files in torchvision's layout, e.g. FashionMNIST/raw/",
    )
    parser.add_argument(
        "--data-dir",
        default=os.environ.get("DATA_DIR") or os.environ.get("MNIST_DATA_DIR") or "data",
        help="folder holding the dataset's folder, e.g. MNIST/raw/ (default: $DATA_DIR, $MNIST_DATA_DIR or data/)",
    )
    parser.add_argument(
        "--validation",
        choices=VALIDATIONS,
        default="split",
        help="split: validate on a seeded 20%% of the training set (default); test: train on all of it and "
        "validate on the test set, as Chainer's MNIST example does (the final test then scores that same set)",
    )
