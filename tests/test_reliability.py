"""Reliability through the real CLI: SIGKILL and exact resume, DDP on two CPU processes, divergence."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from test_cli import TRAIN, train

from mnist_lightning.classifier import Classifier
from mnist_lightning.data import ImageDataModule

QUIET = ["--no-progress", "--noplot", "--limit-val-batches", "2"]
KILL_SEED = int(os.environ.get("KILL_SEED", "20261123"))


def entries_without_time(log: list[dict]) -> list[dict]:
    return [{k: v for k, v in entry.items() if k != "elapsed_time"} for entry in log]


def test_sigkill_mid_epoch_then_autoload_equals_an_uninterrupted_run(tmp_path: Path, mnist_dir: Path) -> None:
    args = ["--data-dir", str(mnist_dir), "-e", "3", "--limit-train-batches", "25", "--deterministic", *QUIET]
    whole = train([*args, "-o", str(tmp_path / "whole")], tmp_path)
    assert whole.returncode == 0, whole.stderr
    reference = json.loads((tmp_path / "whole" / "log").read_text())
    epoch_seconds = reference[1]["elapsed_time"] - reference[0]["elapsed_time"]

    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    process = subprocess.Popen(
        [sys.executable, TRAIN, *args, "-o", str(out)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while not (out / "snapshot_iter_25").exists():
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before its first snapshot"
        time.sleep(0.01)
    delay = random.Random(KILL_SEED).uniform(0.1, 0.8) * epoch_seconds
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, f"the run finished before the kill (KILL_SEED={KILL_SEED})"
    if (out / "log").exists():
        json.loads((out / "log").read_text())  # whatever was on disk is complete JSON

    resumed = train([*args, "-o", str(out), "--autoload"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    log = json.loads((out / "log").read_text())
    assert entries_without_time(log) == entries_without_time(reference), f"KILL_SEED={KILL_SEED}, delay={delay:.2f}s"
    times = [e["elapsed_time"] for e in log]
    assert times == sorted(times)
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "log",
        "model_best",
        "snapshot_iter_25",
        "snapshot_iter_50",
        "snapshot_iter_75",
    ]


def validate_single_process(snapshot: Path, mnist_dir: Path) -> tuple[float, float]:
    """Per-sample validation loss and accuracy of a snapshot's model over the whole 12,000, in one process."""
    model = Classifier.load_from_checkpoint(snapshot, map_location="cpu").eval()
    dm = ImageDataModule(mnist_dir)
    dm.setup("fit")
    loss = correct = n = 0.0
    with torch.no_grad():
        for x, t in dm.val_dataloader():
            y = model(x)
            loss += float(torch.nn.functional.cross_entropy(y, t, reduction="sum"))
            correct += float((y.argmax(1) == t).sum())
            n += len(t)
    assert n == 12_000
    return loss / n, correct / n


def test_ddp_two_cpu_processes_log_once_and_reduce_validation(tmp_path: Path, mnist_dir: Path) -> None:
    out = tmp_path / "ddp"
    ddp = ["--strategy", "ddp", "--devices", "2", "--accelerator", "cpu", "--no-progress", "--noplot"]
    args = ["--data-dir", str(mnist_dir), "--limit-train-batches", "10", *ddp, "-o", str(out)]
    result = train([*args, "-e", "1"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("epoch       main/loss") == 1  # rank 0 alone prints
    assert result.stdout.count("# Minibatch-size") == 1
    log = json.loads((out / "log").read_text())
    assert [(e["epoch"], e["iteration"]) for e in log] == [(1, 10)]
    loss, accuracy = validate_single_process(out / "snapshot_iter_10", mnist_dir)
    assert log[0]["validation/main/loss"] == pytest.approx(loss, rel=1e-6, abs=1e-6)
    assert log[0]["validation/main/accuracy"] == pytest.approx(accuracy, rel=1e-6, abs=1e-6)

    resumed = train([*args, "-e", "2", "-r", str(out / "snapshot_iter_10")], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    log = json.loads((out / "log").read_text())
    assert [(e["epoch"], e["iteration"]) for e in log] == [(1, 10), (2, 20)]


def test_divergence_stops_with_the_iteration_and_writes_no_bad_snapshot(tmp_path: Path, mnist_dir: Path) -> None:
    out = tmp_path / "nan"
    args = ["--data-dir", str(mnist_dir), "--optimizer", "sgd", "--lr", "1e12", "-e", "2", "-o", str(out)]
    result = train([*args, "--limit-train-batches", "10", *QUIET], tmp_path)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "diverged (NaN or inf) at iteration" in last
    assert "Traceback" not in result.stderr
    assert not list(out.glob("snapshot_iter_*"))
