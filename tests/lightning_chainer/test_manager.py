"""ExtensionsManager next to a real Chainer 7.8.1 Trainer given the same ``trainer.extend(...)`` calls: names,
triggers, priorities, the order of calls, the stop trigger; its snapshots resume exactly; it is the one callback
Lightning calls, and passes every hook an extension implements on to it."""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pytest
import torch
from helpers import BATCH, N_TRAIN, FixedModule, make_trainer, train_loader, val_loader
from lightning.pytorch.callbacks import Callback, TQDMProgressBar
from manager_helpers import HookCounter, Plain, chainer_trainer
from torch.utils.data import DataLoader, TensorDataset

from lightning_chainer import Extension, ExtensionsManager, make_extension
from lightning_chainer import extensions as E
from lightning_chainer.step import PRIORITY_EDITOR, PRIORITY_WRITER
from mnist_lightning.chainer_compat import import_chainer


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An ExtensionsManager writes into ``result`` of the working directory, as Chainer: the test's own folder."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def chainer() -> Any:
    return import_chainer()


#: (label, make_extension's arguments or None for a plain function, trainer.extend's keyword arguments)
RECORDERS: list[tuple[str, dict | None, dict]] = [
    ("every", None, {}),
    ("writer", {"trigger": (1, "epoch"), "priority": PRIORITY_WRITER}, {}),
    ("editor", {"trigger": (3, "iteration"), "priority": PRIORITY_EDITOR, "default_name": "edit"}, {}),
    ("override", {"trigger": (1, "epoch")}, {"trigger": (5, "iteration"), "priority": PRIORITY_WRITER + 1}),
    ("before", {}, {"call_before_training": True}),
    ("every", None, {}),
    ("renamed", None, {"name": "every"}),
    ("late", {"trigger": (1, "epoch"), "priority": -100}, {}),
]


def extend_recorders(trainer: Any, decorate: Any, calls: list) -> list[Any]:
    """``trainer.extend`` each of :data:`RECORDERS` (made with ``decorate``, a make_extension); returns them."""
    made = []
    for label, arguments, extend_kwargs in RECORDERS:

        def record(t: Any, label: str = label) -> None:
            u = t.updater
            calls.append((label, u.iteration, u.epoch, u.epoch_detail, u.is_new_epoch))

        record.__name__ = label
        if arguments is not None:
            record = decorate(**arguments)(record)
        trainer.extend(record, **extend_kwargs)
        made.append(record)
    trainer.extend(lambda t: calls.append(("lambda", t.updater.iteration)), trigger=(4, "iteration"))
    return made


def test_extend_names_triggers_priorities_and_order_of_calls_are_chainers(chainer: Any, tmp_path: Path) -> None:
    from chainer.training import make_extension as chainer_make_extension

    theirs: list = []
    trainer = chainer_trainer(chainer, (2, "epoch"), tmp_path)
    their_made = extend_recorders(trainer, chainer_make_extension, theirs)
    trainer.run()
    ours: list = []
    manager = ExtensionsManager((2, "epoch"), out=str(tmp_path / "ours"))
    our_made = extend_recorders(manager, make_extension, ours)
    make_trainer([manager], max_epochs=None).fit(FixedModule(), train_loader())
    assert [f.name for f in our_made] == [f.name for f in their_made]
    assert [f.name for f in our_made][-3:] == ["every_1", "every_2", "late"]
    assert ours == theirs
    assert all(manager.get_extension(f.name) is f for f in our_made)


def test_extensions_get_chainers_default_names_triggers_and_priorities(chainer: Any, tmp_path: Path) -> None:
    from chainer.training import extensions as CE

    link = chainer.links.Linear(1, 1)
    points = np.zeros((4, 1), dtype=np.float32)

    def iterator() -> Any:
        return chainer.iterators.SerialIterator(points, 4, repeat=False, shuffle=False)

    pairs = [
        (E.LogReport(), CE.LogReport()),
        (E.LogReport(filename="log2"), CE.LogReport()),
        (E.PrintReport(["epoch"]), CE.PrintReport(["epoch"])),
        (E.Evaluator(val_loader(), FixedModule()), CE.Evaluator(iterator(), link)),
        (E.Evaluator(val_loader(), FixedModule()), CE.Evaluator(iterator(), link)),
        (E.ExponentialShift("lr", 0.5), CE.ExponentialShift("lr", 0.5)),
        (E.FailOnNonNumber(), CE.FailOnNonNumber()),
        (E.MicroAverage("a", "b", "c"), CE.MicroAverage("a", "b", "c")),
        (E.ProgressBar(), CE.ProgressBar()),
        (E.PlotReport(["main/loss"]), CE.PlotReport(["main/loss"])),
    ]
    trainer = chainer_trainer(chainer, (1, "epoch"), tmp_path)
    manager = ExtensionsManager((1, "epoch"))
    for ours, theirs in pairs:
        manager.extend(ours)
        trainer.extend(theirs)
    for ours, theirs in pairs:
        entry = trainer._extensions[theirs.name]
        assert ours.name == theirs.name
        # Chainer calls an extension that sums every iteration (LogReport, ...) every iteration, and its own
        # trigger decides when it reports; here its ``run`` sees every iteration and ``trigger`` is that one.
        every = type(ours).run is not Extension.run
        called = (1, "iteration") if every else (ours.trigger.period, ours.trigger.unit)
        assert called == (entry.trigger.period, entry.trigger.unit), ours.name
        assert ours.priority == entry.priority, ours.name
    assert [ours.name for ours, _ in pairs][3:5] == ["validation", "validation_1"]


def test_bad_calls_end_in_chainers_errors(chainer: Any, tmp_path: Path) -> None:
    trainer = chainer_trainer(chainer, (1, "epoch"), tmp_path)
    manager = ExtensionsManager((1, "epoch"))
    calls = [
        lambda t: t.get_extension("absent"),
        lambda t: t.extend(lambda _: None, name="training"),
        lambda t: t.extend(lambda _: None, invoke_before_training=True),
        lambda t: t.extend(lambda _: None, unknown=1),
    ]
    for call in calls:
        with pytest.raises((ValueError, TypeError)) as theirs:
            call(trainer)
        with pytest.raises(theirs.type) as ours:
            call(manager)
        # Chainer's TypeError names its helper (assert_kwargs_empty) where the function meant is extend.
        assert str(ours.value) == str(theirs.value).replace("assert_kwargs_empty()", "extend()")
    with pytest.raises(TypeError, match=r"stop_trigger must be \(N, 'epoch'\)"):
        ExtensionsManager("10 epochs")


def test_a_stop_trigger_in_iterations_stops_where_chainers_does(chainer: Any, tmp_path: Path) -> None:
    theirs: list = []
    trainer = chainer_trainer(chainer, (10, "iteration"), tmp_path)
    trainer.extend(lambda t: theirs.append(t.updater.iteration))
    trainer.run()
    ours: list = []
    manager = ExtensionsManager((10, "iteration"))
    manager.extend(lambda t: ours.append(t.updater.iteration))
    lightning = make_trainer([manager], max_epochs=None)
    lightning.fit(FixedModule(), train_loader())
    assert ours == theirs and lightning.global_step == trainer.updater.iteration


def test_an_early_stopping_trigger_as_stop_trigger_stops_where_chainers_does(chainer: Any, tmp_path: Path) -> None:
    from chainer.training.triggers import EarlyStoppingTrigger

    trainer = chainer_trainer(chainer, EarlyStoppingTrigger(monitor="main/loss", patience=2), tmp_path)
    trainer.run()
    stop = E.EarlyStoppingTrigger(monitor="main/loss", patience=2)
    lightning = make_trainer([ExtensionsManager(stop)], max_epochs=None)
    lightning.fit(FixedModule(), train_loader())
    assert lightning.global_step == trainer.updater.iteration < 100 * N_TRAIN // BATCH  # stopped early


def test_lightnings_default_of_1000_epochs_does_not_cut_a_longer_stop_trigger() -> None:
    lightning = make_trainer([ExtensionsManager((1001, "epoch"))], max_epochs=None, num_sanity_val_steps=0)
    lightning.fit(Plain(), DataLoader(TensorDataset(torch.ones(1, 1)), batch_size=1))
    assert lightning.global_step == 1001


def without_elapsed(path: Path) -> str:
    return re.sub(r'"elapsed_time": [-+0-9.e]+', '"elapsed_time": T', path.read_text())


def fit(out: Path, epochs: int, autoload: bool = False, ckpt_path: Path | None = None) -> L.Trainer:
    manager = ExtensionsManager((epochs, "epoch"), out=str(out))
    manager.extend(E.observe_lr())
    manager.extend(E.ExponentialShift("lr", 0.5), trigger=(1, "epoch"))
    manager.extend(E.LogReport())
    manager.extend(E.snapshot(autoload=autoload), trigger=(1, "epoch"))
    lightning = make_trainer([manager], max_epochs=None)
    lightning.fit(FixedModule(), train_loader(), val_loader(), ckpt_path=ckpt_path)
    return lightning


def test_a_snapshot_under_the_manager_resumes_exactly_by_ckpt_path_and_by_autoload(tmp_path: Path) -> None:
    fit(tmp_path / "whole", 3)
    fit(tmp_path / "first", 1)
    fit(tmp_path / "resumed", 3, ckpt_path=tmp_path / "first" / "snapshot_iter_8")
    fit(tmp_path / "auto", 1)
    autoloaded = fit(tmp_path / "auto", 3, autoload=True)
    whole = without_elapsed(tmp_path / "whole" / "log")
    assert len(json.loads((tmp_path / "whole" / "log").read_text())) == 3
    assert without_elapsed(tmp_path / "resumed" / "log") == whole
    assert without_elapsed(tmp_path / "auto" / "log") == whole
    assert autoloaded.ckpt_path is None  # Snapshot's on_fit_end, passed on: a test() scores the trained weights
    state = torch.load(tmp_path / "first" / "snapshot_iter_8", weights_only=True)["callbacks"]["ExtensionsManager"]
    assert sorted(state["extensions"]) == ["ExponentialShift", "LogReport", "ObserveValue", "Snapshot"]
    assert state["stop_trigger"] == {"previous_iteration": 8, "previous_epoch_detail": 1.0}


HOOKS = ("on_before_backward", "on_train_epoch_start", "on_validation_epoch_end", "on_fit_end", "teardown")


def counting(base: type) -> type:
    """A ``base`` subclass counting its calls of :data:`HOOKS` and of the checkpoint hooks."""

    def hook(name: str) -> Any:
        def count(self: Any, *args: Any, **kwargs: Any) -> None:
            self.calls[name] += 1

        return count

    names = (*HOOKS, "on_save_checkpoint", "on_load_checkpoint")
    return type(f"Counting{base.__name__}", (base,), {name: hook(name) for name in names})


def test_lightning_calls_the_manager_once_and_it_passes_on_each_hook_an_extension_implements(tmp_path: Path) -> None:
    def run(ckpt_path: Path | None, epochs: int) -> tuple[Any, Any, HookCounter, L.Trainer]:
        extension, callback, profiler = counting(Extension)(), counting(Callback)(), HookCounter()
        extension.calls, callback.calls = Counter(), Counter()
        manager = ExtensionsManager((epochs, "epoch"), out=str(tmp_path))
        manager.extend(extension)
        manager.extend(E.snapshot(), trigger=(1, "epoch"))
        lightning = make_trainer([manager, callback], max_epochs=None, profiler=profiler)
        lightning.fit(FixedModule(), train_loader(), val_loader(), ckpt_path=ckpt_path)
        return extension, callback, profiler, lightning

    extension, callback, profiler, lightning = run(None, 1)
    assert extension.calls == callback.calls and extension.calls["on_before_backward"] == 8
    assert not any(isinstance(cb, Extension) for cb in lightning.callbacks)
    calls = profiler.calls
    assert calls["[Callback]ExtensionsManager.on_train_batch_end"] == 8
    assert calls["[Callback]ExtensionsManager.on_before_backward"] == 8
    assert calls["[Callback]ExtensionsManager.on_after_backward"] == 0  # implemented by none: never called
    assert calls[f"[Callback]{callback.state_key}.on_after_backward"] == 8
    extension, callback, _, _ = run(tmp_path / "snapshot_iter_8", 2)
    assert extension.calls == callback.calls and extension.calls["on_load_checkpoint"] == 1


def test_a_hook_an_extension_switches_off_is_no_longer_called(tmp_path: Path) -> None:
    class Once(Extension):
        def on_before_backward(self, trainer: Any, pl_module: Any, loss: torch.Tensor) -> None:
            self.seen = getattr(self, "seen", 0) + 1
            self.on_before_backward = None  # type: ignore[assignment]

    once, profiler = Once(), HookCounter()
    manager = ExtensionsManager((1, "epoch"))
    manager.extend(once)
    make_trainer([manager], max_epochs=None, profiler=profiler).fit(FixedModule(), train_loader())
    assert once.seen == 1
    assert profiler.calls["[Callback]ExtensionsManager.on_before_backward"] == 2  # then it removes itself


def test_fail_on_non_number_sees_each_loss_through_the_manager() -> None:
    class Diverging(Plain):
        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            loss = super().training_step(batch, batch_idx)
            return loss * float("nan") if self.global_step == 2 else loss

    manager = ExtensionsManager((2, "epoch"))
    manager.extend(E.FailOnNonNumber(trigger=(1, "epoch")))
    with pytest.raises(E.NonNumberError, match="at iteration 3"):
        make_trainer([manager], max_epochs=None).fit(Diverging(), train_loader())


def test_every_extension_writes_into_trainer_out_unless_given_its_own(tmp_path: Path) -> None:
    table, bar = io.StringIO(), io.StringIO()
    manager = ExtensionsManager((1, "epoch"), out="res")
    manager.extend(E.LogReport())
    manager.extend(E.LogReport(filename="own", out=str(tmp_path / "elsewhere")))
    manager.extend(E.PrintReport(["epoch", "main/loss"], out=table))
    manager.extend(E.ProgressBar(update_interval=4, out=bar))
    lightning = make_trainer([manager], max_epochs=None, enable_progress_bar=True)
    lightning.fit(FixedModule(), train_loader())
    assert (tmp_path / "res" / "log").is_file() and (tmp_path / "elsewhere" / "own").is_file()
    assert table.getvalue().startswith("epoch       main/loss")  # PrintReport found 'LogReport' by its name
    assert "8 iter, 1 epoch / 1 epochs" in bar.getvalue()  # the stop trigger's length
    assert not any(isinstance(cb, TQDMProgressBar) for cb in lightning.callbacks)  # the ProgressBar replaces it


def test_an_extension_in_trainer_callbacks_next_to_a_manager_is_refused_in_one_sentence() -> None:
    for other, advice in ((E.LogReport(), "trainer.extend"), (E.EarlyStoppingTrigger(), "stop_trigger=")):
        with pytest.raises(ValueError, match=f"next to an ExtensionsManager.*{re.escape(advice)}"):
            make_trainer([ExtensionsManager((1, "epoch")), other]).fit(FixedModule(), train_loader())


def test_a_reader_finds_its_log_report_by_the_managers_unique_name(tmp_path: Path) -> None:
    """Two LogReports are 'LogReport' and 'LogReport_1'; PrintReport(log_report='LogReport_1') prints the second's."""
    manager = ExtensionsManager((2, "epoch"), out="res")
    manager.extend(E.LogReport())
    manager.extend(E.PrintReport(["epoch"], log_report="LogReport_9", out=io.StringIO()))
    with pytest.raises(ValueError, match="reads the extension 'LogReport_9', which is not extended"):
        make_trainer([manager], max_epochs=None).fit(FixedModule(), train_loader())

    first, second = io.StringIO(), io.StringIO()
    manager = ExtensionsManager((2, "epoch"), out="res")
    manager.extend(E.LogReport())
    manager.extend(E.LogReport(trigger=(1, "iteration"), log_name="log_by_iteration"))
    manager.extend(E.PrintReport(["epoch", "iteration"], out=first))
    manager.extend(E.PrintReport(["epoch", "iteration"], log_report="LogReport_1", out=second))
    make_trainer([manager], max_epochs=None).fit(FixedModule(), train_loader())
    assert printed_iterations(first.getvalue()) == [8, 16]
    assert printed_iterations(second.getvalue()) == list(range(1, 17))


def printed_iterations(table: str) -> list[int]:
    """The iteration column of a PrintReport table with the columns epoch, iteration."""
    rows = [line.replace("\x1b[J", "").split() for line in table.splitlines()]
    return [int(row[1]) for row in rows if len(row) == 2 and row[1].isdigit()]
