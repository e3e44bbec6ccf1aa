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

if TYPE_CHECKING:
    import lightning.pytorch as pl


class LogReport(Extension):
    """Every iteration adds the observation to a summary; at ``trigger`` appends one entry and writes the log.

    An entry holds the interval's means (each report weighted 1, as Chainer), then ``epoch`` (completed epochs),
    ``iteration`` and ``elapsed_time`` (seconds, continued across resumes). ``format='json'`` rewrites the whole
    list with ``json.dump(indent=4)`` (Chainer's bytes) atomically; ``format='jsonl'`` appends one line per entry.
    ``filename`` may use the entry's keys (``'log_{epoch}'``); ``None`` writes no file. A trailing partial
    interval is dropped, as Chainer. Only rank 0 writes, inside ``out`` (see ``files.py``); a failed write raises
    ``WriteError`` and leaves the previous file as it was. Means are summed over ranks first.
    """

    priority = PRIORITY_READER

    def __init__(
        self,
        keys: Iterable[str] | None = None,
        trigger: Any = (1, "epoch"),
        postprocess: Callable[[dict[str, Any]], None] | None = None,
        filename: str | None = "log",
        format: str = "json",
        out: str | None = None,
        *,
        call_before_training: bool = False,
    ) -> None:
        super().__init__(trigger, call_before_training=call_before_training)
        if format not in ("json", "jsonl"):
            raise ValueError(f"format must be 'json' or 'jsonl', got {format!r}")
        self._keys = list(keys) if keys is not None else None
        self._postprocess = postprocess
        self._filename = filename
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
            self._write(self._filename.format(**entry), entry)

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
