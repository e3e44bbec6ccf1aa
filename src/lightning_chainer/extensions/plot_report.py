"""PlotReport: Chainer's per-interval plot of observed values, redrawn whole at each trigger (matplotlib Agg)."""

from __future__ import annotations

import io
import math
import os
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from lightning_chainer.extension import Extension
from lightning_chainer.files import WriteError, atomic_write, remove_temp_files, resolve_out
from lightning_chainer.step import PRIORITY_READER, Step
from lightning_chainer.summary import Summary

if TYPE_CHECKING:
    import lightning.pytorch as pl


class PlotReport(Extension):
    """Averages ``y_keys`` over each interval, appends ``(x, mean)`` and saves ``out/filename`` at ``trigger``.

    ``x_key`` is ``'iteration'``, ``'epoch'`` or an observed key. The file is written only when there is data, as
    Chainer, with the legend outside the axes (above them here, beside them in Chainer); the points travel in
    checkpoints. Rank 0 draws, with matplotlib's Agg renderer. A plot costs tens of milliseconds, a lot next to a
    short epoch on a GPU: ``redraw_interval=S`` redraws at most every S seconds (and once more when training
    ends), while every point is still recorded at its trigger. The file is written inside ``out`` under a temp
    name and renamed (see ``files.py``); a failed write raises ``WriteError`` and keeps the previous plot.
    """

    priority = PRIORITY_READER

    def __init__(
        self,
        y_keys: str | Sequence[str],
        x_key: str = "iteration",
        trigger: Any = (1, "epoch"),
        postprocess: Callable[[Any, Any, Any], None] | None = None,
        filename: str = "plot.png",
        marker: str | None = "x",
        grid: bool = True,
        out: str | None = None,
        redraw_interval: float = 0.0,
        *,
        call_before_training: bool = False,
    ) -> None:
        super().__init__(trigger, call_before_training=call_before_training)
        self._redraw_interval = redraw_interval
        self._last_draw = -math.inf
        self._undrawn: Summary | None = None
        self._y_keys = [y_keys] if isinstance(y_keys, str) else list(y_keys)
        self._x_key = x_key
        self._postprocess = postprocess
        self._filename = filename
        self._marker = marker
        self._grid = grid
        self._out = out
        self.out: str | None = out
        self._summary = Summary()
        self._data: dict[str, list[list[float]]] = {k: [] for k in self._y_keys}
        self._figure: Any = None
        self._lines: dict[str, Any] = {}
        self._legend_keys: list[str] = []
        self._failed = False

    def _state_key_fields(self) -> dict[str, Any]:
        return dict(filename=self._filename)

    @property
    def data(self) -> dict[str, list[list[float]]]:
        """``{y_key: [[x, mean], ...]}`` plotted so far."""
        return self._data

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if stage == "fit":
            self.out = resolve_out(trainer, self._out)
            self._failed = False
            if trainer.is_global_zero:
                remove_temp_files(self.out, self._filename)

    def run(self, step: Step) -> None:
        self._summary.add(step.observation, self._y_keys)
        if self.trigger(step):
            self(step)

    def before_training(self, step: Step) -> None:
        self._summary.add(step.observation, self._y_keys)
        self(step)

    def __call__(self, step: Step) -> None:
        stats: dict[str, Any] = dict(self._summary.compute_mean(step.trainer))
        stats["epoch"] = step.epoch
        stats["iteration"] = step.iteration
        summary, self._summary = self._summary, Summary()
        if self._x_key not in stats:
            return
        x = stats[self._x_key]
        for k in self._y_keys:
            if k in stats:
                self._data[k].append([x, stats[k]])
        if step.trainer.is_global_zero:
            self._undrawn = summary
            if time.monotonic() - self._last_draw >= self._redraw_interval:
                self._draw_pending()

    def on_error(self, trainer: pl.Trainer, exception: BaseException) -> None:
        self._failed = True

    def finalize(self, trainer: pl.Trainer) -> None:
        """Draw the points that a ``redraw_interval`` held back, when training ends (or fails)."""
        try:
            self._draw_pending()
        except WriteError:
            # After a failed run (a full disk, say) its own error is the one to report, not the plot's.
            if not self._failed:
                raise

    def _draw_pending(self) -> None:
        if self._undrawn is not None:
            summary, self._undrawn = self._undrawn, None
            self._draw(summary)
            self._last_draw = time.monotonic()

    def _draw(self, summary: Summary) -> None:
        """Save the plot; without ``postprocess`` one figure is kept and only its lines are updated.

        Rebuilding the figure and fitting a tight bounding box cost about 65 ms a plot on this project's CPU, a
        few percent of a LeNet epoch; updating a kept figure laid out once (legend above the axes) costs half.
        """
        figure, axes = self._figure_and_axes()
        lines = {}
        for k in self._y_keys:
            xy = self._data[k]
            if not xy:
                continue
            if self._postprocess is None and k in self._lines:
                self._lines[k].set_data([p[0] for p in xy], [p[1] for p in xy])
            else:
                (self._lines[k],) = axes.plot([p[0] for p in xy], [p[1] for p in xy], marker=self._marker, label=k)
            lines[k] = self._lines[k]
        if not lines:
            return
        axes.relim()
        axes.autoscale_view()
        if self._postprocess is not None:
            self._postprocess(figure, axes, summary)
        if list(lines) != self._legend_keys:
            if axes.get_legend() is not None:
                axes.get_legend().remove()
            axes.legend(loc="lower left", bbox_to_anchor=(0.0, 1.02, 1.0, 0.2), mode="expand", borderaxespad=0.0)
            self._legend_keys = list(lines)
        buffer = io.BytesIO()
        figure.savefig(buffer, format=self._image_format(figure))
        atomic_write(os.path.join(self.out or "result", self._filename), buffer.getbuffer())
        if self._postprocess is not None:
            self._figure = None  # a postprocess may change anything: start from a fresh figure each time

    def _image_format(self, figure: Any) -> str | None:
        """The format the file name's extension asks for; None (matplotlib's default, PNG) for an unknown one."""
        extension = os.path.splitext(self._filename)[1].lstrip(".").lower()
        return extension if extension in figure.canvas.get_supported_filetypes() else None

    def _figure_and_axes(self) -> tuple[Any, Any]:
        if self._figure is None:
            from matplotlib.figure import Figure

            self._figure = Figure()
            self._figure.subplots_adjust(top=0.8)  # room for the legend above the axes
            axes = self._figure.add_subplot(111)
            axes.set_xlabel(self._x_key)
            if self._grid:
                axes.grid()
            self._lines, self._legend_keys = {}, []
        return self._figure, self._figure.axes[0]

    def extension_state(self) -> dict[str, Any]:
        return {"data": {k: [list(p) for p in v] for k, v in self._data.items()}, "summary": self._summary.state_dict()}

    def load_extension_state(self, state: dict[str, Any]) -> None:
        if state:
            self._data = {k: [list(p) for p in v] for k, v in state["data"].items()}
            self._summary.load_state_dict(state["summary"])
