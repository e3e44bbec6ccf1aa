"""SIGTERM and Ctrl-C through the real command line: one sentence, the shell's status, a resume command that works."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_cli import TRAIN

from mnist_lightning.interrupts import resume_command


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_mid_epoch_ends_in_one_sentence_with_the_resume_command(
    signum: int, status: int, tmp_path: Path, tiny_mnist: Path
) -> None:
    out = tmp_path / "out"
    args = ["--data-dir", str(tiny_mnist), "-e", "3", "-b", "2", "-o", str(out), "--no-progress", "--noplot"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    process = subprocess.Popen(
        [sys.executable, TRAIN, *args], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 300
    while not (out / "snapshot_iter_80").exists():
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before its first snapshot"
        time.sleep(0.02)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == status, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    name = signal.Signals(signum).name
    match = re.fullmatch(
        rf"error: interrupted by {name} at iteration (\d+): resume from the last snapshot with `(.*)`\.", lines[0]
    )
    assert match, lines[0]
    assert 80 <= int(match[1]) < 240
    command = shlex.split(match[2])
    assert command[:2] == ["python", TRAIN] and command[-2:] == ["-r", str(out / "snapshot_iter_80")]
    assert "test/main/accuracy" not in stdout  # an interrupted run is not tested

    resumed = subprocess.run(
        [sys.executable, *command[1:]], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr
    log = json.loads((out / "log").read_text())
    assert [(e["epoch"], e["iteration"]) for e in log] == [(1, 80), (2, 160), (3, 240)]


def test_resume_command_replaces_the_snapshot_flags() -> None:
    argv = ["-e", "5", "--autoload", "-o", "out dir", "-r", "old", "--resume=older"]
    assert resume_command(argv, "out dir/snapshot_iter_9").endswith(" -e 5 -o 'out dir' -r 'out dir/snapshot_iter_9'")
