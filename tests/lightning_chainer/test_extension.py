"""The extension base class: Lightning calls no per-batch hook of an extension but the leader's, and
``call_before_training`` runs an extension once at iteration 0."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
from helpers import FixedModule, make_trainer, train_loader, val_loader
from lightning.pytorch.callbacks import Callback
from manager_helpers import HookCounter, Plain, chainer_trainer

from lightning_chainer import ExtensionsManager, make_extension
from lightning_chainer.extensions import Evaluator, LogReport, PrintReport
from lightning_chainer.step import PRIORITY_WRITER
from mnist_lightning.chainer_compat import import_chainer


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An ExtensionsManager writes into ``result`` of the working directory, as Chainer: the test's own folder."""
    monkeypatch.chdir(tmp_path)


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


def test_make_extension_sets_chainers_attributes() -> None:
    chainer_make_extension = import_chainer().training.make_extension
    names = ("trigger", "default_name", "priority", "finalize", "initialize", "on_error")

    def made(decorate, **arguments):
        def report(trainer):
            pass

        return decorate(**arguments)(report)

    for arguments in ({}, {"trigger": (2, "epoch"), "default_name": "r", "priority": 300, "finalizer": print}):
        ours, theirs = made(make_extension, **arguments), made(chainer_make_extension, **arguments)
        assert [getattr(ours, n) for n in names] == [getattr(theirs, n) for n in names]
    for decorate in (make_extension, chainer_make_extension):
        with pytest.raises(ValueError, match="invoke_before_training has been removed"):
            decorate(invoke_before_training=True)


def test_a_function_extension_gets_chainers_calls_with_the_manager_as_its_trainer(tmp_path: Path) -> None:
    """initialize(trainer), on_error(trainer, exception, traceback), finalize() as Chainer calls them."""
    chainer = import_chainer()

    def extension(calls: list, decorate) -> object:
        def initializer(trainer):
            calls.append(("initialize", trainer.updater.iteration))

        def on_error(trainer, exception, traceback):
            calls.append(("on_error", type(exception).__name__, traceback is not None))

        @decorate(
            trigger=(1, "iteration"),
            initializer=initializer,
            on_error=on_error,
            finalizer=lambda: calls.append(("finalize",)),
        )
        def fail_at_3(trainer):
            calls.append(("call", trainer.updater.iteration))
            if trainer.updater.iteration == 3:
                raise ArithmeticError("stop")

        return fail_at_3

    theirs: list = []
    trainer = chainer_trainer(chainer, (2, "epoch"), tmp_path)
    trainer.extend(extension(theirs, chainer.training.make_extension))
    with pytest.raises(ArithmeticError), contextlib.redirect_stderr(io.StringIO()):
        trainer.run()
    ours: list = []
    manager = ExtensionsManager((2, "epoch"))
    manager.extend(extension(ours, make_extension))
    with pytest.raises(ArithmeticError):
        make_trainer([manager], max_epochs=None).fit(Plain(), train_loader())
    assert ours == theirs == [("initialize", 0), ("call", 1), ("call", 2), ("call", 3), *theirs[4:]]


def test_a_function_extension_reads_chainers_trainer_attributes(tmp_path: Path) -> None:
    seen = []
    module = FixedModule()

    @make_extension(trigger=(1, "epoch"), priority=PRIORITY_WRITER)
    def look(trainer):
        optimizer = trainer.updater.get_optimizer("main")
        seen.append((trainer.out, sorted(trainer.observation), trainer.elapsed_time > 0, optimizer.target is module))
        trainer.observation["main/extra"] = 1.0  # a writer: LogReport, a reader, sees it

    manager = ExtensionsManager((1, "epoch"), out="out")
    manager.extend(look)
    manager.extend(LogReport())
    make_trainer([manager], max_epochs=None).fit(module, train_loader())
    assert seen == [("out", ["main/accuracy", "main/loss"], True, True)]
    assert json.loads((tmp_path / "out" / "log").read_text())[0]["main/extra"] == 1.0
