"""The three-line bar Chainer's ``Evaluator(progress_bar=True)`` draws on ``sys.stdout`` while it evaluates.

Chainer's bar reads its iterator: ``current_position`` (samples so far, back to 0 once the pass is over) and
``epoch_detail`` (the share of the pass done, 1.0 at its end). Over a loader with a length the same numbers are
the samples of the batches seen so far and their share of the dataset, so each frame is Chainer's, escape codes
included. The speed counts the samples seen, so the last frame shows the pass's speed where Chainer's, counting
a position that went back to 0, shows a negative one.
"""

from __future__ import annotations

import collections
import datetime
import sys
import time
from typing import TextIO


class EvaluationBar:
    """One pass of an evaluation: ``update(samples)`` after each batch, ``close()`` at the end.

    Args:
        batches: the number of batches in the pass (the loader's length); the last one shows 100%.
        epoch_size: the number of samples in the pass, or None when the loader's dataset has no length.
        bar_length: the bar's width in characters (Chainer's 50).
        out: where to draw; ``sys.stdout`` at the time of drawing when None, as Chainer.
    """

    def __init__(self, batches: int, epoch_size: int | None, bar_length: int = 50, out: TextIO | None = None) -> None:
        self._batches = batches
        self._epoch_size = epoch_size
        self._bar_length = bar_length
        self._out = out
        self._batch = 0
        self._samples = 0
        self._recent: collections.deque[tuple[int, float, float]] = collections.deque([], maxlen=100)

    @property
    def out(self) -> TextIO:
        return self._out if self._out is not None else sys.stdout

    def update(self, samples: int) -> None:
        """Draw the frame after a batch of ``samples`` samples.

        Args:
            samples: the batch's size.
        """
        self._batch += 1
        self._samples += samples
        done = self._batch >= self._batches
        if self._epoch_size:
            rate = 1.0 if done else self._samples / self._epoch_size
        else:
            rate = self._batch / self._batches
        position = 0 if done else self._samples  # Chainer's iterator starts its next pass at 0
        marks = "#" * int(rate * self._bar_length)
        lines = [f"validation [{marks}{'.' * (self._bar_length - len(marks))}] {rate:6.2%}\n"]
        if self._epoch_size:
            lines.append(f"{position:10} / {self._epoch_size} iterations\n")
        else:
            lines.append(f"{position:10} iterations\n")
        speed, eta = self._speed(rate)
        lines.append(f"{speed:10.5g} iters/sec. Estimated time to finish: {datetime.timedelta(seconds=eta)}.\n")
        out = self.out
        out.write("\033[J")
        for line in lines:
            out.write(line)
        out.write(f"\033[{len(lines):d}A")
        out.flush()

    def _speed(self, rate: float) -> tuple[float, float]:
        """Samples a second over the last 100 frames, and the seconds left at that pace (Chainer's ``inf``, 0 first)."""
        now = time.time()
        self._recent.append((self._samples, rate, now))
        old_samples, old_rate, old_time = self._recent[0]
        span = now - old_time
        if span == 0:
            return float("inf"), 0.0
        speed_rate = (rate - old_rate) / span
        return (self._samples - old_samples) / span, (1.0 - rate) / speed_rate if speed_rate else 0.0

    def close(self) -> None:
        """Erase the bar, as Chainer at the end of an evaluation."""
        self.out.write("\033[J")
        self.out.flush()
