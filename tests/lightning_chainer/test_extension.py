"""The extension base class: Lightning calls no per-batch hook of an extension but the leader's, and
``call_before_training`` runs an extension once at iteration 0."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import pytest
from helpers import FixedModule, make_trainer, train_loader, val_loader
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.profilers import Profiler

from lightning_chainer.extensions import Evaluator, LogReport, PrintReport


class HookCounter(Profiler):
    """Counts what Lightning profiles: one ``[Callback]{state_key}.{hook}`` action per hook call on a callback."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[str] = Counter()

    def start(self, action_name: str) -> None:
        self.calls[action_name] += 1

    def stop(self, action_name: str) -> None:
        pass


PER_BATCH_HOOKS = (
    "on_train_batch_start",
    "on_before_backward",
    "on_after_backward",
    "on_before_optimizer_step",
    "on_before_zero_grad",
    "on_validation_batch_start",
    "on_validation_batch_end",
)


def test_lightning_calls_no_per_batch_hook_of_an_extension_but_the_driving_one() -> None:
    """Extensions switch off the per-batch hooks they never use (each call costs 2-3 us a callback a step)."""

    class Plain(Callback):
        pass

    log, table, plain, counter = (
        LogReport(filename=None),
        PrintReport(["epoch"], out=io.StringIO()),
        Plain(),
        HookCounter(),
    )
    make_trainer([log, table, plain], max_epochs=1, profiler=counter).fit(FixedModule(), train_loader(), val_loader())
    for hook in PER_BATCH_HOOKS:
        assert counter.calls[f"[Callback]{plain.state_key}.{hook}"] > 0, hook  # as on any callback
        assert counter.calls[f"[Callback]{log.state_key}.{hook}"] == 0, hook
        assert counter.calls[f"[Callback]{table.state_key}.{hook}"] == 0, hook
    assert counter.calls[f"[Callback]{log.state_key}.on_train_batch_end"] == 8
    assert [e["iteration"] for e in log.log] == [8] and "validation/main/loss" in log.log[0]


def test_call_before_training_writes_chainers_epoch_zero_entry(tmp_path: Path) -> None:
    """As Chainer v7's MNIST example: Evaluator, LogReport and PrintReport also run once at iteration 0."""
    out = io.StringIO()
    log = LogReport(out=str(tmp_path), call_before_training=True)
    callbacks = [
        Evaluator(val_loader(), name="validation", call_before_training=True),
        log,
        PrintReport(["epoch", "iteration", "main/loss", "validation/main/loss"], out=out, call_before_training=True),
    ]
    module = FixedModule()
    make_trainer(callbacks, max_epochs=2).fit(module, train_loader())
    first = log.log[0]
    assert list(first) == ["validation/main/loss", "validation/main/accuracy", "epoch", "iteration", "elapsed_time"]
    assert (first["epoch"], first["iteration"]) == (0, 0)
    assert first["validation/main/loss"] == pytest.approx(float(module.val_loss_table[0]))
    assert [(e["epoch"], e["iteration"]) for e in log.log] == [(0, 0), (1, 8), (2, 16)]
    rows = out.getvalue().split("\n")
    assert rows[0].startswith("epoch       iteration   main/loss")
    assert rows[1].startswith("\x1b[J0           0                       ")
    assert json.loads((tmp_path / "log").read_text()) == log.log
