"""Chainer 7.8.1 reference: the same LeNet/MLP, data, split and flags as ``scripts/train.py``, trained by Chainer.

Written the way Chainer's own ``examples/mnist/train_mnist.py`` is (``L.Classifier``, ``SerialIterator``,
``StandardUpdater``, ``Trainer`` and its extensions), so its ``log`` is Chainer's own LogReport output to compare
with the Lightning port: ``python scripts/compare.py LIGHTNING_OUT CHAINER_OUT``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from mnist_lightning.allocator import keep_freed_memory
from mnist_lightning.arguments import OneLineParser, add_training_flags, positive_int
from mnist_lightning.chainer_compat import import_chainer
from mnist_lightning.datasets import DATASETS, get_dataset
from mnist_lightning.idx import DataError
from mnist_lightning.split import split_indices
from mnist_lightning.weights import WeightsError, read_arrays, write_arrays


def _import_chainer_or_exit() -> Any:
    """Chainer, or the one-sentence install hint on stderr and exit status 1 when it is not installed."""
    try:
        return import_chainer()
    except ImportError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1) from None


chainer = _import_chainer_or_exit()
F = chainer.functions
L = chainer.links
training = chainer.training
extensions = chainer.training.extensions

#: Validation batch size, as ImageDataModule's: equal batches of MNIST's 12,000 (or 10,000 test) images, so
#: Evaluator's mean of batch means is exact.
VAL_BATCH_SIZE = 1000

#: Our optimizer names -> (Chainer class, its learning-rate argument or None); Chainer's defaults are used as they
#: are, and ``mnist_lightning.classifier.OPTIMIZERS`` gives torch the same values.
OPTIMIZERS: dict[str, tuple[str, str | None]] = {
    "adam": ("Adam", "alpha"),
    "chainer_adam": ("Adam", "alpha"),
    "sgd": ("SGD", "lr"),
    "momentum_sgd": ("MomentumSGD", "lr"),
    "adadelta": ("AdaDelta", None),
    "adagrad": ("AdaGrad", "lr"),
    "rmsprop": ("RMSprop", "lr"),
    "adamw": ("AdamW", "alpha"),
}


class UsageError(Exception):
    """A flag, a path or a snapshot that cannot be used; the message is one sentence for the user."""


class LeNet(chainer.Chain):
    """LeNet as ``mnist_lightning.models.LeNet``: two conv/ReLU/max-pool blocks, then flat -> 120 -> 64 -> n_classes.

    Args:
        input_shape: (C, H, W) of one example; the first convolution takes C channels.
        n_classes: the number of logits.
    """

    def __init__(self, input_shape: tuple[int, int, int] = (1, 28, 28), n_classes: int = 10) -> None:
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.n_classes = n_classes
        channels, height, width = self.input_shape
        flat = 16 * ((((height - 4) // 2) - 4) // 2) * ((((width - 4) // 2) - 4) // 2)
        with self.init_scope():
            self.conv1 = L.Convolution2D(channels, 6, 5)
            self.conv2 = L.Convolution2D(6, 16, 5)
            self.fc3 = L.Linear(flat, 120)
            self.fc4 = L.Linear(120, 64)
            self.fc5 = L.Linear(64, n_classes)

    def layers(self) -> list[Any]:
        """The links with parameters in forward order: the weights file's layer order."""
        return [self.conv1, self.conv2, self.fc3, self.fc4, self.fc5]

    def forward(self, x: Any) -> Any:
        """Logits of a (N, C, H, W) batch."""
        h = F.max_pooling_2d(F.relu(self.conv1(x)), 2)
        h = F.max_pooling_2d(F.relu(self.conv2(h)), 2)
        h = F.relu(self.fc3(h))
        h = F.relu(self.fc4(h))
        return self.fc5(h)


class MLP(chainer.Chain):
    """Chainer's MNIST example MLP, C*H*W -> n_units -> n_units -> n_classes with ReLU (Linear flattens its input).

    Args:
        n_units: the width of both hidden layers.
        input_shape: (C, H, W) of one example.
        n_classes: the number of logits.
    """

    def __init__(
        self, n_units: int = 100, input_shape: tuple[int, int, int] = (1, 28, 28), n_classes: int = 10
    ) -> None:
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.n_classes = n_classes
        channels, height, width = self.input_shape
        with self.init_scope():
            self.l1 = L.Linear(channels * height * width, n_units)
            self.l2 = L.Linear(n_units, n_units)
            self.l3 = L.Linear(n_units, n_classes)

    def layers(self) -> list[Any]:
        """The links with parameters in forward order: the weights file's layer order."""
        return [self.l1, self.l2, self.l3]

    def forward(self, x: Any) -> Any:
        """Logits of a (N, C, H, W) batch; the first Linear flattens it."""
        h1 = F.relu(self.l1(x))
        h2 = F.relu(self.l2(h1))
        return self.l3(h2)


#: The models this reference has in Chainer: ``--model`` chooses from these names, which are names of
#: ``mnist_lightning.models.MODELS`` too, so that the two scripts can start from one weights file.
MODELS: dict[str, type[LeNet] | type[MLP]] = {"lenet": LeNet, "mlp": MLP}


def build_predictor(
    name: str, n_units: int = 100, input_shape: tuple[int, int, int] = (1, 28, 28), n_classes: int = 10
) -> LeNet | MLP:
    """The Chainer predictor called ``name``, initialised by Chainer's defaults (LeCun normal W, zero b).

    Args:
        name: a key of :data:`MODELS`.
        n_units: the MLP's hidden width.
        input_shape: (C, H, W) of one example.
        n_classes: the number of logits.
    """
    if name == "lenet":
        return LeNet(input_shape, n_classes)
    if name == "mlp":
        return MLP(n_units, input_shape, n_classes)
    raise UsageError(f"unknown model {name!r}: choose one of {', '.join(MODELS)}.")


def _shapes(predictor: LeNet | MLP) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """The (W shape, b shape) of each of the predictor's links, in the weights file's order."""
    return [(tuple(link.W.shape), tuple(link.b.shape)) for link in predictor.layers()]


def save_weights(predictor: LeNet | MLP, path: str | os.PathLike, model: str, n_units: int) -> None:
    """Write the predictor's parameters to the framework-neutral ``.npz`` that ``scripts/train.py`` reads.

    Args:
        predictor: the Chainer predictor whose links are saved.
        path: the ``.npz`` to write.
        model: its name, recorded in the file.
        n_units: its hidden width, recorded in the file.
    """
    to_cpu = chainer.backends.cuda.to_cpu
    layers = [(to_cpu(link.W.array), to_cpu(link.b.array)) for link in predictor.layers()]
    write_arrays(path, model, n_units, layers, input_shape=predictor.input_shape, n_classes=predictor.n_classes)


def load_weights(predictor: LeNet | MLP, path: str | os.PathLike, model: str, n_units: int) -> None:
    """Copy the weights of a framework-neutral ``.npz`` (e.g. from ``scripts/train.py``) into the predictor.

    Args:
        predictor: the Chainer predictor to fill; its links' shapes are what the file must hold.
        path: the ``.npz`` to read.
        model: its name.
        n_units: its hidden width.
    """
    arrays = read_arrays(
        path,
        model,
        n_units,
        input_shape=predictor.input_shape,
        n_classes=predictor.n_classes,
        shapes=_shapes(predictor),
    )
    for link, (w, b) in zip(predictor.layers(), arrays, strict=True):
        link.W.array[...] = link.xp.asarray(w)
        link.b.array[...] = link.xp.asarray(b)


def load_mnist_arrays(
    data_dir: str | os.PathLike,
    seed: int = 0,
    val_ratio: float = 0.2,
    n_train: int | None = None,
    n_val: int | None = None,
    normalize: bool = False,
    dataset: str = "mnist",
    validation: str = "split",
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((x, t) train, (x, t) validation): x float32 (N, C, H, W) = uint8 / 255, t int32; the DataModule's split.

    Args:
        data_dir: the folder holding the dataset's files.
        seed: seed of the split.
        val_ratio: the share of the training set that validates with ``validation="split"``.
        n_train: keep only the first examples of the training part (smoke runs); None keeps them all.
        n_val: the same for the validation part.
        normalize: then subtract the dataset's per-channel mean and divide by its standard deviation, in float32
            as the DataModule does.
        dataset: a name in ``mnist_lightning.datasets.DATASETS``.
        validation: ``split`` (a seeded part of the training set validates) or ``test`` (all of it trains and
            the test set validates, as ``chainer.datasets.get_mnist()`` gives Chainer's example).
    """
    info = get_dataset(dataset)
    images, labels = info.read(data_dir, "train")
    if validation == "test":
        val_images, val_labels = info.read(data_dir, "test")
        train_idx, val_idx = np.arange(len(labels)), np.arange(len(val_labels))
    else:
        val_images, val_labels = images, labels
        train_idx, val_idx = split_indices(len(labels), val_ratio, seed)
    mean = np.asarray(info.mean, dtype=np.float32).reshape(-1, 1, 1)
    std = np.asarray(info.std, dtype=np.float32).reshape(-1, 1, 1)

    def part(source: np.ndarray, targets: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixels scaled as the DataModule scales them (float32 division by 255) and int32 labels."""
        x = source[idx].astype(np.float32) / np.float32(255.0)
        if normalize:
            x = (x - mean) / std
        return x, targets[idx].astype(np.int32)

    return part(images, labels, train_idx[:n_train]), part(val_images, val_labels, val_idx[:n_val])


def get_mnist_split(
    data_dir: str | os.PathLike,
    seed: int = 0,
    n_train: int | None = None,
    n_val: int | None = None,
    normalize: bool = False,
    dataset: str = "mnist",
    validation: str = "split",
) -> tuple[chainer.datasets.TupleDataset, chainer.datasets.TupleDataset]:
    """The arrays of :func:`load_mnist_arrays` as Chainer's (train, validation) TupleDatasets.

    Args:
        data_dir: the folder holding the dataset's files.
        seed: seed of the split.
        n_train: keep only the first training examples; None keeps them all.
        n_val: keep only the first validation examples; None keeps them all.
        normalize: shift and scale the pixels by the dataset's mean and standard deviation.
        dataset: a name in ``mnist_lightning.datasets.DATASETS``.
        validation: ``split`` or ``test`` (see :func:`load_mnist_arrays`).
    """
    train, val = load_mnist_arrays(
        data_dir,
        seed,
        n_train=n_train,
        n_val=n_val,
        normalize=normalize,
        dataset=dataset,
        validation=validation,
    )
    return chainer.datasets.TupleDataset(*train), chainer.datasets.TupleDataset(*val)


def make_optimizer(name: str, lr: float | None = None) -> chainer.Optimizer:
    """Chainer's optimizer for our name ``name`` with Chainer's defaults; ``lr`` sets lr (Adam's alpha)."""
    if name not in OPTIMIZERS:
        raise UsageError(f"unknown optimizer {name!r}: choose one of {', '.join(OPTIMIZERS)}.")
    cls_name, lr_name = OPTIMIZERS[name]
    kwargs: dict[str, float] = {}
    if lr is not None:
        if lr_name is None:
            raise UsageError(f"--lr cannot be used with --optimizer {name}: Chainer's {cls_name} has no learning rate.")
        kwargs[lr_name] = lr
    return getattr(chainer.optimizers, cls_name)(**kwargs)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: ``scripts/train.py``'s flags where they mean the same, plus Chainer's ``--device``."""
    p = OneLineParser(
        prog="train_chainer.py",
        description="Chainer reference: train LeNet or an MLP on MNIST, Fashion-MNIST or KMNIST with Chainer 7.8.1.",
    )
    add_training_flags(p, MODELS, OPTIMIZERS, DATASETS)
    p.add_argument("--out", "-o", default="result", help="output folder (default: result)")
    p.add_argument("--resume", "-r", default=None, metavar="PATH", help="resume from this trainer snapshot")
    p.add_argument(
        "--device",
        "-d",
        default="-1",
        help="Chainer device: -1 or @numpy for the CPU, 0 or @cupy:0 for a GPU through CuPy (default: -1)",
    )
    p.add_argument("--init-from", default=None, metavar="PATH", help="initial weights from this .npz (see weights.py)")
    p.add_argument("--export-init", default=None, metavar="PATH", help="write the initial weights to this .npz")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no ProgressBar (logs, CI)")
    p.add_argument("--noplot", dest="plot", action="store_false", help="disable PlotReport extension")
    p.add_argument(
        "--limit-train-batches",
        type=positive_int,
        default=None,
        metavar="N",
        help="smoke runs: train on the first N*batchsize examples of the split (an epoch of N iterations)",
    )
    p.add_argument(
        "--limit-val-batches",
        type=positive_int,
        default=None,
        metavar="N",
        help=f"smoke runs: validate on the first N*{VAL_BATCH_SIZE} validation examples",
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    return p


def _get_device(spec: str) -> Any:
    """Chainer's device for ``--device``, or UsageError in one sentence (e.g. a GPU asked for without CuPy)."""
    try:
        return chainer.get_device(spec)
    except Exception as error:
        reason = str(error).splitlines()[-1].strip() or type(error).__name__
        raise UsageError(
            f"--device {spec} cannot be used ({reason}): use -1 or @numpy for the CPU, or install CuPy for a GPU."
        ) from None


def _check_out(out: str) -> None:
    """Refuse an ``--out`` that is an existing file before anything is trained."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder.")


def build_trainer(args: argparse.Namespace) -> chainer.training.Trainer:
    """Everything of Chainer's MNIST example up to ``trainer.run()``: model, optimizer, iterators, extensions."""
    _check_out(args.out)
    device = _get_device(args.device)
    if args.resume is not None and not os.path.isfile(args.resume):
        raise UsageError(f"--resume {args.resume}: no such file.")
    np.random.seed(args.seed)
    n_train = None if args.limit_train_batches is None else args.limit_train_batches * args.batchsize
    n_val = None if args.limit_val_batches is None else args.limit_val_batches * VAL_BATCH_SIZE
    train, val = get_mnist_split(
        args.data_dir,
        args.seed,
        n_train=n_train,
        n_val=n_val,
        normalize=args.normalize,
        dataset=args.dataset,
        validation=args.validation,
    )

    info = get_dataset(args.dataset)
    predictor = build_predictor(args.model, args.unit, info.shape, info.classes)
    if args.init_from is not None:
        load_weights(predictor, args.init_from, args.model, args.unit)
    if args.export_init is not None:
        save_weights(predictor, args.export_init, args.model, args.unit)
    model = L.Classifier(predictor)
    model.to_device(device)
    device.use()

    optimizer = make_optimizer(args.optimizer, args.lr)
    optimizer.setup(model)

    order_sampler = chainer.iterators.ShuffleOrderSampler(np.random.RandomState(args.seed))
    train_iter = chainer.iterators.SerialIterator(train, args.batchsize, order_sampler=order_sampler)
    val_iter = chainer.iterators.SerialIterator(val, VAL_BATCH_SIZE, repeat=False, shuffle=False)

    updater = training.updaters.StandardUpdater(train_iter, optimizer, device=device)
    trainer = training.Trainer(updater, (args.epoch, "epoch"), out=args.out)

    trainer.extend(extensions.Evaluator(val_iter, model, device=device), call_before_training=True)
    trainer.extend(extensions.snapshot(), trigger=(1, "epoch"))
    trainer.extend(extensions.LogReport(), call_before_training=True)
    if args.plot and extensions.PlotReport.available():
        trainer.extend(
            extensions.PlotReport(["main/loss", "validation/main/loss"], "epoch", filename="loss.png"),
            call_before_training=True,
        )
        trainer.extend(
            extensions.PlotReport(["main/accuracy", "validation/main/accuracy"], "epoch", filename="accuracy.png"),
            call_before_training=True,
        )
    trainer.extend(
        extensions.PrintReport(
            ["epoch", "main/loss", "validation/main/loss", "main/accuracy", "validation/main/accuracy", "elapsed_time"]
        ),
        call_before_training=True,
    )
    if args.progress:
        trainer.extend(extensions.ProgressBar())

    if args.resume is not None:
        try:
            chainer.serializers.load_npz(args.resume, trainer)
        except KeyError as error:
            raise UsageError(
                f"--resume {args.resume} does not fit this trainer (it has no {error}): resume with the --model, "
                "--unit, --optimizer and --noplot of the run that wrote it."
            ) from None
        except Exception:
            raise UsageError(f"--resume {args.resume} is not a Chainer trainer snapshot.") from None
    return trainer


def run(args: argparse.Namespace) -> None:
    """Print the settings as Chainer's example does, then train (validating every epoch)."""
    trainer = build_trainer(args)
    print(f"Device: {trainer.updater.device}")
    print(f"# Model: {args.model}")
    if args.model == "mlp":
        print(f"# unit: {args.unit}")
    print(f"# Minibatch-size: {args.batchsize}")
    print(f"# epoch: {args.epoch}")
    print(f"# out: {args.out}")
    print("", flush=True)
    trainer.run()


def main(argv: list[str] | None = None) -> int:
    """Entry point: returns the exit status (2 with one sentence on stderr for unusable input)."""
    args = build_parser().parse_args(argv)
    keep_freed_memory()  # as scripts/train.py does, so that the two compare like for like
    try:
        run(args)
    except (UsageError, DataError, WeightsError) as error:
        if args.debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
