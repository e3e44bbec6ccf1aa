"""LogReport: tensors summed until the report, json and jsonl files, templates, Chainer's log_name, arguments
refused when built, and a read-only disk."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import tmpfs
from helpers import FixedModule, make_trainer, train_loader

from lightning_chainer import Extension
from lightning_chainer.extensions import LogReport, WriteError


def test_log_report_accumulates_tensors_between_reports(tmp_path: Path) -> None:
    class Probe(Extension):
        seen: list = []

        def __call__(self, step) -> None:
            report = next(c for c in step.trainer.callbacks if isinstance(c, LogReport))
            self.seen.append({k: type(v) for k, v in report._summary._sums.items()})

    make_trainer([LogReport(out=str(tmp_path)), Probe()], max_epochs=1).fit(FixedModule(), train_loader())
    assert Probe.seen[3] == {"main/loss": torch.Tensor, "main/accuracy": torch.Tensor}


def test_log_report_jsonl_filename_template_and_postprocess(tmp_path: Path) -> None:
    def add_note(entry: dict) -> None:
        entry["note"] = "x"

    cbs = [
        LogReport(out=str(tmp_path), format="jsonl", filename="log.jsonl", postprocess=add_note),
        LogReport(out=str(tmp_path), filename="log_{epoch}", keys=["main/loss"]),
    ]
    make_trainer(cbs, max_epochs=2).fit(FixedModule(), train_loader())
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]
    assert json.loads(lines[0])["note"] == "x"
    assert len(json.loads((tmp_path / "log_2").read_text())) == 2  # each file holds the full history, as Chainer
    assert list(json.loads((tmp_path / "log_1").read_text())[0]) == ["main/loss", "epoch", "iteration", "elapsed_time"]
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]


def test_jsonl_log_on_a_read_only_disk_raises_write_error(tmp_path: Path) -> None:
    class RemountReadOnly(FixedModule):
        def on_train_epoch_start(self) -> None:
            if self.current_epoch == 1:  # after the first entry was written
                subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)

    with tmpfs(tmp_path / "disk", "1m") as disk:
        report = LogReport(out=str(disk), format="jsonl")
        with pytest.raises(WriteError) as raised:
            make_trainer([report], max_epochs=2).fit(RemountReadOnly(), train_loader())
        assert (raised.value.path, raised.value.reason) == (str(disk / "log"), "Read-only file system")
        assert [json.loads(line)["epoch"] for line in (disk / "log").read_text().splitlines()] == [1]


NAMES: list[dict[str, Any]] = [
    {},
    {"filename": "a"},
    {"log_name": "b"},
    {"filename": "a", "log_name": "b"},
    {"filename": None},
    {"log_name": None},
    {"filename": None, "log_name": None},
    {"filename": "a", "log_name": None},
]


@pytest.mark.parametrize("names", NAMES)
def test_filename_and_log_name_name_the_file_as_chainers(tmp_path: Path, names: dict[str, Any]) -> None:
    from mnist_lightning.chainer_compat import import_chainer

    import_chainer()
    from chainer.training import extensions as E

    expected = E.LogReport(**names)._log_name
    report = LogReport(out=str(tmp_path), **names)
    make_trainer([report], max_epochs=1).fit(FixedModule(), train_loader())
    assert os.listdir(tmp_path) == ([] if expected is None else [expected])


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"keys": "main/loss"}, "keys='main/loss') must be a list of observation keys"),
        ({"format": "yaml"}, "format='yaml') is not a format: use 'json' or 'jsonl'"),
        ({"postprocess": "add"}, "must be a function"),
        ({"filename": "log_{}"}, "names {}, but a log entry fills only its own keys"),
        ({"log_name": "log_{.updater.epoch}"}, "names {.updater.epoch}"),
        ({"filename": "log_{main/accuracy}", "keys": ["main/loss"]}, "which no entry holds: use one of {elapsed_time}"),
        ({"filename": "log_{epoch"}, "is not a valid template"),
    ],
)
def test_what_would_fail_at_the_first_entry_is_refused_when_built(kwargs: dict[str, Any], words: str) -> None:
    with pytest.raises((TypeError, ValueError)) as raised:
        LogReport(**kwargs)
    assert words in str(raised.value) and str(raised.value).endswith(".")


def test_a_template_key_missing_from_an_entry_is_named_in_one_sentence(tmp_path: Path) -> None:
    LogReport(filename="log_{main/loss}", keys=["main/loss"])  # listed: every entry may hold it
    report = LogReport(out=str(tmp_path), filename="log_{main/lost}")  # any observed key might be meant
    with pytest.raises(ValueError, match=r"names \{main/lost\}, which the entry of iteration 8 does not hold"):
        make_trainer([report], max_epochs=1).fit(FixedModule(), train_loader())
