"""Chainer's ``trainer.elapsed_time``: seconds of training, continued across resumes."""

from __future__ import annotations

import time


class ElapsedTime:
    """Seconds of training so far, continued across resumes (Chainer's ``trainer.elapsed_time``)."""

    def __init__(self) -> None:
        self.offset = 0.0
        self._start: float | None = None

    def start(self) -> None:
        self._start = time.perf_counter()

    def __call__(self) -> float:
        return self.offset + (time.perf_counter() - self._start if self._start is not None else 0.0)

    def restore(self, seconds: float) -> None:
        self.offset = float(seconds)
        self._start = None
