"""One run, one folder: concurrent runs take distinct versions, a live run's folder is refused, a stale lock is not."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_cli import TRAIN, assert_one_sentence, train

from mnist_lightning.run_folder import LOCK_NAME, FolderInUseError, RunLock, claim_version, remove_if_unused

QUIET = ["--no-progress", "--noplot"]


def start(args: list[str], cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.Popen(
        [sys.executable, TRAIN, *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_runs_started_together_take_distinct_versions(tmp_path: Path, tiny_mnist: Path) -> None:
    runs = [start(["--data-dir", str(tiny_mnist), "-e", "1", "--seed", str(i), *QUIET], tmp_path) for i in range(3)]
    for run in runs:
        _, stderr = run.communicate(timeout=300)
        assert run.returncode == 0, stderr
    folders = sorted(p.name for p in (tmp_path / "lightning_logs").iterdir())
    assert folders == ["version_0", "version_1", "version_2"]
    seeds = set()
    for name in folders:
        folder = tmp_path / "lightning_logs" / name
        assert {"log", "snapshot_iter_2", "hparams.yaml"} <= {p.name for p in folder.iterdir()}
        assert not (folder / LOCK_NAME).exists()
        seeds.add((folder / "hparams.yaml").read_text())
    assert len(seeds) == 3  # each folder holds one run's files, not a mix


def test_claim_version_takes_the_next_free_number(tmp_path: Path) -> None:
    (tmp_path / "logs" / "version_3").mkdir(parents=True)
    (tmp_path / "logs" / "version_x").mkdir()
    assert claim_version(tmp_path / "logs")[0] == 4
    assert claim_version(tmp_path / "logs")[0] == 5
    version, created = claim_version(tmp_path / "new" / "logs")
    assert version == 0
    assert created == [tmp_path / "new" / "logs" / "version_0", tmp_path / "new" / "logs", tmp_path / "new"]
    remove_if_unused(created)
    assert not (tmp_path / "new").exists()


def test_a_second_run_into_a_folder_in_use_is_refused(tmp_path: Path, tiny_mnist: Path) -> None:
    out = tmp_path / "out"
    first = start(["--data-dir", str(tiny_mnist), "-e", "200", "-b", "2", "-o", str(out), *QUIET], tmp_path)
    try:
        deadline = time.monotonic() + 300
        while not (out / "snapshot_iter_80").exists():
            assert first.poll() is None and time.monotonic() < deadline, first.stderr and first.stderr.read()
            time.sleep(0.05)
        second = train(["--data-dir", str(tiny_mnist), "-e", "1", "-o", str(out), *QUIET], tmp_path)
        assert_one_sentence(second, rf"{out} is in use by another run \(process {first.pid}\); wait for it")
        assert first.poll() is None
    finally:
        first.kill()
        first.wait()
    # The refused run removed the version folder it had claimed for its TensorBoard events.
    assert [p.name for p in (tmp_path / "lightning_logs").iterdir()] == ["version_0"]


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.mark.parametrize("stale", ["dead process", "rebooted host"])
def test_a_stale_lock_does_not_block(stale: str, tmp_path: Path, tiny_mnist: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    owner = {"pid": dead_pid(), "host": socket.gethostname(), "boot_id": "", "start_time": ""}
    if stale == "rebooted host":
        owner.update(pid=os.getpid(), boot_id="an-earlier-boot")
    (out / LOCK_NAME).write_text(json.dumps(owner))
    result = train(["--data-dir", str(tiny_mnist), "-e", "1", "-o", str(out), *QUIET], tmp_path)
    assert result.returncode == 0, result.stderr
    assert (out / "snapshot_iter_2").is_file() and not (out / LOCK_NAME).exists()


def test_lock_of_a_live_process_or_another_host_is_held(tmp_path: Path) -> None:
    RunLock(tmp_path).acquire()
    with pytest.raises(FolderInUseError, match=rf"process {os.getpid()}\)"):
        RunLock(tmp_path).acquire()
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": 1, "host": "elsewhere"}))
    with pytest.raises(FolderInUseError, match=r"process 1 on host elsewhere\)"):
        RunLock(tmp_path).acquire()
    (tmp_path / LOCK_NAME).write_text("{trunc")  # a lock that is not JSON was not written by a live run
    lock = RunLock(tmp_path)
    lock.acquire()
    lock.release()
    assert not (tmp_path / LOCK_NAME).exists()


def test_a_failure_after_the_folder_is_claimed_removes_it(tmp_path: Path, tiny_mnist: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "snapshot_iter_5").write_bytes(b"not a checkpoint")
    result = train(["--data-dir", str(tiny_mnist), "-e", "2", "-o", str(out), "--autoload", *QUIET], tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    assert not (tmp_path / "lightning_logs").exists()
    assert sorted(p.name for p in out.iterdir()) == ["snapshot_iter_5"]
