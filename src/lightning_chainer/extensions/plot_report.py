"""PlotReport: Chainer's per-interval plot of observed values, redrawn whole at each trigger (matplotlib Agg)."""

from __future__ import annotations

import io
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from lightning_chainer.extension import Extension
from lightning_chainer.files import WriteError, atomic_write, remove_temp_files, resolve_out
from lightning_chainer.step import PRIORITY_READER, Step
from lightning_chainer.summary import Summary
from lightning_chainer.templates import literal_template

if TYPE_CHECKING:
    import lightning.pytorch as pl


class PlotReport(Extension):
    """Averages ``y_keys`` over each interval, appends ``(x, mean)`` and saves ``out/filename`` at ``trigger``.

    ``x_key`` is ``'iteration'``, ``'epoch'`` or an observed key. As Chainer's, the file is written only when
    there is data, the lines are drawn in ``y_keys`` order (those with points so far), each in the next colour of
    matplotlib's cycle, and the legend sits beside the axes at the top right, inside the tightly cropped image;
    an epoch axis has whole-number ticks. The points travel in checkpoints. Rank 0 draws, with matplotlib's Agg
    renderer. A plot costs tens of milliseconds, a lot next to a short epoch on a GPU: ``redraw_interval=S``
    redraws at most every S seconds (and once more when training ends), while every point is still recorded at
    its trigger. The file is written inside ``out`` under a temp name and renamed (see ``files.py``); a failed
    write raises ``WriteError`` and keeps the previous plot.

    Args:
        y_keys: the observation key, or keys, to plot.
        x_key: ``'iteration'``, ``'epoch'`` or an observed key.
        trigger: when to add a point and redraw.
        postprocess: ``postprocess(figure, axes, summary)`` may change the figure before it is saved.
        filename: the image's file name (not a template); its extension picks the format. None: ``file_name``.
        marker: the points' matplotlib marker; None draws none.
        grid: draw the axes' grid.
        out: the folder; None: the logger's run folder, else ``result``.
        redraw_interval: the least number of seconds between two redraws.
        file_name: Chainer's other name of ``filename``, used when ``filename`` is None.
        call_before_training: also add a point at iteration 0.
    """

    priority = PRIORITY_READER

    def __init__(
        self,
        y_keys: str | Sequence[str],
        x_key: str = "iteration",
        trigger: Any = (1, "epoch"),
        postprocess: Callable[[Any, Any, Any], None] | None = None,
        filename: str | None = None,
        marker: str | None = "x",
        grid: bool = True,
        out: str | os.PathLike[str] | None = None,
        redraw_interval: float = 0.0,
        *,
        file_name: str | None = "plot.png",
        call_before_training: bool = False,
    ) -> None:
        super().__init__(trigger, call_before_training=call_before_training)
        if filename is None:
            filename = file_name  # Chainer's precedence: filename, else file_name
        _check_arguments(y_keys, x_key, postprocess, filename, marker, redraw_interval)
        self._redraw_interval = float(redraw_interval)
        self._last_draw = -math.inf
        self._undrawn: Summary | None = None
        self._y_keys = [y_keys] if isinstance(y_keys, str) else list(y_keys)
        self._x_key = x_key
        self._postprocess = postprocess
        self._filename: str = filename  # type: ignore[assignment]
        self._marker = marker
        self._grid = bool(grid)
        out = os.fspath(out) if out is not None else None
        self._out = out
        self.out: str | None = out
        self._summary = Summary()
        self._data: dict[str, list[list[float]]] = {k: [] for k in self._y_keys}
        self._figure: Any = None
        self._lines: dict[str, Any] = {}
        self._legend: Any = None
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
                remove_temp_files(self.out, literal_template(self._filename))

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
        """Save the plot; without ``postprocess`` one figure is kept while the keys with points stay the same.

        Chainer draws a fresh figure each time, so a line's colour is its place among the keys that have points;
        a kept figure whose lines only get new points draws the same image for less (a fresh figure costs about
        twice as much on this project's CPU), and is rebuilt whenever another key gets its first point.
        """
        drawn = [k for k in self._y_keys if self._data[k]]
        if not drawn:
            return
        if self._postprocess is not None or drawn != self._legend_keys:
            self._figure = None
        figure, axes = self._figure_and_axes()
        for k in drawn:
            xs, ys = [p[0] for p in self._data[k]], [p[1] for p in self._data[k]]
            if k in self._lines:
                self._lines[k].set_data(xs, ys)
            else:
                (self._lines[k],) = axes.plot(xs, ys, marker=self._marker, label=k)
        axes.relim()
        axes.autoscale_view()
        if self._postprocess is not None:
            self._postprocess(figure, axes, summary)
        if drawn != self._legend_keys:
            self._legend = axes.legend(bbox_to_anchor=(1.05, 1), loc=2, borderaxespad=0.0)  # Chainer's place
            self._legend_keys = drawn
        buffer = io.BytesIO()
        figure.savefig(
            buffer, format=self._image_format(figure), bbox_extra_artists=(self._legend,), bbox_inches="tight"
        )
        atomic_write(os.path.join(self.out or "result", self._filename), buffer.getbuffer())

    def _image_format(self, figure: Any) -> str | None:
        """The format the file name's extension asks for; None (matplotlib's default, PNG) for an unknown one."""
        extension = os.path.splitext(self._filename)[1].lstrip(".").lower()
        return extension if extension in figure.canvas.get_supported_filetypes() else None

    def _figure_and_axes(self) -> tuple[Any, Any]:
        if self._figure is None:
            from matplotlib.figure import Figure
            from matplotlib.ticker import MaxNLocator

            self._figure = Figure()
            axes = self._figure.add_subplot(111)
            axes.set_xlabel(self._x_key)
            if self._x_key == "epoch":
                axes.xaxis.set_major_locator(MaxNLocator(integer=True))
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


def _check_arguments(
    y_keys: Any, x_key: Any, postprocess: Any, filename: Any, marker: Any, redraw_interval: Any
) -> None:
    """Refuse, in one sentence, what would fail at the first plot."""
    keys = [y_keys] if isinstance(y_keys, str) else y_keys
    if keys is None or not isinstance(keys, Iterable) or not all(isinstance(k, str) for k in keys):
        raise TypeError(f"PlotReport(y_keys={y_keys!r}) must be an observation key or a list of them.")
    if not isinstance(x_key, str):
        raise TypeError(f"PlotReport(x_key={x_key!r}) must be 'iteration', 'epoch' or an observed key.")
    if postprocess is not None and not callable(postprocess):
        raise TypeError(f"PlotReport(postprocess={postprocess!r}) must be a function (figure, axes, summary).")
    if not isinstance(filename, str) or not filename:
        raise TypeError(f"PlotReport(filename={filename!r}) must be a file name such as 'loss.png'.")
    if not isinstance(redraw_interval, (int, float)) or isinstance(redraw_interval, bool) or redraw_interval < 0:
        raise ValueError(f"PlotReport(redraw_interval={redraw_interval!r}) must be a number of seconds, 0 or more.")
    if marker is not None:
        from matplotlib.markers import MarkerStyle

        try:
            MarkerStyle(marker)
        except (ValueError, TypeError):
            raise ValueError(
                f"PlotReport(marker={marker!r}) is not a matplotlib marker: use one such as 'x', 'o', '.', or None."
            ) from None
