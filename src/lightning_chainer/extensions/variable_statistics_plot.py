"""VariableStatisticsPlot: Chainer's figure of percentile bands, mean and std of parameters and gradients."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from lightning_chainer.extension import Extension
from lightning_chainer.files import atomic_write, remove_temp_files, resolve_out
from lightning_chainer.reservoir import Reservoir
from lightning_chainer.step import PRIORITY_READER, Step
from lightning_chainer.tensor_statistics import percentile

if TYPE_CHECKING:
    import lightning.pytorch as pl

#: Chainer's colours: matplotlib's C0, and C0 at alpha 0.2 for the bands and error bars.
COLOR = (0.12156862745098039, 0.4666666666666667, 0.7058823529411765, 1.0)
COLOR_TRANSPARENT = COLOR[:3] + (0.2,)


def _unpack(targets: Any) -> tuple[torch.Tensor, ...]:
    """The tensors of ``targets``: a tensor, a module's parameters, or a list or tuple of either."""
    if isinstance(targets, torch.Tensor):
        return (targets,)
    if isinstance(targets, nn.Module):
        return tuple(targets.parameters())
    if isinstance(targets, (list, tuple)):
        return tuple(t for target in targets for t in _unpack(target))
    raise TypeError(f"VariableStatisticsPlot takes tensors, modules or a list of them, not {targets!r}.")


class VariableStatisticsPlot(Extension):
    """Plots the mean, standard deviation and percentiles of ``targets``' values and gradients, as Chainer.

    Every iteration it takes the statistics of all the targets' values together (and of their gradients), and
    keeps a reservoir sample of at most ``max_sample_size`` iterations' worth; at ``trigger`` it draws Chainer's
    figure (a column for ``data`` and one for ``grad``; a row of mean and std, a row of percentile bands) into
    ``out/filename``. Statistics stay on the device until a plot (one copy to the host then). Rank 0 draws, with
    matplotlib's Agg renderer, and the file is written atomically. The sample travels in checkpoints.

    Chainer samples with NumPy's global random state; this makes the same draws from a ``RandomState`` of its own,
    seeded at the first iteration with ``torch.initial_seed()`` and saved in checkpoints (see ``reservoir.py``):
    a run keeps the samples Chainer's would from the same state, a resumed run those an uninterrupted one keeps,
    and the training's own random streams are left alone. Targets without gradients give zeros, as in Chainer.

    Args:
        targets: a tensor (a parameter), a module (its parameters), or a list or tuple of them.
        max_sample_size: how many iterations the reservoir keeps.
        report_data: plot the values' statistics.
        report_grad: plot the gradients' statistics.
        plot_mean: plot the mean.
        plot_std: plot the standard deviation (``ddof=0``).
        percentile_sigmas: a percentile in [0, 100], or a sequence of them, drawn as bands between pairs.
        trigger: when to draw the plot.
        filename: the image's name in ``out``; Chainer's ``file_name`` is accepted as an alias.
        figsize: matplotlib's figure size.
        marker: matplotlib's marker of the lines.
        grid: draw a grid.
        out: the output folder; the logger's run folder by default, else ``result``.
    """

    priority = PRIORITY_READER

    def __init__(
        self,
        targets: Any,
        max_sample_size: int = 1000,
        report_data: bool = True,
        report_grad: bool = True,
        plot_mean: bool = True,
        plot_std: bool = True,
        percentile_sigmas: float | Sequence[float] = (0, 0.13, 2.28, 15.87, 50, 84.13, 97.72, 99.87, 100),
        trigger: Any = (1, "epoch"),
        filename: str | None = None,
        figsize: tuple[float, float] | None = None,
        marker: str | None = None,
        grid: bool = True,
        *,
        out: str | None = None,
        **kwargs: Any,
    ) -> None:
        file_name = kwargs.pop("file_name", None)
        if kwargs:
            raise TypeError(
                f"VariableStatisticsPlot got an unexpected keyword argument {next(iter(kwargs))!r}: use filename=."
            )
        if filename is not None and file_name is not None:
            raise ValueError("VariableStatisticsPlot takes filename or its alias file_name, not both: pass filename=.")
        super().__init__(trigger)
        self._vars = _unpack(targets)
        if not self._vars:
            raise ValueError("VariableStatisticsPlot needs a tensor: pass a parameter or a module that has some.")
        if not any((plot_mean, plot_std, bool(percentile_sigmas))):
            raise ValueError(
                "VariableStatisticsPlot has nothing to plot: set plot_mean, plot_std or percentile_sigmas."
            )
        if not isinstance(max_sample_size, int) or max_sample_size < 1:
            raise ValueError(f"max_sample_size must be a positive int, not {max_sample_size!r}.")
        self._keys = [k for k, on in (("data", report_data), ("grad", report_grad)) if on]
        if not self._keys:
            raise ValueError("VariableStatisticsPlot has nothing to plot: set report_data or report_grad.")
        self._plot_mean = plot_mean
        self._plot_std = plot_std
        self._plot_percentile = bool(percentile_sigmas)
        self._sigmas = percentile_sigmas if self._plot_percentile else ()
        scalar = not isinstance(percentile_sigmas, (list, tuple))
        n_percentile = 0 if not self._plot_percentile else 1 if scalar else len(percentile_sigmas)  # type: ignore[arg-type]
        self._data_shape = (len(self._keys), int(plot_mean) + int(plot_std) + n_percentile)
        self._samples = Reservoir(max_sample_size, self._data_shape)
        self._filename = filename or file_name or "statistics.png"
        self._figsize = figsize
        self._marker = marker
        self._grid = grid
        self._out = out
        self.out: str | None = out

    def _state_key_fields(self) -> dict[str, Any]:
        return dict(filename=self._filename)

    @staticmethod
    def available() -> bool:
        """Whether matplotlib can be imported (Chainer's check; this project installs it)."""
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            return False
        return True

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if stage == "fit":
            self.out = resolve_out(trainer, self._out)
            if trainer.is_global_zero:
                remove_temp_files(self.out, self._filename)

    def _statistics(self) -> torch.Tensor:
        """This iteration's ``(keys, statistics)``, float32 as Chainer's, on the targets' device."""
        device = self._vars[0].device
        rows = []
        for key in self._keys:
            found = (v if key == "data" else v.grad for v in self._vars)
            xs = [x.detach().reshape(-1).to(device) for x in found if x is not None]
            if not xs:
                rows.append(torch.zeros(self._data_shape[1], dtype=torch.float32, device=device))
                continue
            x = torch.cat(xs)
            stats = []
            if self._plot_mean:
                stats.append(x.mean().reshape(1).to(torch.float64))
            if self._plot_std:
                stats.append(x.std(correction=0).reshape(1).to(torch.float64))
            if self._plot_percentile:
                stats.append(percentile(x, self._sigmas).reshape(-1))
            rows.append(torch.cat(stats).to(torch.float32))
        return torch.stack(rows)

    def run(self, step: Step) -> None:
        self._samples.add(self._statistics(), step.iteration)
        if self.trigger(step):
            self(step)

    def __call__(self, step: Step) -> None:
        if step.trainer.is_global_zero:
            self.save_plot(os.path.join(self.out or "result", self._filename))

    def save_plot(self, path: str) -> None:
        """Draw Chainer's figure of the sample and write it to ``path`` atomically."""
        from matplotlib.figure import Figure

        figure = Figure(figsize=self._figsize)
        self._draw(figure)
        extension = os.path.splitext(path)[1].lstrip(".").lower()
        buffer = io.BytesIO()
        figure.savefig(buffer, format=extension if extension in figure.canvas.get_supported_filetypes() else None)
        atomic_write(path, buffer.getbuffer())

    def _draw(self, figure: Any) -> None:
        nrows = int(self._plot_mean or self._plot_std) + int(self._plot_percentile)
        ncols = len(self._keys)
        axes = figure.subplots(nrows, ncols, sharex=True, squeeze=False)
        idxs, data = self._samples.get_data()
        offset = int(self._plot_mean) + int(self._plot_std)
        n_percentile = data.shape[-1] - offset
        middle, odd = n_percentile // 2, n_percentile % 2 == 1
        for col in range(ncols):
            row = 0
            ax = axes[row, col]
            ax.set_title(self._keys[col])
            if self._plot_mean or self._plot_std:
                if self._plot_mean and self._plot_std:
                    ax.errorbar(
                        idxs,
                        data[:, col, 0],
                        data[:, col, 1],
                        color=COLOR,
                        ecolor=COLOR_TRANSPARENT,
                        label="mean, std",
                        marker=self._marker,
                    )
                else:
                    label = "mean" if self._plot_mean else "std"
                    ax.plot(idxs, data[:, col, 0], color=COLOR, label=label, marker=self._marker)
                row += 1
            if self._plot_percentile:
                ax = axes[row, col]
                for i in range(middle + 1):
                    if odd and i == middle:  # the middle percentile of an odd number is a line, not a band
                        ax.plot(idxs, data[:, col, offset + i], color=COLOR, label="percentile", marker=self._marker)
                    else:
                        label = "percentile" if i == middle else "_nolegend_"
                        ax.fill_between(
                            idxs,
                            data[:, col, offset + i],
                            data[:, col, -i - 1],
                            label=label,
                            alpha=0.2,
                            linewidth=0,
                            color=COLOR_TRANSPARENT,
                        )
                    ax.set_xlabel("iteration")
        for ax in axes.ravel():
            ax.legend()
            if self._grid:
                ax.grid()
                ax.set_axisbelow(True)

    def extension_state(self) -> dict[str, Any]:
        return {"samples": self._samples.state_dict()}

    def load_extension_state(self, state: dict[str, Any]) -> None:
        if state:
            self._samples.load_state_dict(state["samples"])
