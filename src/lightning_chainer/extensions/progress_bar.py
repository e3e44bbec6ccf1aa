"""ProgressBar: Chainer's four-line training progress bar, replacing Lightning's tqdm bar."""

from __future__ import annotations

import collections
import datetime
import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

from lightning.pytorch.callbacks import ProgressBar as LightningProgressBar

from lightning_chainer.extension import Extension
from lightning_chainer.step import PRIORITY_READER, Step

if TYPE_CHECKING:
    import lightning.pytorch as pl


class ProgressBar(Extension, LightningProgressBar):
    """Every ``update_interval`` iterations draws Chainer's bar (total, this epoch, iterations, speed and ETA).

    Being a Lightning ``ProgressBar``, it replaces the tqdm bar (keep ``enable_progress_bar=True``). On a
    terminal (or ``ansi=True``) the output is Chainer's, escape codes included; otherwise (``out.isatty()``
    false, ``ansi=None``) it prints one plain line per update. The length is ``training_length``, else an
    EarlyStoppingTrigger's ``max_trigger``, else ``trainer.max_epochs`` (or ``max_steps``). Rank 0 only.
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
    ) -> None:
        Extension.__init__(self, trigger=(1, "iteration"))
        LightningProgressBar.__init__(self)
        self._training_length = training_length
        self._length: tuple[int | float, str] | None = training_length
        self._update_interval = update_interval
        self._bar_length = bar_length
        self._out = out
        self._ansi = ansi
        self._enabled = True
        self._recent_timing: collections.deque[tuple[int, float, float]] = collections.deque([], maxlen=100)

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
        if self._enabled and step.trainer.is_global_zero and step.iteration % self._update_interval == 0:
            self._update(step)

    def _rates(self, step: Step) -> tuple[float, float, float, float]:
        length, unit = self._length or (1, "epoch")
        rate = min((step.iteration if unit == "iteration" else step.epoch_detail) / length, 1.0)
        epoch_rate = step.epoch_detail - int(step.epoch_detail)
        now = time.time()
        self._recent_timing.append((step.iteration, step.epoch_detail, now))
        old_t, old_e, old_sec = self._recent_timing[0]
        span = now - old_sec
        speed_t = (step.iteration - old_t) / span if span != 0 else float("inf")
        speed_e = (step.epoch_detail - old_e) / span if span != 0 else float("inf")
        remaining = (
            (length - step.iteration) / speed_t if unit == "iteration" else (length - step.epoch_detail) / speed_e
        )
        return rate, epoch_rate, speed_t, max(remaining, 0.0)

    def _update(self, step: Step) -> None:
        length, unit = self._length or (1, "epoch")
        rate, epoch_rate, speed, remaining = self._rates(step)
        eta = datetime.timedelta(seconds=remaining)
        out = self.stream
        if not self._use_ansi():
            out.write(
                f"{step.iteration} iter, {step.epoch} epoch / {length} {unit}s, total {rate:.2%}, "
                f"this epoch {epoch_rate:.2%}, {speed:.5g} iters/sec, ETA {eta}\n"
            )
            out.flush()
            return
        n = self._bar_length
        lines = []
        marks = "#" * int(rate * n)
        lines.append("     total [{}{}] {:6.2%}\n".format(marks, "." * (n - len(marks)), rate))
        marks = "#" * int(epoch_rate * n)
        lines.append("this epoch [{}{}] {:6.2%}\n".format(marks, "." * (n - len(marks)), epoch_rate))
        lines.append(f"{step.iteration:10} iter, {step.epoch} epoch / {length} {unit}s\n")
        lines.append(f"{speed:10.5g} iters/sec. Estimated time to finish: {eta}.\n")
        out.write("\033[J")
        for line in lines:
            out.write(line)
        out.write(f"\033[{len(lines):d}A")
        out.flush()

    def finalize(self, trainer: pl.Trainer) -> None:
        if self._enabled and trainer.is_global_zero and self._use_ansi():
            self.stream.write("\033[J")
            self.stream.flush()
