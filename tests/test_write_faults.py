"""Writing the run's files through the real CLI: only inside -o, no leftovers, and a failed write in one sentence.

The faults are real: a tmpfs too small for a second snapshot, ``ulimit -f`` (RLIMIT_FSIZE), an output folder made
immutable (``chattr +i``) while the run trains, a ``$TMPDIR`` with no room. Mounting needs root, as CI runs.
"""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from conftest import tmpfs
from test_cli import TRAIN, assert_one_sentence, train

QUIET = ["--no-progress", "--noplot", "--limit-train-batches", "1", "--limit-val-batches", "1"]
#: A LeNet snapshot (weights, Adam's moments, the extensions' state) is about 520 KiB.
SNAPSHOT_BYTES = 531_000
FAILED = re.compile(
    r"error: could not write (?P<path>.+?): (?P<reason>[^;]+); "
    r"(?:the last good snapshot (?P<kept>.+) is kept|no snapshot was written yet)\."
)


def run_with(args: list[str], cwd: Path, preexec_fn: Callable[[], None] | None = None, **env: str):
    """scripts/train.py as ``train`` runs it, with extra environment variables and a ``preexec_fn``."""
    return subprocess.run(
        [sys.executable, TRAIN, *args],
        cwd=cwd,
        env={**os.environ, "PYTHONWARNINGS": "ignore", **env},
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=preexec_fn,
    )


def temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def assert_intact(out: Path) -> list[str]:
    """Every snapshot in ``out`` loads as a checkpoint, the log parses, no temp file is left; returns the snapshots."""
    snapshots = sorted(p.name for p in out.glob("snapshot_iter_*"))
    for name in snapshots:
        assert "state_dict" in torch.load(out / name, map_location="cpu", weights_only=True), name
    assert isinstance(json.loads((out / "log").read_text()), list)
    assert temp_files(out) == []
    return snapshots


def assert_write_failed(result: subprocess.CompletedProcess, out: Path, names: str, reason: str) -> re.Match:
    """The run ended in the CLI's one sentence naming a file of ``out`` matching ``names``, for ``reason``."""
    assert_one_sentence(result, "could not write")
    match = FAILED.fullmatch(result.stderr.strip())
    assert match, result.stderr
    assert Path(match["path"]).parent == out and re.fullmatch(names, Path(match["path"]).name), match["path"]
    assert match["reason"] == reason
    return match


def test_snapshots_are_written_without_room_in_tmpdir(tmp_path: Path, tiny_mnist: Path) -> None:
    out = tmp_path / "out"
    with tmpfs(tmp_path / "small_tmp", "64k") as small:
        result = run_with(
            ["--data-dir", str(tiny_mnist), "-o", str(out), "-e", "1", *QUIET], tmp_path, TMPDIR=str(small)
        )
        assert result.returncode == 0, result.stderr
        # torch makes an empty torchinductor_<user>/ there when imported; no file may follow.
        assert [name for _, _, names in os.walk(small) for name in names] == []
    assert assert_intact(out) == ["snapshot_iter_1"]


def test_a_run_removes_the_temp_files_killed_writes_left(tmp_path: Path, tiny_mnist: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    leftovers = [".log.k2j4h6g8.tmp", ".snapshot_iter_7.tmp", ".snapshot_iter_7.ab12cd34.tmp", ".loss.png.x9y8z7w6.tmp"]
    others = [".notes.ab12cd34.tmp", "notes.tmp", ".snapshot_iter_7.bak"]
    for name in leftovers + others:
        (out / name).write_bytes(b"partial")
    args = ["--data-dir", str(tiny_mnist), "-o", str(out), "-e", "1", "--no-progress", "--limit-train-batches", "1"]
    result = train([*args, "--limit-val-batches", "1"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir() if p.name in leftovers + others) == sorted(others)
    assert (out / "loss.png").is_file()


def test_autoload_resumes_the_highest_iteration_not_the_newest_file(tmp_path: Path, tiny_mnist: Path) -> None:
    out = tmp_path / "out"
    args = ["--data-dir", str(tiny_mnist), "-o", str(out), *QUIET]
    assert train([*args, "-e", "2"], tmp_path).returncode == 0
    second = (out / "snapshot_iter_2").read_bytes()
    later = time.time() + 100
    os.utime(out / "snapshot_iter_1", (later, later))  # an old snapshot touched (copied back, say)
    result = train([*args, "-e", "3", "--autoload"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert (out / "snapshot_iter_2").read_bytes() == second  # resumed after it, so never written again
    assert [e["iteration"] for e in json.loads((out / "log").read_text())] == [1, 2, 3]


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_autoload_passes_over_an_unreadable_newest_snapshot(tmp_path: Path, tiny_mnist: Path, damage: str) -> None:
    out = tmp_path / "out"
    args = ["--data-dir", str(tiny_mnist), "-o", str(out), *QUIET]
    assert train([*args, "-e", "2"], tmp_path).returncode == 0
    newest = out / "snapshot_iter_2"
    newest.write_bytes(newest.read_bytes()[:1000] if damage == "truncated" else b"not a checkpoint\n" * 100)
    result = train([*args, "-e", "3", "--autoload"], tmp_path)
    assert result.returncode == 0, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert f"skipped {newest}: " in line and f"resuming from {out / 'snapshot_iter_1'}" in line, line
    assert [e["iteration"] for e in json.loads((out / "log").read_text())] == [1, 2, 3]
    assert assert_intact(out) == ["snapshot_iter_1", "snapshot_iter_2", "snapshot_iter_3"]


def test_autoload_with_no_readable_snapshot_ends_in_one_sentence(tmp_path: Path, tiny_mnist: Path) -> None:
    out = tmp_path / "out"
    args = ["--data-dir", str(tiny_mnist), "-o", str(out), *QUIET]
    assert train([*args, "-e", "2"], tmp_path).returncode == 0
    for name in ("snapshot_iter_1", "snapshot_iter_2"):
        (out / name).write_bytes(b"garbage")
    result = train([*args, "-e", "3", "--autoload"], tmp_path)
    assert_one_sentence(result, f"no snapshot in {out} can be resumed from: {out}/snapshot_iter_2 .*snapshot_iter_1")
    assert (out / "snapshot_iter_2").read_bytes() == b"garbage" and not (out / "snapshot_iter_3").exists()


def test_disk_full_names_the_snapshot_and_keeps_the_last_good_one(tmp_path: Path, tiny_mnist: Path) -> None:
    # Room for one snapshot and the log, not for the temp file of the second.
    with tmpfs(tmp_path / "out", f"{SNAPSHOT_BYTES * 3 // 2 // 1024}k") as out:
        result = train(["--data-dir", str(tiny_mnist), "-o", str(out), "-e", "3", *QUIET], tmp_path)
        match = assert_write_failed(result, out, "snapshot_iter_2", "No space left on device")
        assert match["kept"] == str(out / "snapshot_iter_1")
        assert assert_intact(out) == ["snapshot_iter_1"]
        assert [e["iteration"] for e in json.loads((out / "log").read_text())] == [1, 2]


def test_file_size_limit_names_the_snapshot_and_says_none_was_written(tmp_path: Path, tiny_mnist: Path) -> None:
    def limit_file_size() -> None:  # the log fits, a snapshot does not
        resource.setrlimit(resource.RLIMIT_FSIZE, (SNAPSHOT_BYTES // 2, SNAPSHOT_BYTES // 2))

    out = tmp_path / "out"
    result = run_with(["--data-dir", str(tiny_mnist), "-o", str(out), "-e", "2", *QUIET], tmp_path, limit_file_size)
    match = assert_write_failed(result, out, "snapshot_iter_1", "File too large")
    assert match["kept"] is None
    assert assert_intact(out) == []


def test_export_init_past_the_file_size_limit_is_one_sentence(tmp_path: Path, tiny_mnist: Path) -> None:
    def limit_file_size() -> None:  # LeNet's initial weights take about 170 KB
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    target = tmp_path / "init.npz"
    args = ["--data-dir", str(tiny_mnist), "-o", str(tmp_path / "out"), "-e", "1", "--export-init", str(target)]
    result = run_with([*args, *QUIET], tmp_path, limit_file_size)
    assert_one_sentence(result, rf"^error: could not write {target}: File too large; no snapshot was written yet\.$")
    assert not target.exists() and temp_files(tmp_path) == []


@contextmanager
def immutable(folder: Path) -> Iterator[None]:
    """``folder`` made immutable (no file made, renamed or removed in it, even by root) for the block."""
    subprocess.run(["chattr", "+i", str(folder)], check=True)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def pause_outside_writes(process: subprocess.Popen, out: Path) -> None:
    """Stop ``process`` at a moment when it has no temp file open in ``out``, so no write is caught half-way."""
    while True:
        process.send_signal(signal.SIGSTOP)
        # The signal is delivered asynchronously: wait until the kernel reports the process stopped ("T").
        while Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "T":
            time.sleep(0.001)
        if not temp_files(out):
            return
        process.send_signal(signal.SIGCONT)
        time.sleep(0.001)


def test_output_folder_made_read_only_mid_run_names_the_file(tmp_path: Path, tiny_mnist: Path) -> None:
    out = tmp_path / "out"
    args = [sys.executable, TRAIN, "--data-dir", str(tiny_mnist), "-o", str(out), "-e", "1000", *QUIET]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    process = subprocess.Popen(
        args, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        while not (out / "snapshot_iter_1").exists():
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            time.sleep(0.005)
        pause_outside_writes(process, out)
        with immutable(out):
            process.send_signal(signal.SIGCONT)
            _, stderr = process.communicate(timeout=300)
        result = subprocess.CompletedProcess(args, process.returncode, "", stderr)
        match = assert_write_failed(result, out, r"log|model_best|snapshot_iter_\d+", "Operation not permitted")
        snapshots = assert_intact(out)
        assert match["kept"] == str(out / max(snapshots, key=lambda name: int(name.rsplit("_", 1)[1])))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
