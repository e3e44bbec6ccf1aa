"""PrintReport: Chainer's console table of LogReport entries, byte for byte."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

from lightning_chainer.extension import Extension
from lightning_chainer.step import PRIORITY_READER, Step

if TYPE_CHECKING:
    import lightning.pytorch as pl

    from lightning_chainer.extensions.log_report import LogReport


def find_callback(trainer: pl.Trainer, ref: Any) -> Any:
    """``ref`` itself when it is an instance, else the first callback whose class is named ``ref``."""
    if not isinstance(ref, str):
        return ref
    for callback in trainer.callbacks:
        if type(callback).__name__ == ref:
            return callback
    raise ValueError(f"no {ref} in trainer.callbacks: add one before this extension needs it.")


class PrintReport(Extension):
    """Prints a header at the first iteration and one row per new LogReport entry (``ESC[J`` before each).

    Columns are ``max(10, len(name))`` wide, values ``'{:<Wg}  '``, blanks for missing keys: Chainer's output.
    It reads the LogReport's entries (named by class, or an instance) and keeps no copy; as Chainer, a resumed
    run prints the header and all restored rows again. Only rank 0 prints. ``out`` defaults to ``sys.stdout``
    at the time of printing.
    """

    priority = PRIORITY_READER

    def __init__(
        self,
        entries: Sequence[str],
        log_report: str | LogReport = "LogReport",
        out: TextIO | None = None,
        *,
        call_before_training: bool = False,
    ) -> None:
        super().__init__(trigger=(1, "iteration"), call_before_training=call_before_training)
        self._entries = list(entries)
        self._log_report = log_report
        self._out = out
        widths = [max(10, len(s)) for s in self._entries]
        self._header_text = "  ".join(f"{{:{w}}}" for w in widths).format(*self._entries) + "\n"
        self._templates = [(e, f"{{:<{w}g}}  ", " " * (w + 2)) for e, w in zip(self._entries, widths, strict=True)]
        self._header: str | None = self._header_text
        self._log_len = 0
        self._found: Any = None  # the LogReport, found once per training run

    def initialize(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._header = self._header_text
        self._log_len = 0
        self._found = None

    def __call__(self, step: Step) -> None:
        if not step.trainer.is_global_zero:
            return
        out = self._out if self._out is not None else sys.stdout
        if self._header:
            out.write(self._header)
            self._header = None
        if self._found is None:
            self._found = find_callback(step.trainer, self._log_report)
        log = self._found.log
        while len(log) > self._log_len:
            out.write("\033[J")
            self._print(out, log[self._log_len])
            self._log_len += 1

    def _print(self, out: TextIO, observation: dict[str, Any]) -> None:
        for entry, template, empty in self._templates:
            out.write(template.format(observation[entry]) if entry in observation else empty)
        out.write("\n")
        if hasattr(out, "flush"):
            out.flush()
