"""Atomic writes, temp-file names and WriteError, one piece at a time.

Full disks and read-only folders are real: a small tmpfs and ``chattr +i`` (both need root, as CI runs).
"""

from __future__ import annotations

import errno
import json
import os
import pickle
from pathlib import Path

import pytest
from conftest import tmpfs
from helpers import FixedModule, fill, immutable, make_trainer, train_loader

from lightning_chainer.extensions import (
    LogReport,
    PlotReport,
    WriteError,
    find_latest_snapshot,
    snapshot,
    snapshot_object,
)
from lightning_chainer.files import append_file, atomic_write, is_temp_file
from mnist_lightning.weights import save_npz


def test_temp_names_are_recognised_only_for_their_own_template() -> None:
    assert is_temp_file(".snapshot_iter_8.abcd_123.tmp", "snapshot_iter_{iteration}")
    assert is_temp_file(".snapshot_iter_8.tmp", "snapshot_iter_{iteration}")
    assert is_temp_file(".log_3.k2j4h6g8.tmp", "log_{epoch}")
    assert not is_temp_file(".log.k2j4h6g8.tmp", "log_{epoch}")
    assert not is_temp_file("snapshot_iter_8.tmp", "snapshot_iter_{iteration}")
    assert not is_temp_file(".snapshot_iter_x.abcd1234.tmp", "snapshot_iter_{iteration}")
    assert not is_temp_file(".loss.png.abcd1234.tmp.png", "loss.png")


def test_each_extension_removes_its_own_leftover_temp_files_when_training_starts(tmp_path: Path) -> None:
    ours = [".log.k2j4h6g8.tmp", ".snapshot_iter_8.tmp", ".snapshot_iter_3.ab12cd34.tmp", ".plot.png.x9y8z7w6.tmp"]
    others = [".notes.ab12cd34.tmp", "notes.tmp", ".log.bak", "snapshot_iter_2.tmp"]
    for name in ours + others:
        (tmp_path / name).write_bytes(b"partial")
    assert find_latest_snapshot(str(tmp_path)) is None
    callbacks = [
        LogReport(out=str(tmp_path)),
        PlotReport(["main/loss"], out=str(tmp_path)),
        snapshot(out=str(tmp_path)),
    ]
    make_trainer(callbacks, max_epochs=1).fit(FixedModule(), train_loader())
    assert sorted(os.listdir(tmp_path)) == sorted([*others, "log", "plot.png", "snapshot_iter_8"])


def test_atomic_write_leaves_the_mode_of_an_ordinary_file(tmp_path: Path) -> None:
    atomic_write(tmp_path / "sub" / "f.txt", "text")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "sub" / "f.txt").read_text() == "text"
    assert (tmp_path / "sub" / "f.txt").stat().st_mode & 0o777 == 0o666 & ~umask


def test_atomic_write_on_a_full_disk_keeps_the_old_file(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "64k") as disk:
        atomic_write(disk / "log", "[]")
        fill(disk)
        with pytest.raises(WriteError) as raised:
            atomic_write(disk / "log", "x" * 100_000)
        error = raised.value
        assert (error.path, error.reason, error.errno) == (str(disk / "log"), "No space left on device", errno.ENOSPC)
        assert str(error) == f"could not write {disk / 'log'}: No space left on device"
        assert isinstance(error, OSError) and isinstance(error.__cause__, OSError)
        assert str(pickle.loads(pickle.dumps(error))) == str(error)
        assert (disk / "log").read_text() == "[]"
        assert sorted(os.listdir(disk)) == ["filler", "log"]


def test_append_on_a_full_disk_cuts_the_file_back(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "64k") as disk:
        append_file(disk / "log", '{"epoch": 1}\n')
        fill(disk)
        with pytest.raises(WriteError, match=f"could not write {disk / 'log'}: No space left on device"):
            append_file(disk / "log", json.dumps({"epoch": 2, "pad": "x" * 20_000}) + "\n")
        assert (disk / "log").read_text() == '{"epoch": 1}\n'


@pytest.mark.parametrize("kind", ["snapshot", "snapshot_object", "log", "plot"])
def test_every_extension_write_into_a_read_only_folder_raises_write_error(tmp_path: Path, kind: str) -> None:
    model = FixedModule()
    out = str(tmp_path / "out")
    extension, name = {
        "snapshot": (snapshot(out=out), "snapshot_iter_8"),
        "snapshot_object": (snapshot_object(model.layer, "layer_{epoch}", out=out), "layer_1"),
        "log": (LogReport(out=out), "log"),
        "plot": (PlotReport(["main/loss"], out=out), "plot.png"),
    }[kind]
    with immutable(tmp_path / "out"), pytest.raises(WriteError) as raised:
        make_trainer([extension], max_epochs=1).fit(model, train_loader())
    assert (raised.value.path, raised.value.reason) == (os.path.join(out, name), "Operation not permitted")
    assert os.listdir(out) == []


def test_save_npz_into_a_read_only_folder_raises_write_error(tmp_path: Path) -> None:
    from mnist_lightning.models import build_predictor

    path = tmp_path / "weights" / "init.npz"
    with immutable(path.parent), pytest.raises(WriteError) as raised:
        save_npz(build_predictor("lenet"), path, "lenet", 100)
    assert (raised.value.path, raised.value.reason) == (str(path), "Operation not permitted")
