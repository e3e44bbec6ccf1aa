"""PrintReport: Chainer's console table of LogReport entries, byte for byte, or a live table inside Jupyter."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

from lightning_chainer.driver import DRIVERS
from lightning_chainer.extension import Extension
from lightning_chainer.extensions import notebook as nb
from lightning_chainer.extensions.log_report import LogReport
from lightning_chainer.step import PRIORITY_READER, Step

if TYPE_CHECKING:
    import lightning.pytorch as pl


def find_callback(trainer: pl.Trainer, ref: Any, reader: Any = None) -> Any:
    """``ref`` itself when it is an instance, else the extension named ``ref`` (its ``name``, else its class).

    Under an ExtensionsManager the name is one of its unique names (Chainer's ``trainer.get_extension(name)``);
    with ``Trainer(callbacks=[...])`` the first callback so named.

    Args:
        trainer: The trainer whose extensions are searched.
        ref: An extension, or the name of one.
        reader: The extension asking (named in the error when there is none).
    """
    if not isinstance(ref, str):
        return ref
    driver = DRIVERS.get(trainer)
    if driver is not None and driver.lookup is not None:
        return driver.lookup(ref, reader)
    for callback in trainer.callbacks:
        if getattr(callback, "name", None) == ref:
            return callback
    for callback in trainer.callbacks:
        if type(callback).__name__ == ref:
            return callback
    raise ValueError(f"no {ref} in trainer.callbacks: add one before this extension needs it.")


class PrintReport(Extension):
    """Prints a header at the first iteration and one row per new LogReport entry (``ESC[J`` before each).

    Columns are ``max(10, len(name))`` wide, values ``'{:<Wg}  '``, blanks for missing keys: Chainer's output.
    ``log_report`` is the name of a LogReport in ``trainer.callbacks`` (its class name, or its ``name``), or a
    LogReport instance: one that runs as an extension of this fit (in ``trainer.callbacks`` or an
    ExtensionsManager) is read, any other is run by this PrintReport and saved with its state, as in Chainer.
    PrintReport keeps no copy of the log; as Chainer, a resumed run prints the header and all restored rows again.
    Only rank 0 prints.

    Inside Jupyter (see :func:`~lightning_chainer.extensions.notebook.in_notebook`) it shows the same columns
    and numbers as one HTML table that is updated in place, with no escape codes. ``notebook=True`` or
    ``notebook=False`` forces either; an ``out`` other than ``sys.stdout`` gets text.

    Args:
        entries: The keys to print, one column each.
        log_report: A LogReport, or the name of one in ``trainer.callbacks``.
        out: The stream to print to; ``None`` means ``sys.stdout`` at the time of printing.
        notebook: ``None`` shows an HTML table inside Jupyter and text elsewhere; ``True`` or ``False`` forces.
        call_before_training: Also print at iteration 0 of a fresh run.
    """

    priority = PRIORITY_READER

    def __init__(
        self,
        entries: Sequence[str],
        log_report: str | LogReport = "LogReport",
        out: TextIO | None = None,
        *,
        notebook: bool | None = None,
        call_before_training: bool = False,
    ) -> None:
        super().__init__(trigger=(1, "iteration"), call_before_training=call_before_training)
        if isinstance(entries, str) or not all(isinstance(e, str) for e in entries):
            raise TypeError(
                f"entries must be a list of observation keys, e.g. ['epoch', 'main/loss'], got {entries!r}."
            )
        if not isinstance(log_report, (str, LogReport)):
            raise TypeError(
                "log_report must be a LogReport or the name of one in trainer.callbacks (such as 'LogReport'), "
                f"got {type(log_report).__name__}."
            )
        nb.check_notebook_argument(notebook)
        self._entries = list(entries)
        self._log_report = log_report
        self._out = out
        self._notebook = notebook
        widths = [max(10, len(s)) for s in self._entries]
        self._header_text = "  ".join(f"{{:{w}}}" for w in widths).format(*self._entries) + "\n"
        self._templates = [(e, f"{{:<{w}g}}  ", " " * (w + 2)) for e, w in zip(self._entries, widths, strict=True)]
        self._header: str | None = self._header_text
        self._log_len = 0
        self._found: Any = None  # the LogReport, found once per training run
        self._embedded: LogReport | None = None  # a LogReport instance not in trainer.callbacks, run from here
        self._display: nb.LiveDisplay | None = None

    def initialize(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._header = self._header_text
        self._log_len = 0
        self._found = None
        self._display = nb.LiveDisplay() if nb.use_notebook(self._notebook, self._out) else None
        report = self._log_report
        driver = DRIVERS.get(trainer)  # the driver calling this: it runs the extensions of this fit
        driven = driver is not None and any(ext is report for ext in driver.extensions)
        self._embedded = report if isinstance(report, LogReport) and not driven else None
        if self._embedded is not None:
            # Nothing else calls this LogReport's hooks: its setup picks its output folder.
            self._embedded.setup(trainer, pl_module, "fit")
            self._embedded.initialize(trainer, pl_module)

    def run(self, step: Step) -> None:
        if self._embedded is not None:
            self._embedded.run(step)  # on every rank: its means are summed over the ranks
        if self.trigger(step):
            self(step)

    def before_training(self, step: Step) -> None:
        if self._embedded is not None:
            self._embedded.before_training(step)
        self(step)

    def finalize(self, trainer: pl.Trainer) -> None:
        if self._embedded is not None:
            self._embedded.finalize(trainer)

    def __call__(self, step: Step) -> None:
        if not step.trainer.is_global_zero:
            return
        if self._found is None:
            self._found = find_callback(step.trainer, self._log_report, self)
        log = self._found.log
        if self._display is not None:
            self._show(self._display, log)
            return
        out = self._out if self._out is not None else sys.stdout
        if self._header:
            out.write(self._header)
            self._header = None
        while len(log) > self._log_len:
            out.write("\033[J")
            out.write(self.row_text(log[self._log_len]))
            if hasattr(out, "flush"):
                out.flush()
            self._log_len += 1

    def _show(self, display: nb.LiveDisplay, log: Sequence[dict[str, Any]]) -> None:
        """The notebook table: drawn at the first call, redrawn when the log has new entries."""
        if self._header is None and len(log) == self._log_len:
            return
        self._header = None
        self._log_len = len(log)
        text = self._header_text + "".join(self.row_text(entry) for entry in log)
        display.show(nb.report_html(self._entries, log), text)

    def row_text(self, observation: dict[str, Any]) -> str:
        """One row of the text table, as Chainer prints it (without the ``ESC[J`` before it).

        Args:
            observation: A LogReport entry.
        """
        cells = [
            template.format(observation[e]) if e in observation else empty for e, template, empty in self._templates
        ]
        return "".join(cells) + "\n"

    def extension_state(self) -> dict[str, Any]:
        return {"log_report": self._embedded.state_dict()} if self._embedded is not None else {}

    def load_extension_state(self, state: dict[str, Any]) -> None:
        if "log_report" in state and isinstance(self._log_report, LogReport):
            self._log_report.load_state_dict(state["log_report"])
