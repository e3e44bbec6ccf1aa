"""TensorBoardReport: the log's entries in TensorBoard at the log's iterations, read back with TensorBoard's own
reader; the custom-scalars layout; a resume that continues the curves; its own writer; Lightning's clashing writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import FixedModule, make_trainer, train_loader, val_loader
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.custom_scalar import layout_pb2

from lightning_chainer.extensions import LogReport, TensorBoardReport, observe_lr, snapshot


class QuietModule(FixedModule):
    """FixedModule with every value kept from Lightning's logger, so TensorBoard holds what the extension writes."""

    def log(self, *args: Any, **kwargs: Any) -> None:
        super().log(*args, **{**kwargs, "logger": False})


def read_events(folder: Path) -> EventAccumulator:
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    return events


def curves(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag of the run in ``folder``: its (step, value) points in the order TensorBoard keeps them."""
    events = read_events(folder)
    return {tag: [(s.step, s.value) for s in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def log_curves(log: list[dict[str, Any]]) -> dict[str, list[tuple[int, float]]]:
    """The same view of a LogReport's entries: each key but ``iteration`` and ``epoch`` at the entry's iteration."""
    expected: dict[str, list[tuple[int, float]]] = {}
    for entry in log:
        for key, value in entry.items():
            if key not in ("iteration", "epoch"):
                expected.setdefault(key, []).append((entry["iteration"], value))
    return expected


def assert_same_curves(actual: dict[str, list[tuple[int, float]]], log: list[dict[str, Any]]) -> None:
    expected = log_curves(log)
    assert sorted(actual) == sorted(expected)
    for key, points in expected.items():
        assert [step for step, _ in actual[key]] == [step for step, _ in points], key
        assert [value for _, value in actual[key]] == pytest.approx([value for _, value in points], rel=1e-6), key


def layouts(folder: Path) -> list[layout_pb2.Layout]:
    events = read_events(folder)
    return [
        layout_pb2.Layout.FromString(e.tensor_proto.string_val[0]) for e in events.Tensors("custom_scalars__config__")
    ]


def logger_at(folder: Path, version: int = 0) -> TensorBoardLogger:
    return TensorBoardLogger(str(folder), name="", version=version, default_hp_metric=False)


def test_every_log_entry_lands_at_its_iteration_under_the_logs_names(tmp_path: Path) -> None:
    logger = logger_at(tmp_path / "tb")
    report = LogReport(trigger=(3, "iteration"), out=str(tmp_path))
    groups = {"loss": ["main/loss", "validation/main/loss"], "accuracy": ["main/accuracy", "validation/main/accuracy"]}
    callbacks = [observe_lr(trigger=(3, "iteration")), report, TensorBoardReport(layout=groups)]
    make_trainer(callbacks, max_epochs=2, logger=logger).fit(QuietModule(), train_loader(), val_loader())

    assert [e["iteration"] for e in report.log] == [3, 6, 9, 12, 15]  # Chainer's 1-based count, 8 an epoch
    assert "validation/main/loss" in report.log[2] and "validation/main/loss" not in report.log[1]
    assert_same_curves(curves(Path(logger.log_dir)), report.log)
    (layout,) = layouts(Path(logger.log_dir))
    (category,) = layout.category
    charts = {chart.title: list(chart.multiline.tag) for chart in category.chart}
    assert charts == {
        "loss": ["main/loss$", "validation/main/loss$"],
        "accuracy": ["main/accuracy$", "validation/main/accuracy$"],
    }


def test_a_resume_continues_the_curves_and_a_resume_elsewhere_writes_the_whole_log(tmp_path: Path) -> None:
    def fit(version: int, epochs: int, ckpt_path: Path | None = None) -> LogReport:
        report = LogReport(out=str(tmp_path / "out"))
        callbacks = [observe_lr(), report, TensorBoardReport(layout=[["main/loss", "validation/main/loss"]])]
        callbacks.append(snapshot(out=str(tmp_path / "out"), filename=f"snapshot_{version}_{{iteration}}"))
        trainer = make_trainer(callbacks, max_epochs=epochs, logger=logger_at(tmp_path / "tb", version))
        trainer.fit(QuietModule(), train_loader(), val_loader(), ckpt_path=ckpt_path)
        return report

    first = fit(0, 3)
    assert [step for step, _ in curves(tmp_path / "tb" / "version_0")["main/loss"]] == [8, 16, 24]
    # Back to the first epoch's snapshot: the run folder already holds iterations 16 and 24.
    again = fit(0, 3, tmp_path / "out" / "snapshot_0_8")
    elsewhere = fit(1, 3, tmp_path / "out" / "snapshot_0_8")
    assert again.log[0] == first.log[0] and [e["iteration"] for e in again.log] == [8, 16, 24]
    assert_same_curves(curves(tmp_path / "tb" / "version_0"), again.log)
    assert len(layouts(tmp_path / "tb" / "version_0")) == 1
    assert_same_curves(curves(tmp_path / "tb" / "version_1"), elsewhere.log)
    assert len(layouts(tmp_path / "tb" / "version_1")) == 1


def test_without_a_tensorboard_logger_it_writes_a_folder_of_its_own(tmp_path: Path) -> None:
    report = LogReport(out=str(tmp_path), keys=["main/loss"])
    callbacks = [report, TensorBoardReport(keys=["main/loss", "epoch"], out=str(tmp_path / "tb"))]
    make_trainer(callbacks, max_epochs=2).fit(QuietModule(), train_loader())
    points = curves(tmp_path / "tb")
    assert sorted(points) == ["epoch", "main/loss"]
    assert points["epoch"] == [(8, 1.0), (16, 2.0)]
    assert [value for _, value in points["main/loss"]] == pytest.approx([e["main/loss"] for e in report.log], rel=1e-6)


def test_it_warns_once_when_lightnings_logger_writes_the_same_names(tmp_path: Path) -> None:
    callbacks = [LogReport(out=str(tmp_path)), TensorBoardReport()]
    trainer = make_trainer(callbacks, max_epochs=2, logger=logger_at(tmp_path / "tb"))
    with pytest.warns(UserWarning, match=r"also writes .*validation/main/accuracy into") as seen:
        trainer.fit(FixedModule(), train_loader(), val_loader())
    assert len([w for w in seen if "TensorBoardReport" in str(w.message)]) == 1
