"""Observation plumbing, triggers and the smaller extensions, each on a short real training."""

from __future__ import annotations

import io
import json
import os
from collections import Counter
from pathlib import Path

import lightning as L
import pytest
import torch
from ext_helpers import FixedModule, make_trainer, train_loader, val_loader
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.profilers import Profiler

from lightning_chainer._lightning import read_lightning
from lightning_chainer.extensions import (
    Evaluator,
    Extension,
    FailOnNonNumber,
    LinearShift,
    LogReport,
    ManualScheduleTrigger,
    MaxValueTrigger,
    MicroAverage,
    MinValueTrigger,
    PlotReport,
    PrintReport,
    ProgressBar,
    Summary,
    observe_lr,
    snapshot,
)


class Recorder(Extension):
    """Records what the driver hands to extensions every iteration."""

    def __init__(self) -> None:
        super().__init__()
        self.steps: list[tuple[int, int, float, dict]] = []
        self.lightning: list = []

    def __call__(self, step) -> None:
        self.steps.append((step.iteration, step.epoch, step.epoch_detail, dict(step.observation)))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.lightning.append(read_lightning(trainer, "train"))
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)


def test_lightning_internals_still_give_step_values_and_validation_timing() -> None:
    rec = Recorder()
    make_trainer([rec], max_epochs=1).fit(FixedModule(), train_loader(), val_loader())
    names = [[n for n, _ in view.step_values] for view in rec.lightning]
    assert names == [["main/loss", "main/accuracy"]] * 8
    assert all(isinstance(v, torch.Tensor) and v.dim() == 0 for view in rec.lightning for _, v in view.step_values)
    assert [view.validation_follows for view in rec.lightning] == [False] * 7 + [True]
    iteration, epoch, detail, obs = rec.steps[-1]
    assert (iteration, epoch, detail) == (8, 1, 1.0)
    assert list(obs) == ["main/loss", "main/accuracy", "validation/main/loss", "validation/main/accuracy"]
    assert [s[2] for s in rec.steps] == [i / 8 for i in range(1, 9)]


@pytest.mark.parametrize(
    "options",
    [
        {"max_epochs": 2},
        {"max_epochs": 2, "val_check_interval": 3},
        {"max_epochs": 2, "val_check_interval": 5, "check_val_every_n_epoch": None},
        {"max_epochs": 3, "check_val_every_n_epoch": 2},
        {"max_epochs": 2, "limit_train_batches": 6, "val_check_interval": 2},
    ],
)
def test_validation_follows_exactly_where_lightning_validates(options: dict) -> None:
    """read_lightning's ``validation_follows`` agrees with where validation really ran, schedule by schedule."""

    class Validated(Recorder):
        def __init__(self) -> None:
            super().__init__()
            self.validated_after: list[int] = []

        def on_validation_end(self, trainer, pl_module) -> None:
            if not trainer.sanity_checking:
                self.validated_after.append(trainer.global_step)
            super().on_validation_end(trainer, pl_module)

    rec = Validated()
    make_trainer([rec], **options).fit(FixedModule(), train_loader(), val_loader())
    follows = [index + 1 for index, view in enumerate(rec.lightning) if view.validation_follows]
    assert rec.validated_after and follows == rec.validated_after


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


def test_summary_keeps_tensors_until_report_and_matches_float64_mean() -> None:
    summary = Summary()
    values = [torch.tensor(v, dtype=torch.float32) for v in (0.1, 0.2, 0.7)]
    for v in values:
        summary.add({"a": v, "b": 2.0, "skip": torch.ones(3)})
    assert isinstance(summary._sums["a"], torch.Tensor) and summary._sums["a"].dtype == torch.float64
    assert "skip" not in summary
    means = summary.compute_mean()
    assert means == {"a": sum(float(v) for v in values) / 3, "b": 2.0}
    state = summary.state_dict()
    restored = Summary()
    restored.load_state_dict(state)
    assert restored.compute_mean() == means


def test_log_report_accumulates_tensors_between_reports(tmp_path: Path) -> None:
    class Probe(Extension):
        seen: list = []

        def __call__(self, step) -> None:
            report = next(c for c in step.trainer.callbacks if isinstance(c, LogReport))
            self.seen.append({k: type(v) for k, v in report._summary._sums.items()})

    make_trainer([LogReport(out=str(tmp_path)), Probe()], max_epochs=1).fit(FixedModule(), train_loader())
    assert Probe.seen[3] == {"main/loss": torch.Tensor, "main/accuracy": torch.Tensor}


def test_log_report_jsonl_filename_template_and_postprocess(tmp_path: Path) -> None:
    def add_note(entry: dict) -> None:
        entry["note"] = "x"

    cbs = [
        LogReport(out=str(tmp_path), format="jsonl", filename="log.jsonl", postprocess=add_note),
        LogReport(out=str(tmp_path), filename="log_{epoch}", keys=["main/loss"]),
    ]
    make_trainer(cbs, max_epochs=2).fit(FixedModule(), train_loader())
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]
    assert json.loads(lines[0])["note"] == "x"
    assert len(json.loads((tmp_path / "log_2").read_text())) == 2  # each file holds the full history, as Chainer
    assert list(json.loads((tmp_path / "log_1").read_text())[0]) == ["main/loss", "epoch", "iteration", "elapsed_time"]
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]


def test_evaluator_weighted_gives_per_sample_mean_and_restores_train_mode(tmp_path: Path) -> None:
    class SizeModule(FixedModule):
        def validation_step(self, batch, batch_idx):
            n = batch[0].shape[0]
            self.log("validation/main/loss", torch.tensor(float(n)), batch_size=n)

    module = SizeModule()
    cbs = [
        Evaluator(val_loader(6), name="test", trigger=(1, "epoch")),
        Evaluator(val_loader(6), name="exact", weighted=True),
        LogReport(out=str(tmp_path)),
    ]
    make_trainer(cbs, max_epochs=1, limit_val_batches=0).fit(module, train_loader())
    entry = cbs[2].log[0]
    assert entry["test/main/loss"] == 3.0  # batches of 4 and 2: mean of batch means
    assert entry["exact/main/loss"] == (4 * 4 + 2 * 2) / 6
    assert module.training and "log" not in module.__dict__


def test_observe_lr_and_linear_shift(tmp_path: Path) -> None:
    cbs = [observe_lr(), LinearShift("lr", (0.1, 0.3), (1, 3), trigger=(1, "epoch")), LogReport(out=str(tmp_path))]
    make_trainer(cbs, max_epochs=4).fit(FixedModule(), train_loader())
    assert [e["lr"] for e in cbs[2].log] == pytest.approx([0.1, 0.1, 0.2, 0.3])


def test_micro_average_reports_ratio_of_sums(tmp_path: Path) -> None:
    class Counts(FixedModule):
        def training_step(self, batch, batch_idx):
            self.log("main/correct", torch.tensor(float(batch_idx % 3)), on_step=True, on_epoch=False)
            self.log("main/total", torch.tensor(4.0), on_step=True, on_epoch=False)
            return super().training_step(batch, batch_idx)

    cbs = [MicroAverage("main/correct", "main/total", "main/micro"), LogReport(out=str(tmp_path))]
    make_trainer(cbs, max_epochs=1).fit(Counts(), train_loader())
    assert cbs[1].log[0]["main/micro"] == sum(i % 3 for i in range(8)) / 32


def test_fail_on_non_number_names_the_first_bad_iteration() -> None:
    class Diverging(FixedModule):
        def training_step(self, batch, batch_idx):
            loss = super().training_step(batch, batch_idx)
            return loss * float("inf") if self.global_step >= 2 else loss

    with pytest.raises(RuntimeError, match="at iteration 3"):
        make_trainer([FailOnNonNumber(trigger=(1, "epoch"))], max_epochs=1).fit(Diverging(), train_loader())


def test_best_value_and_manual_schedule_triggers(tmp_path: Path) -> None:
    class Fired(Extension):
        def __init__(self, trigger, name: str) -> None:
            super().__init__(trigger, name=name)
            self.at: list[int] = []

        def __call__(self, step) -> None:
            self.at.append(step.iteration)

    best_loss = Fired(MinValueTrigger("main/loss"), "loss")
    best_acc = Fired(MaxValueTrigger("main/accuracy", trigger=(4, "iteration")), "acc")
    manual = Fired(ManualScheduleTrigger([0.5, 2], "epoch"), "manual")
    cbs = [best_loss, best_acc, manual, LogReport(out=str(tmp_path), trigger=(4, "iteration"))]
    make_trainer(cbs, max_epochs=3).fit(FixedModule(), train_loader())
    log = cbs[3].log
    losses = [e["main/loss"] for e in log[1::2]]  # epoch ends
    expected, best = [], None
    for e, loss in zip(log[1::2], losses, strict=True):
        if best is None or loss < best:
            best = loss
            expected.append(e["iteration"])
    assert best_loss.at == expected
    expected, best = [], None
    for e in log:
        if best is None or e["main/accuracy"] > best:
            best = e["main/accuracy"]
            expected.append(e["iteration"])
    assert best_acc.at == expected
    assert manual.at == [4, 16] and manual.trigger.finished


def test_plot_report_writes_png_and_keeps_points(tmp_path: Path) -> None:
    cbs = [PlotReport(["main/loss", "validation/main/loss"], out=str(tmp_path), filename="loss.png")]
    make_trainer(cbs, max_epochs=2).fit(FixedModule(), train_loader(), val_loader())
    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p[0] for p in cbs[0].data["main/loss"]] == [8, 16]
    assert cbs[0].state_dict()["extension"]["data"]["validation/main/loss"][0][0] == 8


def test_plot_report_redraw_interval_holds_drawing_back_until_the_end(tmp_path: Path) -> None:
    drawn: list[bytes] = []

    class Look(L.Callback):
        def on_train_epoch_end(self, trainer, pl_module) -> None:
            drawn.append((tmp_path / "loss.png").read_bytes())

    plot = PlotReport(["main/loss"], x_key="epoch", out=str(tmp_path), filename="loss.png", redraw_interval=1e9)
    make_trainer([plot, Look()], max_epochs=3).fit(FixedModule(), train_loader())
    assert drawn[0] == drawn[1] == drawn[2]  # drawn once at epoch 1, then held back ...
    assert [p[0] for p in plot.data["main/loss"]] == [1, 2, 3]  # ... while every point is kept ...
    assert (tmp_path / "loss.png").read_bytes() != drawn[2]  # ... and drawn when training ends


def test_progress_bar_plain_lines_when_not_a_terminal_and_replaces_tqdm() -> None:
    out = io.StringIO()
    bar = ProgressBar(update_interval=4, out=out)
    trainer = make_trainer([bar], max_epochs=2)
    trainer.fit(FixedModule(), train_loader())
    assert trainer.progress_bar_callback is bar
    lines = out.getvalue().splitlines()
    assert len(lines) == 4 and "\x1b" not in out.getvalue()
    assert lines[1].startswith("8 iter, 1 epoch / 2 epochs, total 50.00%, this epoch 0.00%")


def test_snapshot_runs_after_every_trigger_of_its_iteration(tmp_path: Path) -> None:
    cbs = [snapshot(out=str(tmp_path), trigger=(1, "epoch")), snapshot(out=str(tmp_path), filename="s_{epoch}")]
    make_trainer(cbs, max_epochs=1).fit(FixedModule(), train_loader())
    ckpt = torch.load(tmp_path / "snapshot_iter_8", weights_only=True)
    states = [v["trigger"]["previous_iteration"] for k, v in ckpt["callbacks"].items() if k.startswith("Snapshot")]
    assert states == [8, 8]  # Chainer saved 7 for the second one and re-fired it after resume


def test_a_returned_dict_is_an_observation_like_self_log(tmp_path: Path) -> None:
    """training_step may return {'loss': ..., 'main/x': ...} instead of calling self.log every step."""

    class Returning(FixedModule):
        def training_step(self, batch, batch_idx):
            loss = super().training_step(batch, batch_idx)
            return {
                "loss": loss,
                "main/returned": torch.tensor(float(self.global_step)),
                "main/vector": loss.new_ones(2),
            }

    log = LogReport(out=str(tmp_path))
    make_trainer([log], max_epochs=2).fit(Returning(), train_loader())
    per_epoch = [sum(range(e * 8, e * 8 + 8)) / 8 for e in range(2)]
    assert [entry["main/returned"] for entry in log.log] == per_epoch
    assert all("main/vector" not in entry and "loss" not in entry for entry in log.log)
    assert "main/loss" in log.log[0]  # what self.log reported still arrives beside it


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


def test_fail_on_non_number_finds_the_first_bad_loss_across_buffer_flushes(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a 3-loss buffer, 8 steps flush it twice before the epoch's trigger; iteration 5 is still named."""

    class Diverging(FixedModule):
        def training_step(self, batch, batch_idx):
            loss = super().training_step(batch, batch_idx)
            return loss * float("nan") if self.global_step in (4, 6) else loss

    monkeypatch.setattr(FailOnNonNumber, "chunk", 3)
    with pytest.raises(RuntimeError, match="at iteration 5\\."):
        make_trainer([FailOnNonNumber(trigger=(1, "epoch"))], max_epochs=1).fit(Diverging(), train_loader())
