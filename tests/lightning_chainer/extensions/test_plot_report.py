"""PlotReport: the PNG and its points, a redraw interval, and a plot that cannot be drawn after a failure."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import lightning as L
import pytest
from helpers import FixedModule, make_trainer, train_loader, val_loader

from lightning_chainer.extensions import PlotReport


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
