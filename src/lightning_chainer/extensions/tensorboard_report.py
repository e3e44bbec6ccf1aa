"""TensorBoardReport: every LogReport entry in TensorBoard, under the log's names and at the log's iteration.

pytorch-pfn-extras writes its log to TensorBoard with ``LogReport(writer=TensorBoardWriter(...))``; here the
writer is an extension of its own that reads LogReport's entries as LogReport appends them, so the curves show
exactly the numbers of Chainer's ``log`` file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_warn

from lightning_chainer.extension import Extension
from lightning_chainer.extensions.print_report import find_callback
from lightning_chainer.files import resolve_out
from lightning_chainer.step import PRIORITY_READER, Step

if TYPE_CHECKING:
    import lightning.pytorch as pl

    from lightning_chainer.extensions.log_report import LogReport

#: A custom-scalars layout: chart title -> the keys drawn on it, or just the key groups (titled by their keys).
Layout = Mapping[str, Sequence[str]] | Sequence[Sequence[str]]


def custom_scalars(layout: Layout, category: str = "log") -> dict[str, dict[str, list[Any]]]:
    """``layout`` in ``SummaryWriter.add_custom_scalars``'s form: one multi-line chart per group of keys.

    Args:
        layout: chart title -> keys, or a sequence of key groups (each chart titled by its keys).
        category: the dashboard section that holds the charts.
    """
    groups = layout.items() if isinstance(layout, Mapping) else ((", ".join(keys), keys) for keys in layout)
    # TensorBoard matches each entry as a regex from the tag's start: anchored and escaped, a key draws itself
    # alone, so "main/loss" does not also pick up "main/loss_aux".
    return {category: {title: ["Multiline", [re.escape(key) + "$" for key in keys]] for title, keys in groups}}


def mark_restart(writer: Any, step: int) -> None:
    """Write TensorBoard's restart marker (what ``SummaryWriter(purge_step=step)`` writes): readers drop every
    event of this folder at ``step`` or later that came before the marker.

    Args:
        writer: a ``torch.utils.tensorboard.SummaryWriter``.
        step: the first step the run writes.
    """
    from tensorboard.compat.proto.event_pb2 import Event, SessionLog

    if writer.file_writer is None:  # closed: the next write opens a file, which starts with the marker
        writer.purge_step = step
    else:
        writer.file_writer.add_event(Event(step=step, session_log=SessionLog(status=SessionLog.START)))


class TensorBoardReport(Extension):
    """Writes each new LogReport entry to TensorBoard: every number under its own key, at the entry's iteration.

    The values are the entry's interval means (``main/loss``, ``validation/main/accuracy``, ``lr``, ...) and its
    ``elapsed_time``. ``iteration`` is the step itself, and ``epoch`` is left out unless ``keys`` names it:
    Lightning's logger writes an ``epoch`` of its own, at its own steps, whenever it writes. The writer
    is the trainer's Lightning ``TensorBoardLogger`` (``logger.experiment``) when it has one and ``out`` is None,
    else a ``SummaryWriter`` of its own on ``out`` (default: the logger's run folder, else ``result``). Each
    run starts with TensorBoard's restart marker at its first new step, so a resumed run continues the curves
    and TensorBoard drops what an interrupted run wrote after the snapshot; a resume into another folder writes
    the restored entries there first. ``layout`` adds a custom-scalars page with one chart per group of keys
    (e.g. ``main/loss`` with ``validation/main/loss``). Only rank 0 writes. Run it after its LogReport (a later
    place in ``trainer.callbacks``) so each entry is written in the iteration that makes it.

    Args:
        layout: chart title -> keys, or key groups, for TensorBoard's custom-scalars page; None for none.
        keys: the keys to write; None writes every number of an entry but ``iteration`` and ``epoch``.
        log_report: the LogReport to read: an instance, or the class name of one in ``trainer.callbacks``.
        out: the folder of its own ``SummaryWriter``; None uses the logger's writer when there is one.
    """

    priority = PRIORITY_READER

    def __init__(
        self,
        layout: Layout | None = None,
        keys: Iterable[str] | None = None,
        log_report: str | LogReport = "LogReport",
        out: str | None = None,
    ) -> None:
        super().__init__(trigger=(1, "iteration"))
        self._layout = layout
        self._keys = set(keys) if keys is not None else None
        self._log_report = log_report
        self._out = out
        self.out: str | None = out
        self._writer: Any = None
        self._own_writer = False
        self._log: list[dict[str, Any]] = []
        #: How many of the log's entries are in TensorBoard, and the folder they are in (saved in snapshots).
        self._written = 0
        self._log_dir: str | None = None
        self._warned = False

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if stage == "fit":
            self.out = resolve_out(trainer, self._out)  # a collective: every rank takes part

    def initialize(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._log = find_callback(trainer, self._log_report, self).log
        if not trainer.is_global_zero:
            return
        self._writer, self._own_writer = self._open(trainer)
        log_dir = os.path.realpath(self._writer.get_logdir())
        if log_dir != self._log_dir:  # a fresh run, or a resume into another folder: it needs the whole curve
            self._written = 0
            if self._layout is not None:
                self._writer.add_custom_scalars(custom_scalars(self._layout))
        self._log_dir = log_dir
        first = self._log[self._written]["iteration"] if self._written < len(self._log) else trainer.global_step + 1
        # A fresh run marks its start too: one of TensorBoard's readers purges only from the second marker on.
        mark_restart(self._writer, int(first))
        self._write_new(trainer)

    def _open(self, trainer: pl.Trainer) -> tuple[Any, bool]:
        """The logger's SummaryWriter, or one of its own on ``out``; and whether it is its own."""
        if self._out is None:
            for logger in trainer.loggers:
                if isinstance(logger, TensorBoardLogger):
                    return logger.experiment, False
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(log_dir=self.out or "result"), True

    def run(self, step: Step) -> None:
        if len(self._log) > self._written and step.trainer.is_global_zero:
            self._write_new(step.trainer)

    def _write_new(self, trainer: pl.Trainer) -> None:
        entries = self._log[self._written :]
        if not entries:
            return
        for entry in entries:
            iteration = int(entry["iteration"])
            for key, value in entry.items():
                if self._writes(key, value):
                    self._writer.add_scalar(key, value, iteration)
        self._written = len(self._log)
        # On disk before the snapshot of this iteration is, so a killed run loses no point a resume needs.
        self._writer.flush()
        if not self._own_writer:
            self._warn_of_lightnings_writes(trainer, entries[-1])

    def _writes(self, key: str, value: Any) -> bool:
        if key == "iteration" or (key not in self._keys if self._keys is not None else key == "epoch"):
            return False
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    def _warn_of_lightnings_writes(self, trainer: pl.Trainer, entry: dict[str, Any]) -> None:
        """Say once when Lightning's logger writes the same names into this run at its own (0-based) steps."""
        logged = trainer.logged_metrics
        if self._warned or not logged:
            return
        # Lightning adds ``epoch`` to every write of its own.
        both = [key for key in entry if self._writes(key, entry[key]) and (key in logged or key == "epoch")]
        if both:
            self._warned = True
            rank_zero_warn(
                f"TensorBoardReport: Lightning's logger also writes {', '.join(both)} into this TensorBoard run, "
                "at its own steps; log these names with self.log(..., logger=False) so that each curve holds the "
                "log's entries alone."
            )

    def finalize(self, trainer: pl.Trainer) -> None:
        if self._writer is not None:
            if self._own_writer:
                self._writer.close()
            else:
                self._writer.flush()
        self._writer = None

    def extension_state(self) -> dict[str, Any]:
        return {"written": self._written, "log_dir": self._log_dir or ""}

    def load_extension_state(self, state: dict[str, Any]) -> None:
        if not state:
            return
        self._written = int(state["written"])
        self._log_dir = state["log_dir"] or None
