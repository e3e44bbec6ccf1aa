"""ProgressBar: Chainer's four-line training progress bar, replacing Lightning's tqdm bar."""

from __future__ import annotations

import collections
import datetime
import sys
import time
from numbers import Real
from typing import TYPE_CHECKING, Any, TextIO

from lightning.pytorch.callbacks import ProgressBar as LightningProgressBar

from lightning_chainer.extension import Extension
from lightning_chainer.extensions import notebook as nb
from lightning_chainer.step import PRIORITY_READER, Step

if TYPE_CHECKING:
    import lightning.pytorch as pl

#: Where the bar stands: ``(iteration, epoch, epoch_detail)``.
Position = tuple[int, int, float]


def _check_arguments(training_length: Any, update_interval: Any, bar_length: Any, ansi: Any) -> None:
    """Raise, in one sentence, at the first argument Chainer's ProgressBar could not draw with."""
    if training_length is not None:
        ok = isinstance(training_length, (tuple, list)) and len(training_length) == 2
        if ok:
            length, unit = training_length
            ok = isinstance(length, Real) and not isinstance(length, bool) and length > 0
            ok = ok and unit in ("epoch", "iteration")
        if not ok:
            raise ValueError(
                f"ProgressBar(training_length={training_length!r}) must be a (length, 'epoch') or "
                "(length, 'iteration') tuple such as (10, 'epoch'), or None for the trainer's max_epochs."
            )
    for name, value in (("update_interval", update_interval), ("bar_length", bar_length)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"ProgressBar({name}={value!r}) must be a positive whole number, e.g. {name}=100.")
    if ansi is not None and not isinstance(ansi, bool):
        raise TypeError(f"ProgressBar(ansi={ansi!r}) must be None (escape codes on a terminal), True or False.")


class ProgressBar(Extension, LightningProgressBar):
    """Every ``update_interval`` iterations draws Chainer's bar (total, this epoch, iterations, speed and ETA).

    Being a Lightning ``ProgressBar``, it replaces the tqdm bar (keep ``enable_progress_bar=True``). On a
    terminal (or ``ansi=True``) the output is Chainer's, escape codes included; otherwise (``out.isatty()``
    false, ``ansi=None``) it prints one plain line per update. Inside Jupyter it draws the same four lines in one
    output area that is updated in place (no escape codes), and draws the last iteration once more at the end;
    ``notebook=True`` or ``notebook=False`` forces either, and an ``out`` other than ``sys.stdout`` gets text.
    Rank 0 only.

    Args:
        training_length: ``(length, 'epoch')`` or ``(length, 'iteration')``; ``None`` takes an
            EarlyStoppingTrigger's ``max_trigger``, else ``trainer.max_epochs`` (or ``max_steps``).
        update_interval: Draw every this many iterations.
        bar_length: The width of each bar in characters.
        out: The stream to draw on; ``None`` means ``sys.stdout`` at the time of drawing.
        ansi: ``None`` uses Chainer's escape codes on a terminal only; ``True`` or ``False`` forces.
        notebook: ``None`` draws in a notebook display inside Jupyter; ``True`` or ``False`` forces.
    """

    priority = PRIORITY_READER

    def __init__(
        self,
        training_length: tuple[int | float, str] | None = None,
        update_interval: int = 100,
        bar_length: int = 50,
        out: TextIO | None = None,
        *,
        ansi: bool | None = None,
        notebook: bool | None = None,
    ) -> None:
        _check_arguments(training_length, update_interval, bar_length, ansi)
        nb.check_notebook_argument(notebook)
        Extension.__init__(self, trigger=(1, "iteration"))
        LightningProgressBar.__init__(self)
        self._training_length = tuple(training_length) if training_length is not None else None
        self._length: tuple[int | float, str] | None = self._training_length  # type: ignore[assignment]
        self._update_interval = update_interval
        self._bar_length = bar_length
        self._out = out
        self._ansi = ansi
        self._notebook = notebook
        self._enabled = True
        self._recent_timing: collections.deque[tuple[int, float, float]] = collections.deque([], maxlen=100)
        self._display: nb.LiveDisplay | None = None
        self._last: Position | None = None  # the last iteration seen, and whether it was drawn
        self._last_drawn = False

    # Lightning's ProgressBar interface
    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def print(self, *args: Any, **kwargs: Any) -> None:
        if self._enabled:
            print(*args, file=self.stream, **kwargs)

    @property
    def stream(self) -> TextIO:
        return self._out if self._out is not None else sys.stdout

    def _use_ansi(self) -> bool:
        if self._ansi is not None:
            return self._ansi
        isatty = getattr(self.stream, "isatty", None)
        return bool(isatty and isatty())

    def initialize(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._recent_timing.clear()
        self._length = self._training_length or self._find_length(trainer)
        self._display = nb.LiveDisplay() if nb.use_notebook(self._notebook, self._out) else None
        self._last, self._last_drawn = None, False

    @staticmethod
    def _find_length(trainer: pl.Trainer) -> tuple[int | float, str]:
        for callback in trainer.callbacks:
            length = getattr(callback, "get_training_length", None)
            if length is not None and length() is not None:
                return length()
        max_epochs = trainer.max_epochs
        if (max_epochs is None or max_epochs < 0) and trainer.max_steps > 0:
            return (trainer.max_steps, "iteration")
        return (max_epochs if max_epochs is not None else 1000, "epoch")

    def __call__(self, step: Step) -> None:
        if not (self._enabled and step.trainer.is_global_zero):
            return
        self._last = (step.iteration, step.epoch, step.epoch_detail)
        self._last_drawn = step.iteration % self._update_interval == 0
        if self._last_drawn:
            self._update(self._last)

    def _frame(self, position: Position) -> tuple[float, float, float, float]:
        """The total and this-epoch rates, iterations per second over the last 100 frames, and the seconds left.

        Each call counts as a frame for the speed, as in Chainer.
        """
        iteration, _, epoch_detail = position
        length, unit = self._length or (1, "epoch")
        rate = min((iteration if unit == "iteration" else epoch_detail) / length, 1.0)
        now = time.time()
        self._recent_timing.append((iteration, epoch_detail, now))
        old_t, old_e, old_sec = self._recent_timing[0]
        span = now - old_sec
        speed_t = (iteration - old_t) / span if span != 0 else float("inf")
        speed_e = (epoch_detail - old_e) / span if span != 0 else float("inf")
        remaining = (length - iteration) / speed_t if unit == "iteration" else (length - epoch_detail) / speed_e
        return rate, epoch_detail - int(epoch_detail), speed_t, max(remaining, 0.0)

    def _lines(self, position: Position, frame: tuple[float, float, float, float]) -> list[str]:
        """Chainer's four lines, each ending in a newline."""
        iteration, epoch, _ = position
        length, unit = self._length or (1, "epoch")
        rate, epoch_rate, speed, remaining = frame
        n = self._bar_length
        total_marks = "#" * int(rate * n)
        epoch_marks = "#" * int(epoch_rate * n)
        return [
            "     total [{}{}] {:6.2%}\n".format(total_marks, "." * (n - len(total_marks)), rate),
            "this epoch [{}{}] {:6.2%}\n".format(epoch_marks, "." * (n - len(epoch_marks)), epoch_rate),
            f"{iteration:10} iter, {epoch} epoch / {length} {unit}s\n",
            f"{speed:10.5g} iters/sec. Estimated time to finish: {datetime.timedelta(seconds=remaining)}.\n",
        ]

    def _update(self, position: Position) -> None:
        frame = self._frame(position)
        if self._display is not None:
            lines = self._lines(position, frame)
            self._display.show(nb.bar_html(lines), "".join(lines).rstrip("\n"))
            return
        out = self.stream
        if not self._use_ansi():
            iteration, epoch, _ = position
            length, unit = self._length or (1, "epoch")
            rate, epoch_rate, speed, remaining = frame
            out.write(
                f"{iteration} iter, {epoch} epoch / {length} {unit}s, total {rate:.2%}, this epoch {epoch_rate:.2%}, "
                f"{speed:.5g} iters/sec, ETA {datetime.timedelta(seconds=remaining)}\n"
            )
            out.flush()
            return
        lines = self._lines(position, frame)
        out.write("\033[J")
        for line in lines:
            out.write(line)
        out.write(f"\033[{len(lines):d}A")
        out.flush()

    def finalize(self, trainer: pl.Trainer) -> None:
        if not (self._enabled and trainer.is_global_zero):
            return
        if self._display is not None:
            # A notebook keeps the bar: show where training ended when that iteration was not drawn.
            if self._last is not None and not self._last_drawn:
                self._update(self._last)
            self._display.close()
        elif self._use_ansi():
            self.stream.write("\033[J")
            self.stream.flush()
