"""Real Chainer 7.8.1 and our callbacks fed the same observations write the same log, table and bar."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import pytest
import torch
from helpers import EvalModule, FixedModule, chainer_validation, make_trainer, run_chainer, train_loader, val_loader

from lightning_chainer.extensions import Evaluator, LogReport, PrintReport, ProgressBar
from mnist_lightning.chainer_compat import import_chainer

ENTRIES = [
    "epoch",
    "iteration",
    "main/loss",
    "validation/main/loss",
    "main/accuracy",
    "validation/main/accuracy",
    "elapsed_time",
]


def without_elapsed(log_text: str) -> str:
    """The log file's text with every elapsed_time value replaced."""
    return re.sub(r'"elapsed_time": [-+0-9.e]+', '"elapsed_time": T', log_text)


def normalize_console(text: str, entries: list[str]) -> str:
    """Console text with the speed/ETA line and the elapsed_time column values replaced."""
    text = re.sub(r"[^\n]*iters/sec\. Estimated time to finish: [^\n]*\.\n", "SPEED\n", text)
    offset = sum(max(10, len(e)) + 2 for e in entries[:-1])
    lines = []
    for line in text.split("\n"):
        match = re.match(r"^((?:\x1b\[4A)?\x1b\[J)(\d.*)$", line)
        if match and "elapsed_time" == entries[-1]:
            line = match.group(1) + match.group(2)[:offset] + "T"
        lines.append(line)
    return "\n".join(lines)


def chainer_run(tmp_path: Path, extensions: list, epochs: int = 2) -> tuple[str, list]:
    """Runs Chainer with stdout captured (Chainer 7.8.1's ProgressBar ignores ``out`` and writes to sys.stdout)."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        trainer = run_chainer([(make(), kwargs) for make, kwargs in extensions], str(tmp_path), epochs)
    return buf.getvalue(), trainer


@pytest.fixture(scope="module")
def E():
    """Real Chainer 7.8.1's ``chainer.training.extensions``."""
    import_chainer()
    from chainer.training import extensions

    return extensions


def test_log_print_progress_match_chainer_with_lightning_validation(tmp_path: Path, E) -> None:
    chainer_out, _ = chainer_run(
        tmp_path / "chainer",
        [
            (lambda: chainer_validation("fixed"), {}),
            (lambda: E.LogReport(), {}),
            (lambda: E.PrintReport(ENTRIES, out=__import__("sys").stdout), {}),
            (lambda: E.ProgressBar(update_interval=3), {}),
        ],
    )
    ours = io.StringIO()
    callbacks = [
        LogReport(out=str(tmp_path / "ours")),
        PrintReport(ENTRIES, out=ours),
        ProgressBar(update_interval=3, out=ours, ansi=True),
    ]
    make_trainer(callbacks).fit(FixedModule(), train_loader(), val_loader())

    chainer_log = (tmp_path / "chainer" / "log").read_text()
    our_log = (tmp_path / "ours" / "log").read_text()
    assert without_elapsed(our_log) == without_elapsed(chainer_log)
    assert our_log.endswith("}\n]")
    assert normalize_console(ours.getvalue(), ENTRIES) == normalize_console(chainer_out, ENTRIES)
    assert "\x1b[J1           8           1.0159" in ours.getvalue()


def test_iteration_interval_partial_interval_and_missing_values_match_chainer(tmp_path: Path, E) -> None:
    entries = ["epoch", "iteration", "main/loss", "validation/main/loss", "elapsed_time"]
    chainer_out, _ = chainer_run(
        tmp_path / "chainer",
        [
            (lambda: chainer_validation("eval", n=14), {"trigger": (2, "epoch")}),
            (lambda: E.LogReport(trigger=(5, "iteration")), {}),
            (lambda: E.PrintReport(entries, out=__import__("sys").stdout), {}),
        ],
        epochs=3,
    )
    ours = io.StringIO()
    callbacks = [
        Evaluator(val_loader(14), trigger=(2, "epoch")),
        LogReport(trigger=(5, "iteration"), out=str(tmp_path / "ours")),
        PrintReport(entries, out=ours),
    ]
    make_trainer(callbacks, max_epochs=3, limit_val_batches=0).fit(EvalModule(), train_loader())

    chainer_log = (tmp_path / "chainer" / "log").read_text()
    our_log = (tmp_path / "ours" / "log").read_text()
    assert without_elapsed(our_log) == without_elapsed(chainer_log)
    iterations = [e["iteration"] for e in json.loads(our_log)]
    assert iterations == [5, 10, 15, 20]  # 24 iterations: the trailing partial interval is dropped
    assert normalize_console(ours.getvalue(), entries) == normalize_console(chainer_out, entries)


def test_evaluator_mean_of_batch_means_matches_chainer(tmp_path: Path, E) -> None:
    _, chainer_trainer = chainer_run(
        tmp_path / "chainer",
        [(lambda: chainer_validation("eval", n=14), {}), (lambda: E.LogReport(), {})],
    )
    make_trainer([Evaluator(val_loader(14)), LogReport(out=str(tmp_path / "ours"))], limit_val_batches=0).fit(
        EvalModule(), train_loader()
    )
    chainer_log = json.loads((tmp_path / "chainer" / "log").read_text())
    our_log = json.loads((tmp_path / "ours" / "log").read_text())
    assert [e["validation/main/loss"] for e in our_log] == [e["validation/main/loss"] for e in chainer_log]


def test_call_before_training_epoch_zero_entry_matches_chainer(tmp_path: Path, E) -> None:
    """Chainer v7's MNIST example: Evaluator, LogReport and PrintReport with call_before_training=True."""
    entries = ["epoch", "iteration", "main/loss", "validation/main/loss", "validation/main/accuracy", "elapsed_time"]
    before = {"call_before_training": True}
    chainer_out, _ = chainer_run(
        tmp_path / "chainer",
        [
            (lambda: chainer_validation("fixed"), before),
            (lambda: E.LogReport(), before),
            (lambda: E.PrintReport(entries, out=__import__("sys").stdout), before),
        ],
    )

    class BeforeTraining(FixedModule):
        """Chainer's evaluation at iteration 0 sees updater.epoch - 1 == -1: the table's last row."""

        def validation_step(self, batch, batch_idx) -> None:
            e = self.current_epoch if self.global_step > 0 else -1
            n = batch[0].shape[0]
            self.log("validation/main/loss", torch.tensor(self.val_loss_table[e]), on_epoch=True, batch_size=n)
            self.log("validation/main/accuracy", torch.tensor(self.val_acc_table[e]), on_epoch=True, batch_size=n)

    ours = io.StringIO()
    callbacks = [
        Evaluator(val_loader(), call_before_training=True),
        LogReport(out=str(tmp_path / "ours"), call_before_training=True),
        PrintReport(entries, out=ours, call_before_training=True),
    ]
    make_trainer(callbacks, limit_val_batches=0).fit(BeforeTraining(), train_loader())

    chainer_log = (tmp_path / "chainer" / "log").read_text()
    our_log = (tmp_path / "ours" / "log").read_text()
    assert json.loads(our_log)[0]["iteration"] == 0
    assert without_elapsed(our_log) == without_elapsed(chainer_log)
    assert normalize_console(ours.getvalue(), entries) == normalize_console(chainer_out, entries)
