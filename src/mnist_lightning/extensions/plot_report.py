"""PlotReport: Chainer's per-interval plot of observed values, redrawn whole at each trigger (matplotlib Agg)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from mnist_lightning.extensions.observation import PRIORITY_READER, Extension, Step, Summary, resolve_out

if TYPE_CHECKING:
    import lightning.pytorch as pl


class PlotReport(Extension):
    """Averages ``y_keys`` over each interval, appends ``(x, mean)`` and saves ``out/filename`` at ``trigger``.

    ``x_key`` is ``'iteration'``, ``'epoch'`` or an observed key. The legend sits outside the axes and the file is
    written only when there is data, as Chainer; the points travel in checkpoints. Rank 0 draws.
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
    ) -> None:
        super().__init__(trigger)
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

    @property
    def state_key(self) -> str:
        return self._generate_state_key(filename=self._filename)

    @property
    def data(self) -> dict[str, list[list[float]]]:
        """``{y_key: [[x, mean], ...]}`` plotted so far."""
        return self._data

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if stage == "fit":
            self.out = resolve_out(trainer, self._out)

    def run(self, step: Step) -> None:
        self._summary.add(step.observation, self._y_keys)
        if self.trigger(step):
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
            self._draw(summary)

    def _draw(self, summary: Summary) -> None:
        import matplotlib

        matplotlib.use("Agg", force=False)
        from matplotlib.figure import Figure

        fig = Figure()
        ax = fig.add_subplot(111)
        ax.set_xlabel(self._x_key)
        if self._grid:
            ax.grid()
        for k in self._y_keys:
            xy = self._data[k]
            if xy:
                ax.plot([p[0] for p in xy], [p[1] for p in xy], marker=self._marker, label=k)
        if ax.has_data():
            if self._postprocess is not None:
                self._postprocess(fig, ax, summary)
            legend = ax.legend(bbox_to_anchor=(1.05, 1), loc=2, borderaxespad=0.0)
            os.makedirs(self.out or "result", exist_ok=True)
            path = os.path.join(self.out or "result", self._filename)
            tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".tmp.png")
            fig.savefig(tmp, bbox_extra_artists=(legend,), bbox_inches="tight")
            os.replace(tmp, path)

    def extension_state(self) -> dict[str, Any]:
        return {"data": {k: [list(p) for p in v] for k, v in self._data.items()}, "summary": self._summary.state_dict()}

    def load_extension_state(self, state: dict[str, Any]) -> None:
        if state:
            self._data = {k: [list(p) for p in v] for k, v in state["data"].items()}
            self._summary.load_state_dict(state["summary"])
