"""How fast is the template, next to the ways one could train the same model on this machine?

Seven contenders do the same work per epoch (train on the 48,000 split with batch 128 and Adam at Chainer's
defaults, then evaluate the 12,000 validation images in batches of 1000):

    template         scripts/train.py as users run it: cli.build with every extension on, output in a temp folder
    compiled         the template with --compile (torch.compile of the predictor; compiling falls in the warm-up)
    no_extensions    the same Classifier, DataModule and Lightning Trainer without callbacks, logger or progress bar
    plain_lightning  a minimal LightningModule on torchvision's per-sample dataset (pipeline='torchvision')
    hand_loop        a first hand-written PyTorch loop: torchvision MNIST + ToTensor + DataLoader, then an eval loop
    chainer          Chainer 7.8.1's Trainer: StandardUpdater + Evaluator + LogReport, same model and split
    floor            the compute-only floor: the same model and optimizer over float tensors already in memory

Each contender runs in its own process (``--worker NAME``), which times its own epochs and reports its own
peak resident memory. The template, no_extensions and the floor keep freed memory for reuse as
``scripts/train.py`` does (``mnist_lightning.allocator``); plain_lightning, the hand loop and Chainer run with
glibc's defaults, as the code they stand for would. The processes of a round start together and then run in
lock-step, one epoch at a time: the driver lets one contender run an epoch while the others wait, then the next
(in an order that rotates every epoch). Epoch k of every contender thus runs within a minute of epoch k of every
other, so the host's drift hits all alike, and each ratio is the median of per-epoch ratios of epochs that ran
back to back.

The report also gives milliseconds per training step: each contender's epoch time over the steps of an epoch,
and the per-step overhead of the template and of no_extensions over the floor, and of the template over
no_extensions (the median of paired per-epoch differences over the steps of an epoch).

    python scripts/benchmark.py [--model lenet|mlp] [--epochs 3] [--repeats 1] [--device cpu|cuda]
                                [--threads N] [--data-dir DIR] [--only NAME[,NAME]] [--json PATH]
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from io import TextIOWrapper
from pathlib import Path
from typing import Any

from mnist_lightning.arguments import OneLineParser, positive_int

REPO = Path(__file__).resolve().parents[1]
CONTENDERS = ("template", "compiled", "no_extensions", "plain_lightning", "hand_loop", "chainer", "floor")
# scripts/train.py keeps freed memory for the next step (mnist_lightning.allocator); so do the contenders that
# measure the template against itself, so that their ratios show the extensions and Lightning, not malloc.
KEEPS_FREED_MEMORY = ("template", "compiled", "no_extensions", "floor")
WARMUP_EPOCHS = 1
TRAIN_BATCH = 128
EVAL_BATCH = 1000
N_UNITS = 100
SEED = 0


class Skip(Exception):
    """A contender that cannot run here (Chainer not installed, no CuPy for --device cuda); the row says why."""


# --------------------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------------------


def _contender_list(text: str) -> list[str]:
    """Comma-separated contender names, each checked against CONTENDERS, in the order given."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in CONTENDERS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown contender {', '.join(unknown) or repr(text)}: choose from {', '.join(CONTENDERS)}"
        )
    return list(dict.fromkeys(names))


def _default_data_dir() -> str:
    """``$MNIST_DATA_DIR``, else the shared data folder next to the repository."""
    return os.environ.get("MNIST_DATA_DIR") or str(REPO.parent / "shared" / "data")


def build_parser() -> argparse.ArgumentParser:
    """The benchmark's flags; ``--worker``, ``--result`` and ``--limit-batches`` are hidden (children, tests)."""
    p = OneLineParser(prog="benchmark.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=("lenet", "mlp"), default="lenet", help="predictor (default: lenet)")
    p.add_argument("--epochs", type=positive_int, default=3, help="timed epochs after 1 warm-up (default: 3)")
    p.add_argument("--repeats", type=positive_int, default=1, help="interleaved rounds (default: 1)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where to train (default: cpu)")
    p.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        help="torch/BLAS threads for every contender (default: all cores)",
    )
    p.add_argument("--data-dir", default=_default_data_dir(), help="folder holding MNIST/raw/ (default: %(default)s)")
    p.add_argument(
        "--only",
        type=_contender_list,
        default=list(CONTENDERS),
        metavar="NAME[,NAME]",
        help="run only these (default: all seven)",
    )
    p.add_argument("--json", default=None, metavar="PATH", help="also write the results as JSON to PATH")
    p.add_argument("--worker", choices=CONTENDERS, default=None, help=argparse.SUPPRESS)
    p.add_argument("--result", default=None, help=argparse.SUPPRESS)
    p.add_argument("--limit-batches", type=positive_int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--pace-fds", default=None, help=argparse.SUPPRESS)
    return p


def _no_pace() -> None:
    """Run the next epoch at once (a worker started by hand, outside the driver)."""


class Pacer:
    """A worker's end of the lock-step: before each epoch it tells the driver it is ready and waits for 'go'.

    Two inherited pipe descriptors: the worker reads one byte per epoch from ``go`` and writes one byte to
    ``ready`` when it is about to wait. When the driver closes ``go`` the pacer lets every later epoch run at once.
    """

    def __init__(self, fds: str) -> None:
        go, ready = (int(fd) for fd in fds.split(","))
        self._go: int | None = go
        self._ready = ready

    def __call__(self) -> None:
        if self._go is None:
            return
        os.write(self._ready, b"r")
        if not os.read(self._go, 1):
            self._go = None


@dataclass(frozen=True)
class Settings:
    """What every worker needs: the same model, epochs, device, threads, data and (for tests) batch limit."""

    model: str
    epochs: int
    device: str
    threads: int
    data_dir: str
    limit_batches: int | None = None
    pace: Callable[[], None] = field(default=_no_pace, compare=False)

    @property
    def total_epochs(self) -> int:
        """Warm-up plus timed epochs."""
        return WARMUP_EPOCHS + self.epochs

    def worker_argv(self) -> list[str]:
        """The flags that hand these settings to a ``--worker`` child."""
        argv = ["--model", self.model, "--epochs", str(self.epochs), "--device", self.device]
        argv += ["--threads", str(self.threads), "--data-dir", self.data_dir]
        if self.limit_batches is not None:
            argv += ["--limit-batches", str(self.limit_batches)]
        return argv


# --------------------------------------------------------------------------------------------------------------
# Shared pieces of the contenders
# --------------------------------------------------------------------------------------------------------------


def _torch_device(settings: Settings) -> Any:
    """The torch device the run's tensors live on."""
    import torch

    return torch.device("cuda" if settings.device == "cuda" else "cpu")


def _synchronize(settings: Settings) -> Callable[[], None]:
    """A function that waits for queued GPU work on cuda, and does nothing on cpu."""
    if settings.device == "cuda":
        import torch

        return torch.cuda.synchronize
    return lambda: None


def _split_indices(settings: Settings, n: int) -> tuple[Any, Any]:
    """The template's 80/20 split of the ``n`` training images (48,000 / 12,000), cut by ``--limit-batches``."""
    from mnist_lightning.split import split_indices

    train_idx, val_idx = split_indices(n, val_ratio=0.2, seed=SEED)
    if settings.limit_batches is not None:
        train_idx = train_idx[: settings.limit_batches * TRAIN_BATCH]
        val_idx = val_idx[: settings.limit_batches * EVAL_BATCH]
    return train_idx, val_idx


def _scaled_arrays(settings: Settings) -> tuple[Any, Any, Any, Any]:
    """(train images, train labels, val images, val labels) as NumPy float32 (N, 1, 28, 28) in [0, 1] and int64."""
    from mnist_lightning.datasets import MNIST_FILES

    images, labels = MNIST_FILES.load_split(settings.data_dir, train=True)
    train_idx, val_idx = _split_indices(settings, len(labels))

    def scaled(idx: Any) -> Any:
        return (images[idx].astype("float32") / 255.0).reshape(-1, 1, 28, 28)

    return scaled(train_idx), labels[train_idx], scaled(val_idx), labels[val_idx]


Spans = list[tuple[float, float]]  # (start, end) of every epoch on the perf_counter clock, warm-up included


class EpochClock:
    """Times epochs as (start, end) spans; ``start`` first waits for the driver's go, ``stop`` for queued GPU work."""

    def __init__(self, settings: Settings) -> None:
        self._pace, self._sync = settings.pace, _synchronize(settings)
        self.spans: Spans = []
        self._start: float | None = None

    def start(self) -> None:
        self._pace()
        self._start = time.perf_counter()

    def stop(self) -> None:
        if self._start is not None:
            self._sync()
            self.spans.append((self._start, time.perf_counter()))
            self._start = None

    def hold(self) -> None:
        """After the last epoch: wait until the driver releases this worker, so its teardown times nobody."""
        self._pace()


def _time_epochs(settings: Settings, one_epoch: Callable[[], float]) -> tuple[Spans, float]:
    """Run ``one_epoch`` (train then evaluate, returns accuracy) for every epoch; (epoch spans, last accuracy)."""
    clock, accuracy = EpochClock(settings), float("nan")
    for _ in range(settings.total_epochs):
        clock.start()
        accuracy = one_epoch()
        clock.stop()
    clock.hold()
    return clock.spans, accuracy


def _epoch_timer(settings: Settings) -> Any:
    """A Lightning callback timing each epoch from its start to its ``on_train_epoch_end``.

    Put last in the callback list, one span is one whole epoch: training, validation and every other callback's
    epoch-end work (snapshot, log, plots when due); what runs once when training ends (the final redraw of the
    plots) belongs to no epoch and is left out, as the hand loops leave out their own teardown.
    """
    from lightning.pytorch.callbacks import Callback

    class EpochTimer(Callback):
        def __init__(self) -> None:
            self.clock = EpochClock(settings)

        def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
            self.clock.start()

        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            self.clock.stop()

        def on_train_end(self, trainer: Any, pl_module: Any) -> None:
            self.clock.hold()

    return EpochTimer()


def _lightning_limits(settings: Settings) -> dict[str, Any]:
    """Trainer keyword arguments applying ``--limit-batches`` (nothing without it)."""
    if settings.limit_batches is None:
        return {}
    return {"limit_train_batches": settings.limit_batches, "limit_val_batches": settings.limit_batches}


def _bare_trainer(settings: Settings, timer: Any) -> Any:
    """A Lightning Trainer with nothing extra: no logger, checkpoint, progress bar or summary; only the timer."""
    import lightning as L

    return L.Trainer(
        max_epochs=settings.total_epochs,
        accelerator="gpu" if settings.device == "cuda" else "cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=[timer],
        **_lightning_limits(settings),
    )


# --------------------------------------------------------------------------------------------------------------
# The contenders: each returns (spans of every epoch, warm-up included; validation accuracy after the last)
# --------------------------------------------------------------------------------------------------------------


def run_template(settings: Settings, flags: tuple[str, ...] = ()) -> tuple[Spans, float]:
    """(1) What ``scripts/train.py`` builds, all extensions on, run from a temp folder so its outputs land there."""
    from mnist_lightning import cli

    parser = cli.build_parser()
    known = set(parser._option_string_actions)
    argv = ["--model", settings.model, "--epoch", str(settings.total_epochs), "--data-dir", settings.data_dir]
    argv += ["--accelerator", "gpu" if settings.device == "cuda" else "cpu", "--devices", "1"]
    if settings.device == "cuda" and "--data-on-device" in known:
        argv.append("--data-on-device")  # already the default on CUDA; explicit in case that changes
    if settings.limit_batches is not None:
        if not {"--limit-train-batches", "--limit-val-batches"} <= known:
            raise RuntimeError(
                "train.py has no --limit-train-batches/--limit-val-batches flags to honour --limit-batches"
            )
        argv += ["--limit-train-batches", str(settings.limit_batches)]
        argv += ["--limit-val-batches", str(settings.limit_batches)]
    timer = _epoch_timer(settings)
    with tempfile.TemporaryDirectory(prefix="benchmark-template-") as folder:
        os.chdir(folder)  # lightning_logs/ and every extension's output go here
        try:
            args = parser.parse_args([*argv, *flags, "--out", os.path.join(folder, "result")])
            run = cli.build(args, extra_callbacks=[timer])
            run.trainer.fit(run.model, datamodule=run.datamodule)
            run.close(failed=False)
        finally:
            os.chdir(REPO)
    return timer.clock.spans, float(run.trainer.callback_metrics["validation/main/accuracy"])


def run_compiled(settings: Settings) -> tuple[Spans, float]:
    """(1b) The template with ``--compile``: Inductor compiles the predictor in the warm-up epoch."""
    return run_template(settings, ("--compile",))


def run_no_extensions(settings: Settings) -> tuple[Spans, float]:
    """(2) The template's Classifier and in-memory DataModule on a bare Lightning Trainer."""
    import lightning as L

    from mnist_lightning.classifier import Classifier
    from mnist_lightning.data import ImageDataModule

    L.seed_everything(SEED, verbose=False)
    datamodule = ImageDataModule(
        settings.data_dir,
        batch_size=TRAIN_BATCH,
        test_batch_size=EVAL_BATCH,
        seed=SEED,
        data_on_device=settings.device == "cuda",
    )
    model = Classifier(settings.model, n_units=N_UNITS, optimizer="adam")
    timer = _epoch_timer(settings)
    trainer = _bare_trainer(settings, timer)
    trainer.fit(model, datamodule=datamodule)
    return timer.clock.spans, float(trainer.callback_metrics["validation/main/accuracy"])


def run_plain_lightning(settings: Settings) -> tuple[Spans, float]:
    """(3) A minimal LightningModule on the per-sample pipeline (one ToTensor per image + DataLoader)."""
    import lightning as L
    import torch
    import torch.nn.functional as F

    from mnist_lightning.data import ImageDataModule
    from mnist_lightning.models import build_predictor

    class PlainModule(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = build_predictor(settings.model, N_UNITS)

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            x, t = batch
            return F.cross_entropy(self.net(x), t)

        def validation_step(self, batch: Any, batch_idx: int) -> None:
            x, t = batch
            self.log("val_acc", (self.net(x).argmax(dim=1) == t).float().mean(), batch_size=len(t))

        def configure_optimizers(self) -> Any:
            return torch.optim.Adam(self.parameters(), lr=1e-3)

    L.seed_everything(SEED, verbose=False)
    datamodule = ImageDataModule(
        settings.data_dir, batch_size=TRAIN_BATCH, test_batch_size=EVAL_BATCH, seed=SEED, pipeline="torchvision"
    )
    timer = _epoch_timer(settings)
    trainer = _bare_trainer(settings, timer)
    trainer.fit(PlainModule(), datamodule=datamodule)
    return timer.clock.spans, float(trainer.callback_metrics["val_acc"])


def run_hand_loop(settings: Settings) -> tuple[Spans, float]:
    """(4) Seed 000's hand loop: torchvision MNIST + ToTensor + DataLoader, zero_grad/backward/step, then eval."""
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader, Subset
    from torchvision import datasets, transforms

    from mnist_lightning.models import build_predictor

    torch.manual_seed(SEED)
    device = _torch_device(settings)
    mnist = datasets.MNIST(settings.data_dir, train=True, transform=transforms.ToTensor())
    train_idx, val_idx = _split_indices(settings, len(mnist))
    train_loader = DataLoader(Subset(mnist, train_idx.tolist()), batch_size=TRAIN_BATCH, shuffle=True)
    val_loader = DataLoader(Subset(mnist, val_idx.tolist()), batch_size=EVAL_BATCH)
    model = build_predictor(settings.model, N_UNITS).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def one_epoch() -> float:
        model.train()
        for x, t in train_loader:
            x, t = x.to(device), t.to(device)
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), t)
            loss.backward()
            optimizer.step()
        model.eval()
        correct = 0
        with torch.no_grad():
            for x, t in val_loader:
                x, t = x.to(device), t.to(device)
                correct += (model(x).argmax(dim=1) == t).sum().item()
        return correct / len(val_idx)

    return _time_epochs(settings, one_epoch)


def run_chainer(settings: Settings) -> tuple[Spans, float]:
    """(5) Chainer 7.8.1's Trainer with StandardUpdater + Evaluator + LogReport, the same model and split."""
    from mnist_lightning.chainer_compat import import_chainer

    try:
        chainer = import_chainer()
    except ImportError:
        raise Skip("not installed") from None
    import chainer.links as CL
    import numpy
    from chainer import training
    from chainer.training import extensions

    if settings.device == "cuda" and not chainer.backends.cuda.available:
        raise Skip("not installed (CuPy, needed for --device cuda)")
    device = chainer.get_device("@cupy:0" if settings.device == "cuda" else "@numpy")
    sys.path.insert(0, str(REPO / "scripts"))
    import train_chainer  # the Chainer reference's own predictors, optimizers and data split

    numpy.random.seed(SEED)  # Chainer's initializers and SerialIterator's shuffle draw from NumPy's global RNG
    n_train, n_val = (
        (None, None)
        if settings.limit_batches is None
        else (
            settings.limit_batches * TRAIN_BATCH,
            settings.limit_batches * EVAL_BATCH,
        )
    )
    train, val = train_chainer.get_mnist_split(settings.data_dir, SEED, n_train=n_train, n_val=n_val)
    train_iter = chainer.iterators.SerialIterator(train, TRAIN_BATCH)
    val_iter = chainer.iterators.SerialIterator(val, EVAL_BATCH, repeat=False, shuffle=False)

    model = CL.Classifier(train_chainer.build_predictor(settings.model, N_UNITS))
    model.to_device(device)
    optimizer = train_chainer.make_optimizer("adam")
    optimizer.setup(model)
    updater = training.updaters.StandardUpdater(train_iter, optimizer, device=device)

    clock = EpochClock(settings)

    @training.make_extension(trigger=(1, "epoch"), priority=training.extension.PRIORITY_READER - 1)
    def stamp(trainer: Any) -> None:  # after every other extension of the epoch
        if settings.device == "cuda":
            chainer.backends.cuda.cupy.cuda.Device().synchronize()
        clock.stop()
        if trainer.updater.epoch < settings.total_epochs:
            clock.start()
        else:
            clock.hold()

    with tempfile.TemporaryDirectory(prefix="benchmark-chainer-") as out:
        trainer = training.Trainer(updater, (settings.total_epochs, "epoch"), out=out)
        trainer.extend(extensions.Evaluator(val_iter, model, device=device))
        log_report = extensions.LogReport()
        trainer.extend(log_report)
        trainer.extend(stamp)
        clock.start()
        trainer.run()
    return clock.spans, float(log_report.log[-1]["validation/main/accuracy"])


def run_floor(settings: Settings) -> tuple[Spans, float]:
    """(6) The compute-only floor: the same model and Adam over pre-scaled float tensors already in memory."""
    import torch
    import torch.nn.functional as F

    from mnist_lightning.models import build_predictor

    torch.manual_seed(SEED)
    device = _torch_device(settings)
    x_train, t_train, x_val, t_val = (torch.from_numpy(a).to(device) for a in _scaled_arrays(settings))
    model = build_predictor(settings.model, N_UNITS).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def one_epoch() -> float:
        model.train()
        for batch in torch.randperm(len(t_train), device=device).split(TRAIN_BATCH):
            optimizer.zero_grad()
            F.cross_entropy(model(x_train[batch]), t_train[batch]).backward()
            optimizer.step()
        model.eval()
        with torch.inference_mode():
            correct = sum(
                (model(x).argmax(dim=1) == t).sum()
                for x, t in zip(x_val.split(EVAL_BATCH), t_val.split(EVAL_BATCH), strict=True)
            )
        return int(correct) / len(t_val)

    return _time_epochs(settings, one_epoch)


RUNNERS: dict[str, Callable[[Settings], tuple[Spans, float]]] = {
    "template": run_template,
    "compiled": run_compiled,
    "no_extensions": run_no_extensions,
    "plain_lightning": run_plain_lightning,
    "hand_loop": run_hand_loop,
    "chainer": run_chainer,
    "floor": run_floor,
}


# --------------------------------------------------------------------------------------------------------------
# Worker (one contender, in its own process)
# --------------------------------------------------------------------------------------------------------------


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB (2**20 bytes); ``ru_maxrss`` is KiB on Linux, bytes on macOS."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def worker_main(name: str, settings: Settings, result_path: str) -> int:
    """Run one contender and write its epoch times, accuracy and peak memory as JSON to ``result_path``."""
    if name != "chainer":
        import torch

        torch.set_num_threads(settings.threads)
    if name in KEEPS_FREED_MEMORY:
        from mnist_lightning.allocator import keep_freed_memory

        keep_freed_memory()
    try:
        spans, accuracy = RUNNERS[name](settings)
    except Skip as reason:
        result: dict[str, Any] = {"skipped": str(reason)}
    else:
        seconds = [end - start for start, end in spans]
        result = {
            "spans": spans,
            "warmup_seconds": seconds[:WARMUP_EPOCHS],
            "epoch_seconds": seconds[WARMUP_EPOCHS:],
            "val_accuracy": accuracy,
            "peak_rss_mb": peak_rss_mb(),
            "torch_threads": sys.modules["torch"].get_num_threads() if "torch" in sys.modules else None,
        }
    Path(result_path).write_text(json.dumps(result))
    return 0


# --------------------------------------------------------------------------------------------------------------
# Driver: interleaved rounds of children, then the table, the goals and the JSON
# --------------------------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """Everything measured for one contender across rounds, or why it was not measured."""

    rounds: list[list[float]] = field(default_factory=list)  # timed epoch seconds, one list per round
    peak_rss_mb: float = 0.0
    val_accuracy: float = float("nan")
    torch_threads: int | None = None  # as the child saw it: evidence that every contender got the same
    problem: str | None = None  # "not installed ..." or "failed: <last stderr line>"
    failed: bool = False

    @property
    def epoch_seconds(self) -> list[float]:
        """Every timed epoch of every round."""
        return [seconds for one_round in self.rounds for seconds in one_round]

    @property
    def s_per_epoch(self) -> float:
        """Median seconds per epoch over every timed epoch of every round."""
        return statistics.median(self.epoch_seconds)


def paired_ratio(a: Outcome, b: Outcome) -> float:
    """Median over every (round, epoch) of a's epoch time over b's same epoch; the two ran back to back."""
    ratios = [x / y for ra, rb in zip(a.rounds, b.rounds, strict=False) for x, y in zip(ra, rb, strict=False)]
    return statistics.median(ratios)


def paired_difference(a: Outcome, b: Outcome) -> float:
    """Median over every (round, epoch) of a's epoch time minus b's same epoch, in seconds."""
    differences = [x - y for ra, rb in zip(a.rounds, b.rounds, strict=False) for x, y in zip(ra, rb, strict=False)]
    return statistics.median(differences)


#: The per-step overheads the report gives: (key, contender, reference).
OVERHEADS = (
    ("template_minus_floor", "template", "floor"),
    ("no_extensions_minus_floor", "no_extensions", "floor"),
    ("template_minus_no_extensions", "template", "no_extensions"),
)


def train_steps_per_epoch(settings: Settings) -> int:
    """Training steps in one epoch of every contender: the training split in batches of ``TRAIN_BATCH``.

    The image count comes from the label file's IDX header, so that data a contender will refuse (a bad label)
    still gets its row saying so.
    """
    header = (Path(settings.data_dir) / "MNIST" / "raw" / "train-labels-idx1-ubyte").read_bytes()[:8]
    train_idx, _ = _split_indices(settings, int.from_bytes(header[4:8], "big"))
    return math.ceil(len(train_idx) / TRAIN_BATCH)


def overhead_ms_per_step(outcomes: dict[str, Outcome], steps: int) -> dict[str, float]:
    """Milliseconds per training step that each contender of :data:`OVERHEADS` spends over its reference.

    The median of the paired per-epoch differences, divided by the training steps of an epoch. An epoch also
    holds the validation pass, which every contender runs alike, so the difference is the training loop's.
    Pairs with a contender not measured are left out.
    """
    figures = {}
    for key, name, reference in OVERHEADS:
        a, b = outcomes.get(name), outcomes.get(reference)
        if a is not None and b is not None and a.problem is None and b.problem is None:
            figures[key] = paired_difference(a, b) / steps * 1000
    return figures


class Child:
    """One contender's worker process, started with the round's others and driven one epoch at a time."""

    def __init__(self, name: str, settings: Settings, folder: str) -> None:
        self.name = name
        self.result_path = os.path.join(folder, f"{name}.json")
        env = dict(os.environ)
        for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[variable] = str(settings.threads)
        go_read, self._go = os.pipe()
        self._ready, ready_write = os.pipe()
        argv = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--result", self.result_path]
        argv += ["--pace-fds", f"{go_read},{ready_write}", *settings.worker_argv()]
        self._stderr: TextIOWrapper = open(os.path.join(folder, f"{name}.stderr"), "w+")  # noqa: SIM115
        self.process = subprocess.Popen(
            argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=self._stderr, pass_fds=(go_read, ready_write)
        )
        os.close(go_read)
        os.close(ready_write)
        self.waiting = False

    def wait_ready(self) -> bool:
        """Block until the worker waits for its next epoch; False once it has ended instead."""
        self.waiting = bool(os.read(self._ready, 1))
        return self.waiting

    def run_epoch(self) -> None:
        """Let the worker run one epoch and wait until it is done (it then waits again, or ends)."""
        if self.waiting:
            os.write(self._go, b"g")
            self.wait_ready()

    def finish(self) -> dict[str, Any]:
        """Release the worker, wait for it to end; its result dict, or ``{"failed": last stderr line}``."""
        os.close(self._go)
        self.process.wait()
        os.close(self._ready)
        if self.process.returncode == 0 and os.path.isfile(self.result_path):
            return json.loads(Path(self.result_path).read_text())
        self._stderr.seek(0)
        lines = [line.strip() for line in self._stderr.read().splitlines() if line.strip()]
        return {"failed": lines[-1] if lines else f"exit status {self.process.returncode}"}

    def close(self) -> None:
        """Kill the worker if it is still running (the driver was interrupted) and close its stderr file."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._stderr.close()


def run_round(names: list[str], settings: Settings, shift: int = 0) -> dict[str, dict[str, Any]]:
    """One round: start every contender, wait until all are ready, then run epoch by epoch in lock-step.

    Within epoch k the contenders take turns, in an order rotated by ``shift + k``; only one computes at a time.
    """
    with tempfile.TemporaryDirectory(prefix="benchmark-") as folder:
        children = [Child(name, settings, folder) for name in names]
        try:
            for child in children:
                child.wait_ready()
            for epoch in range(settings.total_epochs):
                k = (shift + epoch) % len(children)
                for child in children[k:] + children[:k]:
                    child.run_epoch()
            return {child.name: child.finish() for child in children}
        finally:
            for child in children:
                child.close()


def run_rounds(names: list[str], settings: Settings, repeats: int) -> dict[str, Outcome]:
    """Run ``repeats`` lock-step rounds of every contender; a failed or skipped one is not rerun."""
    outcomes = {name: Outcome() for name in names}
    for round_index in range(repeats):
        active = [name for name in names if outcomes[name].problem is None]
        if not active:
            break
        for name, result in run_round(active, settings, shift=round_index).items():
            outcome = outcomes[name]
            if "failed" in result:
                outcome.problem, outcome.failed = f"failed: {result['failed']}", True
            elif "skipped" in result:
                outcome.problem = result["skipped"]
            else:
                outcome.rounds.append(result["epoch_seconds"])
                outcome.peak_rss_mb = max(outcome.peak_rss_mb, result["peak_rss_mb"])
                outcome.val_accuracy = result["val_accuracy"]
                outcome.torch_threads = result["torch_threads"]
            status = outcome.problem or f"{statistics.median(result['epoch_seconds']):.2f} s/epoch"
            print(f"round {round_index + 1}/{repeats}: {name}: {status}", file=sys.stderr, flush=True)
    return outcomes


def _version(package: str) -> str:
    """The installed version of ``package``, or 'not installed'."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (falls back to platform.processor())."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def describe_machine(settings: Settings, repeats: int) -> dict[str, Any]:
    """The facts the header line and the JSON report: CPU, cores, versions, device, threads, date, settings."""
    machine: dict[str, Any] = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": _usable_cores(),
        "threads": settings.threads,
        "python": platform.python_version(),
        "torch": _version("torch"),
        "lightning": _version("lightning"),
        "chainer": _version("chainer"),
        "device": settings.device,
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "model": settings.model,
        "warmup_epochs": WARMUP_EPOCHS,
        "timed_epochs": settings.epochs,
        "repeats": repeats,
    }
    if settings.device == "cuda":
        import torch

        machine["gpu"] = torch.cuda.get_device_name(0)
    if settings.limit_batches is not None:
        machine["limit_batches"] = settings.limit_batches
    return machine


def header_line(machine: dict[str, Any]) -> str:
    """One line saying where and how the benchmark ran."""
    device = machine["device"] + (f" ({machine['gpu']})" if "gpu" in machine else "")
    limit = f", first {machine['limit_batches']} batches only" if "limit_batches" in machine else ""
    return (
        f"Machine: {machine['cpu']}, {machine['cores']} cores ({machine['usable_cores']} usable), "
        f"torch {machine['torch']} with {machine['threads']} threads for every contender, "
        f"lightning {machine['lightning']}, chainer {machine['chainer']}, Python {machine['python']}, "
        f"device {device}, {machine['date']}. Model {machine['model']}, median of {machine['timed_epochs']} timed "
        f"epoch(s) after {machine['warmup_epochs']} warm-up x {machine['repeats']} round(s){limit}."
    )


def _ratio(outcomes: dict[str, Outcome], name: str, reference: str) -> str:
    """``name``'s paired epoch-time ratio to ``reference``, formatted, or '–' when either was not measured."""
    a, b = outcomes.get(name), outcomes.get(reference)
    if a is None or b is None or a.problem or b.problem:
        return "–"
    return f"{paired_ratio(a, b):.2f}"


def markdown_table(outcomes: dict[str, Outcome], steps: int) -> str:
    """The results as a Markdown table, one row per contender in CONTENDERS order; ``steps`` per epoch."""
    rows = [
        "| contender | s/epoch (median) | ms/step | ×floor | ×hand_loop | peak RSS MB | val accuracy |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in (n for n in CONTENDERS if n in outcomes):
        outcome = outcomes[name]
        if outcome.problem:
            rows.append(f"| {name} | {outcome.problem} | | | | | |")
            continue
        rows.append(
            f"| {name} | {outcome.s_per_epoch:.2f} | {outcome.s_per_epoch / steps * 1000:.3f} | "
            f"{_ratio(outcomes, name, 'floor')} | {_ratio(outcomes, name, 'hand_loop')} | "
            f"{outcome.peak_rss_mb:.0f} | {outcome.val_accuracy:.4f} |"
        )
    return "\n".join(rows)


def overhead_lines(outcomes: dict[str, Outcome], steps: int) -> list[str]:
    """The per-step overheads of :func:`overhead_ms_per_step` as lines, ``n/a`` where a contender is missing."""
    figures = overhead_ms_per_step(outcomes, steps)
    lines = [f"Per-step overhead (ms per training step, {steps} steps/epoch, median of paired epochs):"]
    for key, name, reference in OVERHEADS:
        value = f"{figures[key]:.3f} ms" if key in figures else "n/a"
        lines.append(f"- {name} − {reference}: {value}")
    return lines


def goal_lines(outcomes: dict[str, Outcome], device: str) -> list[str]:
    """The speed and memory goals, each with its measured ratio and PASS/MISS (figures to read, not assertions)."""

    def measured(name: str) -> Outcome | None:
        outcome = outcomes.get(name)
        return outcome if outcome is not None and outcome.problem is None else None

    # (text, numerator, denominator, which figure, limit, "le": ratio must be <= limit, "ge": >= limit)
    goals = [
        ("template ≤ 1.10 × hand_loop (time)", "template", "hand_loop", "time", 1.10, "le"),
        ("template ≤ 1.10 × floor (time)", "template", "floor", "time", 1.10, "le"),
        ("template ≤ 1.03 × no_extensions (time)", "template", "no_extensions", "time", 1.03, "le"),
        ("template ≥ 3 × faster than chainer (chainer / template)", "chainer", "template", "time", 3.0, "ge"),
        ("template ≤ 1.2 × plain_lightning (peak RSS)", "template", "plain_lightning", "rss", 1.2, "le"),
    ]
    title = "Goals (CPU)" if device == "cpu" else "Goals (set for CPU; shown for reference on cuda)"
    lines = [f"{title}:"]
    for text, top, bottom, figure, limit, sense in goals:
        a, b = measured(top), measured(bottom)
        if a is None or b is None:
            missing = " and ".join(n for n, o in ((top, a), (bottom, b)) if o is None)
            lines.append(f"- {text}: n/a ({missing} not measured)")
            continue
        ratio = paired_ratio(a, b) if figure == "time" else a.peak_rss_mb / b.peak_rss_mb
        ok = ratio <= limit if sense == "le" else ratio >= limit
        lines.append(f"- {text}: {ratio:.2f} → {'PASS' if ok else 'MISS'}")
    return lines


def results_json(machine: dict[str, Any], outcomes: dict[str, Outcome], steps: int) -> dict[str, Any]:
    """The ``--json`` document: machine facts, measured results, per-step figures, why any was not measured."""
    results = {
        name: {
            "s_per_epoch": outcome.s_per_epoch,
            "ms_per_step": outcome.s_per_epoch / steps * 1000,
            "peak_rss_mb": outcome.peak_rss_mb,
            "val_accuracy": outcome.val_accuracy,
            "epoch_seconds": outcome.epoch_seconds,
            "torch_threads": outcome.torch_threads,
        }
        for name, outcome in outcomes.items()
        if outcome.problem is None
    }
    not_measured = {name: outcome.problem for name, outcome in outcomes.items() if outcome.problem is not None}
    return {
        "machine": machine,
        "steps_per_epoch": steps,
        "results": results,
        "overhead_ms_per_step": overhead_ms_per_step(outcomes, steps),
        "not_measured": not_measured,
    }


def _check_environment(args: argparse.Namespace) -> str | None:
    """One sentence saying why this run cannot start (no MNIST files, no GPU), or None."""
    from mnist_lightning.datasets import MNIST_FILES
    from mnist_lightning.idx import DataError

    try:
        MNIST_FILES.check_present(args.data_dir)
    except DataError as error:
        return str(error)
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            return "--device cuda was asked for, but PyTorch sees no CUDA GPU on this machine."
    if args.json is not None and os.path.isdir(args.json):
        return f"--json {args.json} is a folder; give a file path."
    return None


def main(argv: list[str] | None = None) -> int:
    """Entry point: a worker when ``--worker`` is given, else the whole benchmark; returns the exit status."""
    args = build_parser().parse_args(argv)
    settings = Settings(
        model=args.model,
        epochs=args.epochs,
        device=args.device,
        threads=args.threads or _usable_cores(),
        data_dir=os.path.abspath(args.data_dir),
        limit_batches=args.limit_batches,
        pace=Pacer(args.pace_fds) if args.pace_fds else _no_pace,
    )
    if args.worker is not None:
        if args.result is None:
            print("benchmark.py: error: --worker needs --result PATH.", file=sys.stderr)
            return 2
        return worker_main(args.worker, settings, args.result)

    problem = _check_environment(args)
    if problem is not None:
        print(f"benchmark.py: error: {problem}", file=sys.stderr)
        return 2
    machine = describe_machine(settings, args.repeats)
    steps = train_steps_per_epoch(settings)
    outcomes = run_rounds(args.only, settings, args.repeats)
    print(header_line(machine))
    print()
    print(markdown_table(outcomes, steps))
    print()
    print("\n".join(overhead_lines(outcomes, steps)))
    print()
    print("\n".join(goal_lines(outcomes, settings.device)))
    if args.json is not None:
        Path(args.json).write_text(json.dumps(results_json(machine, outcomes, steps), indent=2) + "\n")
    return 1 if any(outcome.failed for outcome in outcomes.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
