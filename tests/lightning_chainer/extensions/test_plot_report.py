"""PlotReport: the PNG and its points, Chainer's lines, colours and legend, Chainer's file_name, arguments refused
when built, a redraw interval, and a plot that cannot be drawn after a failure."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pytest
from helpers import FixedModule, make_trainer, run_chainer, train_loader, val_loader
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from lightning_chainer.extensions import Evaluator, PlotReport

KEYS = ["main/loss", "validation/main/loss"]


@pytest.fixture
def saved(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """What every ``Figure.savefig`` (Chainer's and ours) draws: lines, colours, points, legend, x ticks."""
    drawn: list[dict[str, Any]] = []
    savefig = Figure.savefig

    def look(figure: Figure, *args: Any, **kwargs: Any) -> None:
        axes = figure.axes[0]
        legend = axes.get_legend()
        drawn.append(
            {
                "lines": [
                    (line.get_label(), to_hex(line.get_color()), list(line.get_xdata()), list(line.get_ydata()))
                    for line in axes.get_lines()
                ],
                "legend": [text.get_text() for text in legend.get_texts()],
                "legend_at": (
                    legend._loc,
                    tuple(legend.get_bbox_to_anchor().transformed(axes.transAxes.inverted()).bounds),
                ),
                "ticks": list(axes.get_xticks()),
                "tight": kwargs.get("bbox_inches"),
            }
        )
        savefig(figure, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", look)
    yield drawn


def test_lines_colours_and_legend_are_chainers_from_the_first_plot_on(tmp_path: Path, saved: list) -> None:
    """With call_before_training, validation has a point before main/loss has one: Chainer redraws in key order."""
    from mnist_lightning.chainer_compat import import_chainer

    import_chainer()
    from chainer import iterators, reporter
    from chainer.training import extensions as E

    def chainer_evaluator(trainer: Any, model: Any) -> Any:
        data = np.zeros((4, 1), dtype=np.float32)
        report = lambda x: reporter.report({"loss": float(trainer.updater.iteration)}, model)  # noqa: E731
        return E.Evaluator(iterators.SerialIterator(data, 4, repeat=False, shuffle=False), model, eval_func=report)

    before = {"call_before_training": True}
    run_chainer(
        [(chainer_evaluator, before), (E.PlotReport(KEYS, "epoch", file_name="loss.png"), before)],
        str(tmp_path / "chainer"),
        epochs=3,
    )
    chainer_plots, saved[:] = list(saved), []
    module = FixedModule()
    cbs = [
        Evaluator(
            val_loader(), eval_func=lambda x: {"main/loss": float(module.global_step)}, call_before_training=True
        ),
        PlotReport(KEYS, "epoch", file_name="loss.png", out=str(tmp_path / "ours"), call_before_training=True),
    ]
    make_trainer(cbs, max_epochs=3).fit(module, train_loader())
    ours = [{k: v for k, v in plot.items() if k != "ticks"} for plot in saved]
    assert ours == [{k: v for k, v in plot.items() if k != "ticks"} for plot in chainer_plots]
    assert [label for label, *_ in ours[0]["lines"]] == ["validation/main/loss"]
    assert [label for label, *_ in ours[-1]["lines"]] == KEYS
    assert os.listdir(tmp_path / "ours") == ["loss.png"]


def test_an_epoch_axis_has_whole_number_ticks(tmp_path: Path, saved: list) -> None:
    plot = PlotReport(["main/loss"], x_key="epoch", out=str(tmp_path), trigger=(1, "epoch"))
    make_trainer([plot], max_epochs=3).fit(FixedModule(), train_loader())
    assert [p[0] for p in plot.data["main/loss"]] == [1, 2, 3]
    assert all(float(tick).is_integer() for tick in saved[-1]["ticks"])


@pytest.mark.parametrize(
    "names",
    [{}, {"filename": "a.png"}, {"file_name": "b.png"}, {"filename": "a.png", "file_name": "b.png"}],
)
def test_filename_and_file_name_name_the_file_as_chainers(names: dict[str, Any]) -> None:
    from mnist_lightning.chainer_compat import import_chainer

    import_chainer()
    from chainer.training import extensions as E

    assert PlotReport(KEYS, **names)._filename == E.PlotReport(KEYS, **names)._file_name


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"y_keys": None}, "y_keys=None) must be an observation key or a list of them"),
        ({"y_keys": ["main/loss", 3]}, "must be an observation key or a list of them"),
        ({"x_key": None}, "x_key=None) must be 'iteration', 'epoch' or an observed key"),
        ({"filename": None, "file_name": None}, "filename=None) must be a file name such as 'loss.png'"),
        ({"marker": "not a marker"}, "is not a matplotlib marker"),
        ({"postprocess": 1}, "must be a function (figure, axes, summary)"),
        ({"redraw_interval": -1}, "must be a number of seconds, 0 or more"),
    ],
)
def test_what_would_fail_at_the_first_plot_is_refused_when_built(kwargs: dict[str, Any], words: str) -> None:
    arguments = {"y_keys": KEYS, **kwargs}
    with pytest.raises((TypeError, ValueError)) as raised:
        PlotReport(**arguments)
    assert words in str(raised.value) and str(raised.value).endswith(".")


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


def test_a_plot_that_cannot_be_drawn_after_a_failure_does_not_hide_it(tmp_path: Path) -> None:
    out = tmp_path / "out"

    class FailsLater(FixedModule):
        def training_step(self, batch, batch_idx):
            if self.global_step == 3:  # iterations 2 and 3 wait to be drawn
                subprocess.run(["chattr", "+i", str(out)], check=True)
                raise ValueError("boom")
            return super().training_step(batch, batch_idx)

    plot = PlotReport(["main/loss"], trigger=(1, "iteration"), out=str(out), redraw_interval=1e9)
    try:
        with pytest.raises(ValueError, match="boom"):
            make_trainer([plot], max_epochs=1).fit(FailsLater(), train_loader())
    finally:
        subprocess.run(["chattr", "-i", str(out)], check=True)
    assert os.listdir(out) == ["plot.png"]
