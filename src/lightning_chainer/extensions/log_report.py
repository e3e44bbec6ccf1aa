"""LogReport: Chainer's ``result/log``, the per-interval means of every observation, as a Lightning callback."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from lightning_chainer.elapsed_time import ElapsedTime
from lightning_chainer.extension import Extension
from lightning_chainer.files import append_file, atomic_write, remove_temp_files, resolve_out
from lightning_chainer.step import PRIORITY_READER, Step
from lightning_chainer.summary import Summary
from lightning_chainer.templates import check_entry_template

if TYPE_CHECKING:
    import lightning.pytorch as pl


#: What every entry holds besides the means.
_ENTRY_KEYS = ("epoch", "iteration", "elapsed_time")


class LogReport(Extension):
    """Every iteration adds the observation to a summary; at ``trigger`` appends one entry and writes the log.

    An entry holds the interval's means (each report weighted 1, as Chainer), then ``epoch`` (completed epochs),
    ``iteration`` and ``elapsed_time`` (seconds, continued across resumes). ``format='json'`` rewrites the whole
    list with ``json.dump(indent=4)`` (Chainer's bytes) atomically; ``format='jsonl'`` appends one line per entry.
    ``filename`` may use the entry's keys (``'log_{epoch}'``). As Chainer, ``filename=None`` means
    ``log_name``, Chainer's older name of the argument (default ``'log'``), and ``log_name=None`` (with no
    ``filename``) writes no file. A trailing partial interval is dropped, as Chainer. Only rank 0 writes, inside
    ``out`` (see ``files.py``); a failed write raises ``WriteError`` and leaves the previous file as it was. Means
    are summed over ranks first.

    Args:
        keys: the observation keys to summarise (a list); None: every one.
        trigger: when to append an entry and write the file.
        postprocess: ``postprocess(entry)`` may edit each entry before it is kept and written.
        filename: the file name template, formatted with the entry (``template.format(**entry)``); None: ``log_name``.
        format: ``'json'`` (Chainer's file) or ``'jsonl'`` (one appended line per entry).
        out: the folder; None: the logger's run folder, else ``result``.
        log_name: Chainer's older name of ``filename``, used when ``filename`` is None; None writes no file.
        call_before_training: also report once at iteration 0.
    """

    priority = PRIORITY_READER

    def __init__(
        self,
        keys: Iterable[str] | None = None,
        trigger: Any = (1, "epoch"),
        postprocess: Callable[[dict[str, Any]], None] | None = None,
        filename: str | None = None,
        format: str = "json",
        out: str | os.PathLike[str] | None = None,
        *,
        log_name: str | None = "log",
        call_before_training: bool = False,
    ) -> None:
        super().__init__(trigger, call_before_training=call_before_training)
        if format not in ("json", "jsonl"):
            raise ValueError(f"LogReport(format={format!r}) is not a format: use 'json' or 'jsonl'.")
        if isinstance(keys, str) or (keys is not None and not all(isinstance(k, str) for k in keys)):
            raise TypeError(f"LogReport(keys={keys!r}) must be a list of observation keys, e.g. ['main/loss'].")
        if postprocess is not None and not callable(postprocess):
            raise TypeError(f"LogReport(postprocess={postprocess!r}) must be a function that edits an entry.")
        self._keys = list(keys) if keys is not None else None
        self._postprocess = postprocess
        if filename is None:
            filename = log_name  # Chainer's precedence: filename, else log_name
        if filename is not None:
            known = None if self._keys is None or postprocess is not None else {*self._keys, *_ENTRY_KEYS}
            check_entry_template(filename, "LogReport(filename=...)", known)
        self._filename = filename
        out = os.fspath(out) if out is not None else None
        self._format = format
        self._out = out
        self.out: str | None = out
        self._log: list[dict[str, Any]] = []
        self._summary = Summary()
        self.elapsed_time = ElapsedTime()
        self._jsonl_synced: set[str] = set()

    def _state_key_fields(self) -> dict[str, Any]:
        return dict(filename=self._filename)

    @property
    def log(self) -> list[dict[str, Any]]:
        """The entries written so far (restored ones included after a resume)."""
        return self._log

    @log.setter
    def log(self, value: Any) -> None:
        # Lightning assigns ``callback.log = pl_module.log`` to every callback; keep Chainer's ``log`` list.
        self._lightning_log = value

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if stage == "fit":
            self.out = resolve_out(trainer, self._out)
            if self._filename is not None and trainer.is_global_zero:
                remove_temp_files(self.out, self._filename)

    def initialize(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.elapsed_time.start()
        self._jsonl_synced = set()

    def run(self, step: Step) -> None:
        self._summary.add(step.observation, self._keys)
        if self.trigger(step):
            self(step)

    def before_training(self, step: Step) -> None:
        self._summary.add(step.observation, self._keys)
        self(step)

    def __call__(self, step: Step) -> None:
        entry: dict[str, Any] = dict(self._summary.compute_mean(step.trainer))
        entry["epoch"] = step.epoch
        entry["iteration"] = step.iteration
        entry["elapsed_time"] = self.elapsed_time()
        if self._postprocess is not None:
            self._postprocess(entry)
        self._log.append(entry)
        self._summary = Summary()
        if self._filename is not None and step.trainer.is_global_zero:
            self._write(self._name(entry), entry)

    def _name(self, entry: dict[str, Any]) -> str:
        try:
            return self._filename.format(**entry)  # type: ignore[union-attr]
        except KeyError as error:
            raise ValueError(
                f"LogReport(filename={self._filename!r}) names {{{error.args[0]}}}, which the entry of iteration "
                f"{entry['iteration']} does not hold: list it in keys=[...] and report it every interval."
            ) from None

    def _write(self, name: str, entry: dict[str, Any]) -> None:
        path = os.path.join(self.out or "result", name)
        if self._format == "json":
            atomic_write(path, json.dumps(self._log, indent=4))
        elif path not in self._jsonl_synced:
            # First write of this run: make the file match the (possibly restored) log, then append.
            atomic_write(path, "".join(json.dumps(e) + "\n" for e in self._log))
            self._jsonl_synced.add(path)
        else:
            append_file(path, json.dumps(entry) + "\n")

    def extension_state(self) -> dict[str, Any]:
        return {
            "log": [dict(e) for e in self._log],
            "summary": self._summary.state_dict(),
            "elapsed_time": self.elapsed_time(),
        }

    def load_extension_state(self, state: dict[str, Any]) -> None:
        if not state:
            return
        self._log = [dict(e) for e in state["log"]]
        self._summary.load_state_dict(state["summary"])
        self.elapsed_time.restore(state["elapsed_time"])
