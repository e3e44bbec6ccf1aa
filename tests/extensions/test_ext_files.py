"""The extensions' files one piece at a time: snapshot order, autoload's fallback, temp cleanup, WriteError.

Full disks and read-only folders are real: a small tmpfs and ``chattr +i`` (both need root, as CI runs).
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from ext_helpers import FixedModule, make_trainer, train_loader
from lightning.pytorch.strategies import SingleDeviceStrategy

from lightning_chainer.extensions import (
    LogReport,
    PlotReport,
    SnapshotError,
    WriteError,
    apply_autoload,
    find_latest_snapshot,
    list_snapshots,
    snapshot,
    snapshot_object,
)
from lightning_chainer.files import append_file, atomic_write, is_temp_file
from mnist_lightning.weights import save_npz


@contextmanager
def tmpfs(folder: Path, size: str) -> Iterator[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@contextmanager
def immutable(folder: Path) -> Iterator[Path]:
    """No file can be made, renamed or removed in ``folder``, even by root (``chattr +i``)."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["chattr", "+i", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def fill(folder: Path) -> None:
    """Take every free byte of the tmpfs at ``folder``."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as error:
        assert error.errno == errno.ENOSPC
    finally:
        os.close(fd)


def names(paths: list[str]) -> list[str]:
    return [os.path.basename(p) for p in paths]


def touch(path: Path, mtime: float, data: bytes = b"x") -> None:
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))


# --- which snapshot is the newest ----------------------------------------------------------------------------------


def test_snapshots_are_ordered_by_the_number_in_their_name_not_their_mtime(tmp_path: Path) -> None:
    for i, name in enumerate(["snapshot_iter_10", "snapshot_iter_9", "snapshot_iter_2"]):
        touch(tmp_path / name, 1000.0 + i)  # the lowest iteration was written last
    for name in ("snapshot_iter_10.bak", "snapshot_iter_x", ".snapshot_iter_11.abcd1234.tmp"):
        touch(tmp_path / name, 2000.0)
    assert names(list_snapshots(str(tmp_path))) == ["snapshot_iter_2", "snapshot_iter_9", "snapshot_iter_10"]
    assert find_latest_snapshot(str(tmp_path)) == str(tmp_path / "snapshot_iter_10")


@pytest.mark.parametrize(
    ("template", "files", "expected"),
    [
        ("model_epoch_{epoch}", ["model_epoch_12", "model_epoch_3"], ["model_epoch_3", "model_epoch_12"]),
        ("snap_{epoch_detail}", ["snap_10.0", "snap_2.25", "snap_1.5"], ["snap_1.5", "snap_2.25", "snap_10.0"]),
        ("e{epoch}_i{iteration}", ["e2_i9", "e1_i10", "e1_i8"], ["e1_i8", "e2_i9", "e1_i10"]),
        ("snap_{name}", ["snap_b", "snap_a", "snap_c"], ["snap_b", "snap_a", "snap_c"]),  # no number: by mtime
    ],
)
def test_templates_order_by_iteration_then_epoch_then_mtime(
    tmp_path: Path, template: str, files: list[str], expected: list[str]
) -> None:
    for i, name in enumerate(files):
        touch(tmp_path / name, 1000.0 + i)
    assert names(list_snapshots(str(tmp_path), template)) == expected


def test_n_retains_keeps_the_highest_iterations(tmp_path: Path) -> None:
    touch(tmp_path / "snapshot_iter_4", 4e9)  # an older snapshot with the newest mtime
    make_trainer([snapshot(out=str(tmp_path), n_retains=2)], max_epochs=2).fit(FixedModule(), train_loader())
    assert sorted(os.listdir(tmp_path)) == ["snapshot_iter_16", "snapshot_iter_8"]


# --- autoload falls back to the newest readable snapshot --------------------------------------------------------


def two_snapshots(out: Path) -> None:
    make_trainer([snapshot(out=str(out))], max_epochs=2).fit(FixedModule(), train_loader())
    assert sorted(os.listdir(out)) == ["snapshot_iter_16", "snapshot_iter_8"]


@pytest.mark.parametrize("damage", ["truncated", "garbage", "no state_dict"])
def test_autoload_passes_over_an_unreadable_newest_snapshot(
    tmp_path: Path, capsys: pytest.CaptureFixture, damage: str
) -> None:
    two_snapshots(tmp_path)
    newest = tmp_path / "snapshot_iter_16"
    if damage == "truncated":
        newest.write_bytes(newest.read_bytes()[:2000])
    elif damage == "garbage":
        newest.write_bytes(os.urandom(5000))
    else:
        torch.save({"epoch": 2}, newest)
    capsys.readouterr()
    trainer = make_trainer([snapshot(out=str(tmp_path), autoload=True)])
    assert apply_autoload(trainer) == str(tmp_path / "snapshot_iter_8") == trainer.ckpt_path
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"autoload: skipped {newest}: ")
    assert line.endswith(f"resuming from {tmp_path}/snapshot_iter_8.")


def test_autoload_with_only_unreadable_snapshots_raises_one_sentence(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    two_snapshots(tmp_path)
    for name in ("snapshot_iter_8", "snapshot_iter_16"):
        (tmp_path / name).write_bytes(b"garbage")
    capsys.readouterr()
    with pytest.raises(SnapshotError) as raised:
        apply_autoload(make_trainer([snapshot(out=str(tmp_path), autoload=True)]))
    message = str(raised.value)
    assert isinstance(raised.value, ValueError)
    assert message.startswith(f"no snapshot in {tmp_path} can be resumed from: {tmp_path}/snapshot_iter_16 (")
    assert f"{tmp_path}/snapshot_iter_8 (" in message and message.endswith("move them away to start over.")
    assert "\n" not in message and capsys.readouterr().err == ""  # the error is the only thing said


def test_autoload_without_snapshots_starts_over(tmp_path: Path) -> None:
    assert apply_autoload(make_trainer([snapshot(out=str(tmp_path), autoload=True)])) is None


# --- temp files: one naming scheme, removed when a run starts ---------------------------------------------------


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


# --- a failed write: WriteError naming the final file, the old file intact, no temp file -------------------------


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


def test_a_plot_that_cannot_be_drawn_after_a_failure_does_not_hide_it(tmp_path: Path) -> None:
    out = tmp_path / "out"

    class FailsLater(FixedModule):
        def training_step(self, batch, batch_idx):
            if self.global_step == 3:  # iterations 2 and 3 wait to be drawn
                subprocess.run(["chattr", "+i", str(out)], check=True)
                raise ValueError("boom")
            return super().training_step(batch, batch_idx)

    plot = PlotReport(["main/loss"], trigger=(1, "iteration"), out=str(out), redraw_interval=1e9)
    try:
        with pytest.raises(ValueError, match="boom"):
            make_trainer([plot], max_epochs=1).fit(FailsLater(), train_loader())
    finally:
        subprocess.run(["chattr", "-i", str(out)], check=True)
    assert os.listdir(out) == ["plot.png"]


def test_save_npz_into_a_read_only_folder_raises_write_error(tmp_path: Path) -> None:
    from mnist_lightning.models import build_predictor

    path = tmp_path / "weights" / "init.npz"
    with immutable(path.parent), pytest.raises(WriteError) as raised:
        save_npz(build_predictor("lenet"), path, "lenet", 100)
    assert (raised.value.path, raised.value.reason) == (str(path), "Operation not permitted")


class OwnSaveStrategy(SingleDeviceStrategy):
    """Stands in for DeepSpeed or FSDP, whose ``save_checkpoint`` is their own."""

    def save_checkpoint(self, checkpoint, filepath, storage_options=None) -> None:
        super().save_checkpoint(checkpoint, filepath, storage_options)


def test_a_strategy_with_its_own_save_still_writes_under_a_temp_name_in_out(tmp_path: Path) -> None:
    trainer = make_trainer([snapshot(out=str(tmp_path))], max_epochs=1, strategy=OwnSaveStrategy(torch.device("cpu")))
    trainer.fit(FixedModule(), train_loader())
    assert os.listdir(tmp_path) == ["snapshot_iter_8"]
    assert "state_dict" in torch.load(tmp_path / "snapshot_iter_8", weights_only=True)
