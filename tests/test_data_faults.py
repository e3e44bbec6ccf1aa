"""Faulty data files through the real command line: each one stops the run before training, in one sentence."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import write_idx
from test_cli import TRAIN, assert_one_sentence, train

from mnist_lightning.data import ImageDataModule
from mnist_lightning.datasets import MNIST_FILES
from mnist_lightning.idx import DataError

QUICK = ["-e", "1", "--limit-train-batches", "1", "--no-progress", "--noplot"]
#: From <linux/prctl.h> and <linux/capability.h>.
PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE = 1
CAP_DAC_READ_SEARCH = 2


def train_quick(data_dir: Path, cwd: Path, *extra: str) -> subprocess.CompletedProcess:
    """One short run writing to ``cwd/out``; a run that gets as far as training prints the ``main/loss`` header."""
    return train(["--data-dir", str(data_dir), "-o", str(cwd / "out"), *QUICK, *extra], cwd)


def assert_stopped_before_training(result: subprocess.CompletedProcess, cwd: Path, pattern: str) -> None:
    assert_one_sentence(result, pattern)
    assert "main/loss" not in result.stdout, result.stdout
    assert not (cwd / "out").exists() and not (cwd / "lightning_logs").exists()


@pytest.mark.parametrize("pipeline", ["tensor", "torchvision"])
@pytest.mark.parametrize("name", ["train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"])
def test_label_out_of_range(name: str, pipeline: str, tmp_path: Path, tiny_mnist: Path) -> None:
    path = tiny_mnist / "MNIST" / "raw" / name
    labels = np.frombuffer(path.read_bytes(), np.uint8, offset=8).copy()
    labels[3] = 17
    write_idx(path, labels)
    result = train_quick(tiny_mnist, tmp_path, "--data-pipeline", pipeline)
    assert_stopped_before_training(result, tmp_path, f"{name} holds label 17, expected labels 0-9")


def test_train_and_test_files_swapped(tmp_path: Path, tiny_mnist: Path) -> None:
    raw = tiny_mnist / "MNIST" / "raw"
    for kind in ("images-idx3", "labels-idx1"):
        train_file, test_file, spare = (raw / f"{prefix}-{kind}-ubyte" for prefix in ("train", "t10k", "spare"))
        train_file.rename(spare)
        test_file.rename(train_file)
        spare.rename(test_file)
    result = train_quick(tiny_mnist, tmp_path)
    assert_stopped_before_training(
        result, tmp_path, r"train-images-idx3-ubyte holds 50 images, fewer than the 200 of .*look swapped"
    )


def drop_file_privileges() -> None:
    """Take from this (root) process the two capabilities that let root read any file whatever its mode bits.

    Root keeps its uid, so the interpreter under a mode-0700 home stays reachable, but it reads files as their
    owner would: a mode-0000 file is refused. ``prctl(PR_CAPBSET_DROP)`` takes them from the bounding set, so the
    program that ``exec`` starts next never gets them back.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def test_unreadable_data_file(tmp_path: Path, tiny_mnist: Path) -> None:
    unreadable = tiny_mnist / "MNIST" / "raw" / "train-images-idx3-ubyte"
    unreadable.chmod(0o000)
    result = subprocess.run(
        [sys.executable, TRAIN, "--data-dir", str(tiny_mnist), "-o", str(tmp_path / "out"), *QUICK],
        cwd=tmp_path,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=drop_file_privileges if os.geteuid() == 0 else None,
    )
    assert_stopped_before_training(result, tmp_path, f"{unreadable} is not readable by this user")


def put_in_place_of(path: Path, how: str) -> None:
    """Replace the file at ``path`` with a folder, a FIFO, a link to itself or a link to a file that is gone."""
    path.unlink()
    if how == "directory":
        path.mkdir()
    elif how == "fifo":
        os.mkfifo(path)
    elif how == "loop":
        path.symlink_to(path.name)
    elif how == "dangling":
        path.symlink_to(path.with_name("gone"))


@pytest.mark.parametrize(
    ("how", "pattern"),
    [
        ("directory", "t10k-images-idx3-ubyte is a directory"),
        ("fifo", "t10k-images-idx3-ubyte is a FIFO, not a regular file"),
        ("loop", "t10k-images-idx3-ubyte is a symbolic link loop"),
        ("dangling", "t10k-images-idx3-ubyte is a symbolic link that points to a missing file .*gone"),
    ],
)
def test_not_a_regular_file(how: str, pattern: str, tmp_path: Path, tiny_mnist: Path) -> None:
    put_in_place_of(tiny_mnist / "MNIST" / "raw" / "t10k-images-idx3-ubyte", how)
    result = train_quick(tiny_mnist, tmp_path)
    assert_stopped_before_training(result, tmp_path, pattern)


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Stands in for torchvision's MNIST: records each download asked for and brings no file."""
    import torchvision.datasets

    calls: list[bool] = []

    def fake_mnist(root: str, train: bool, download: bool = False) -> None:
        calls.append(train)
        raise RuntimeError("no network in this test")

    monkeypatch.setattr(torchvision.datasets, "MNIST", fake_mnist)
    return calls


@pytest.mark.parametrize("how", ["directory", "fifo", "loop", "dangling"])
def test_something_in_place_of_a_file_is_not_missing(how: str, tiny_mnist: Path, downloads: list[bool]) -> None:
    """Only a name with nothing there is missing; anything else is reported, and no download is tried over it."""
    raw = tiny_mnist / "MNIST" / "raw"
    put_in_place_of(raw / "t10k-images-idx3-ubyte", how)
    (raw / "train-labels-idx1-ubyte").unlink()
    assert MNIST_FILES.missing_files(tiny_mnist) == ["train-labels-idx1-ubyte"]
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte is a"):
        ImageDataModule(tiny_mnist).prepare_data()
    assert downloads == []


def test_absent_files_are_still_downloaded(tiny_mnist: Path, downloads: list[bool]) -> None:
    (tiny_mnist / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte not found in"):
        ImageDataModule(tiny_mnist).prepare_data()
    assert downloads == [True]
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte not found in"):
        MNIST_FILES.check_present(tiny_mnist)


def test_links_to_good_files_are_fine(tmp_path: Path, tiny_mnist: Path) -> None:
    """A data folder of symbolic links (to a shared copy, say) is checked through to the files."""
    raw = tiny_mnist / "MNIST" / "raw"
    linked = tmp_path / "linked"
    (linked / "MNIST" / "raw").mkdir(parents=True)
    for path in raw.iterdir():
        (linked / "MNIST" / "raw" / path.name).symlink_to(path)
    assert MNIST_FILES.missing_files(linked) == []
    MNIST_FILES.check(linked)
