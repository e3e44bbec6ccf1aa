"""What the library's tests share: tiny Lightning and Chainer set-ups with the same known observations, the
extensions of a resumable run, and real full disks and read-only folders.

The test files import it by name (``from helpers import ...``): pytest puts ``tests/lightning_chainer`` on
``sys.path`` for the test files in it, and for those of its ``extensions`` and ``triggers`` packages.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import ProgressBar
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_chainer import Step
from lightning_chainer.extensions import ExponentialShift, LogReport, observe_lr, snapshot

N_TRAIN = 32
BATCH = 4
ITERS_PER_EPOCH = N_TRAIN // BATCH


def train_values(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per-iteration ``main/loss`` and ``main/accuracy`` (float32, arbitrary bits), indexed by iteration - 1."""
    rng = np.random.default_rng(seed)
    return rng.random(n, dtype=np.float32) * 3, rng.random(n, dtype=np.float32)


def val_values(n: int = 50, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Per-epoch validation values, multiples of 1/64 so Lightning's weighted epoch mean is exact."""
    rng = np.random.default_rng(seed)
    return (rng.integers(1, 256, n) / 64).astype(np.float32), (rng.integers(0, 64, n) / 64).astype(np.float32)


class FixedModule(L.LightningModule):
    """Trains a real Linear(1, 1) but logs the tabled values under Chainer's names."""

    def __init__(self, lr: float = 0.1, log_validation: bool = True, log_real: bool = False) -> None:
        super().__init__()
        self.log_real = log_real
        torch.manual_seed(0)
        self.layer = torch.nn.Linear(1, 1)
        self.lr = lr
        self.log_validation = log_validation
        self.loss_table, self.acc_table = train_values()
        self.val_loss_table, self.val_acc_table = val_values()

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        (x,) = batch
        i = self.global_step  # 0-based iteration before this update
        self.log("main/loss", torch.tensor(self.loss_table[i]), on_step=True, on_epoch=False)
        self.log("main/accuracy", torch.tensor(self.acc_table[i]), on_step=True, on_epoch=False)
        loss = (self.layer(x) - x * 3).pow(2).mean()
        if self.log_real:
            self.log("main/real_loss", loss.detach(), on_step=True, on_epoch=False)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        (x,) = batch
        e = self.current_epoch
        n = x.shape[0]
        if self.log_validation:
            self.log("validation/main/loss", torch.tensor(self.val_loss_table[e]), on_epoch=True, batch_size=n)
            self.log("validation/main/accuracy", torch.tensor(self.val_acc_table[e]), on_epoch=True, batch_size=n)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.lr)


class MLP(nn.Module):
    """A 5-4-3 ReLU MLP whose layers ``l1``, ``l2`` match a Chainer chain's links (the statistics tests)."""

    def __init__(self) -> None:
        super().__init__()
        self.l1 = nn.Linear(5, 4)
        self.l2 = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.l2(F.relu(self.l1(x)))


def train_loader() -> DataLoader:
    """``N_TRAIN`` points in ``BATCH``-sized batches, unshuffled: ``ITERS_PER_EPOCH`` iterations an epoch."""
    return DataLoader(TensorDataset(torch.linspace(-1, 1, N_TRAIN).unsqueeze(1)), batch_size=BATCH)


def val_loader(n: int = BATCH) -> DataLoader:
    """``n`` points in batches of ``BATCH`` (the last one smaller when ``n`` is not a multiple)."""
    return DataLoader(TensorDataset(torch.linspace(-1, 1, n).unsqueeze(1)), batch_size=BATCH)


def make_trainer(callbacks: list, max_epochs: int = 2, **kwargs: Any) -> L.Trainer:
    """A quiet CPU trainer with no logger and no checkpointing of its own."""
    options: dict[str, Any] = dict(
        max_epochs=max_epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        num_sanity_val_steps=1,
        deterministic=True,
        enable_progress_bar=any(isinstance(c, ProgressBar) for c in callbacks),
    )
    options.update(kwargs)
    return L.Trainer(callbacks=callbacks, **options)


def eval_values(seed: int = 2) -> np.ndarray:
    """Per-(epoch, batch) validation losses with arbitrary float32 bits, for Evaluator comparisons."""
    return np.random.default_rng(seed).random((20, 10), dtype=np.float32) * 4


class EvalModule(FixedModule):
    """Logs ``eval_values()[epoch, batch]`` in ``validation_step`` (mean of batch means differs from per-sample)."""

    def __init__(self) -> None:
        super().__init__(log_validation=False)
        self.eval_table = eval_values()

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        value = torch.tensor(self.eval_table[self.current_epoch, batch_idx])
        self.log("validation/main/loss", value, on_epoch=True, batch_size=batch[0].shape[0])


def run_chainer(extensions: list[tuple[Any, dict[str, Any]]], out: str, epochs: int = 2) -> Any:
    """A real Chainer 7.8.1 Trainer reporting the same tabled ``main/*`` values; returns the trainer."""
    from mnist_lightning.chainer_compat import import_chainer

    chainer = import_chainer()
    import chainer.functions as F
    import chainer.links as Lk
    from chainer import reporter, training

    loss_t, acc_t = train_values()

    class Model(chainer.Chain):
        def __init__(self) -> None:
            super().__init__()
            with self.init_scope():
                self.l = Lk.Linear(1, 1)

    model = Model()
    data = np.linspace(-1, 1, N_TRAIN, dtype=np.float32).reshape(-1, 1)
    iterator = chainer.iterators.SerialIterator(data, BATCH, shuffle=False)
    count = {"i": 0}

    def loss_func(x: Any) -> Any:
        i = count["i"]
        count["i"] += 1
        reporter.report({"loss": chainer.Variable(np.asarray(loss_t[i])), "accuracy": np.asarray(acc_t[i])}, model)
        return F.mean(model.l(x) ** 2)

    optimizer = chainer.optimizers.SGD(0.1)
    optimizer.setup(model)
    updater = training.updaters.StandardUpdater(iterator, optimizer, loss_func=loss_func)
    trainer = training.Trainer(updater, (epochs, "epoch"), out=out)
    trainer.chainer_model = model
    for ext, kwargs in extensions:
        trainer.extend(ext(trainer, model) if callable(ext) and not hasattr(ext, "trigger") else ext, **kwargs)
    trainer.run()
    return trainer


def chainer_validation(kind: str = "fixed", n: int = BATCH) -> Any:
    """A factory ``(trainer, model) -> chainer Evaluator`` reporting the same validation values as our modules."""
    from mnist_lightning.chainer_compat import import_chainer

    chainer = import_chainer()
    from chainer import reporter
    from chainer.training import extensions as E

    vl, va = val_values()
    table = eval_values()

    def factory(trainer: Any, model: Any) -> Any:
        data = np.linspace(-1, 1, n, dtype=np.float32).reshape(-1, 1)
        it = chainer.iterators.SerialIterator(data, BATCH, repeat=False, shuffle=False)
        state = {"b": 0, "epoch": -1}

        def eval_func(x: Any) -> None:
            e = trainer.updater.epoch - 1
            if state["epoch"] != e:
                state["epoch"], state["b"] = e, 0
            if kind == "fixed":
                reporter.report({"loss": np.asarray(vl[e]), "accuracy": np.asarray(va[e])}, model)
            else:
                reporter.report({"loss": np.asarray(table[e, state["b"]])}, model)
            state["b"] += 1

        return E.Evaluator(it, model, eval_func=eval_func)

    return factory


def callbacks(out: Path, **snap: Any) -> list:
    """A resumable run's extensions writing into ``out``: observe_lr, an ExponentialShift, LogReport, snapshot."""
    return [
        observe_lr(),
        ExponentialShift("lr", 0.5, trigger=(1, "epoch")),
        LogReport(out=str(out)),
        snapshot(out=str(out), **snap),
    ]


def touch(path: Path, mtime: float, data: bytes = b"x") -> None:
    """Write ``data`` to ``path`` and set its modification (and access) time to ``mtime``."""
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))


@contextmanager
def immutable(folder: Path) -> Iterator[Path]:
    """No file can be made, renamed or removed in ``folder``, even by root (``chattr +i``)."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["chattr", "+i", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def fill(folder: Path) -> None:
    """Take every free byte of the tmpfs at ``folder``."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as error:
        assert error.errno == errno.ENOSPC
    finally:
        os.close(fd)


def step_at(iteration: int, iters_per_epoch: int) -> Step:
    """Iteration ``iteration`` (1-based) of a run of ``iters_per_epoch`` iterations an epoch, as a trigger sees it."""
    return Step(None, None, iteration, iteration // iters_per_epoch, iteration / iters_per_epoch)


def chainer_trainers(iterations: Iterable[int], iters_per_epoch: int) -> Iterator[tuple[int, Any]]:
    """``(iteration, trainer)`` for each of ``iterations``: a stand-in for Chainer's trainer, with what its triggers
    read from the updater (``iteration``, ``epoch_detail``, ``previous_epoch_detail``) at that iteration."""
    updater = SimpleNamespace(iteration=0, epoch_detail=0.0, previous_epoch_detail=0.0)
    trainer = SimpleNamespace(updater=updater)
    for i in iterations:
        updater.previous_epoch_detail = updater.epoch_detail
        updater.iteration, updater.epoch_detail = i, i / iters_per_epoch
        yield i, trainer
