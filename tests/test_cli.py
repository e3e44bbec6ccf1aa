"""The training command through the real command line: bad input ends in one sentence and exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO, write_idx

TRAIN = str(REPO / "scripts" / "train.py")


def train(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run scripts/train.py in ``cwd`` (so lightning_logs/ lands there)."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, TRAIN, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def assert_one_sentence(result: subprocess.CompletedProcess, pattern: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("error: ") and lines[0].endswith("."), lines[0]
    import re

    assert re.search(pattern, lines[0]), lines[0]


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (["--model", "vgg"], "invalid choice: 'vgg'"),
        (["--optimizer", "lbfgs"], "invalid choice: 'lbfgs'"),
        (["--accelerator", "tpu9"], "invalid choice: 'tpu9'"),
        (["-e", "0"], "positive integer, got 0"),
        (["-b", "-4"], "positive integer, got -4"),
        (["-b", "many"], "positive integer, got 'many'"),
        (["--limit-train-batches", "1.5"], r"fraction must be in \(0, 1\]"),
        (["--devices", "x"], "--devices must be"),
        (["--strategy", "nonsense"], "Lightning refused the device flags: You selected an invalid strategy name"),
        (["--precision", "7"], "Lightning refused the device flags: Precision '7' is invalid"),
        (["--lr", "-1"], "expected a finite positive number, got -1"),
        (["--lr", "nan"], "expected a finite positive number, got nan"),
        (["--seed", "-1"], "a seed must be between 0 and 4294967295, got -1"),
        (["--seed", str(2**64)], f"a seed must be between 0 and 4294967295, got {2**64}"),
        (["--seed", "2**64"], "expected an integer seed, got '2\\*\\*64'"),
        (["--devices", "1,1"], "--devices 1,1 names device 1 more than once"),
        (["-m", "mlp", "-u", "100000000"], "not enough memory to build the mlp with 100000000 units"),
        (["--export-init", "/tmp"], "--export-init /tmp is a folder: give a file name"),
        (["--export-init", "/proc/absent/init.npz"], "the folder /proc/absent does not exist"),
        (["--export-init", "/proc/init.npz"], "the folder /proc is not writable"),
    ],
)
def test_bad_flags(args: list[str], pattern: str, tmp_path: Path, tiny_mnist: Path) -> None:
    result = train(["--data-dir", str(tiny_mnist), *args], tmp_path)
    assert_one_sentence(result, pattern)
    assert not (tmp_path / "lightning_logs").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_gpu_without_gpu(tmp_path: Path, tiny_mnist: Path) -> None:
    result = train(["--data-dir", str(tiny_mnist), "--accelerator", "gpu"], tmp_path)
    assert_one_sentence(result, "sees no CUDA GPU")
    assert not (tmp_path / "lightning_logs").exists()


def test_missing_data_folder(tmp_path: Path) -> None:
    result = train(["--data-dir", str(tmp_path / "absent")], tmp_path)
    assert_one_sentence(result, "t10k-labels-idx1-ubyte not found in")
    assert not (tmp_path / "absent").exists() and not (tmp_path / "lightning_logs").exists()


def test_corrupt_data_file(tmp_path: Path, tiny_mnist: Path) -> None:
    path = tiny_mnist / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:1000])
    result = train(["--data-dir", str(tiny_mnist), "-e", "1"], tmp_path)
    assert_one_sentence(result, "is truncated")


def corrupt(raw: Path, how: str) -> None:
    """Spoil the tiny MNIST in one of the ways a download or a copy goes wrong."""
    if how == "missing":
        (raw / "train-labels-idx1-ubyte").unlink()
    elif how == "wrong magic":
        write_idx(raw / "train-images-idx3-ubyte", np.zeros((200, 28, 28), np.uint8), magic=0x0801)
    elif how == "wrong size":
        write_idx(raw / "t10k-images-idx3-ubyte", np.zeros((50, 32, 32), np.uint8))
    elif how == "count mismatch":
        write_idx(raw / "train-labels-idx1-ubyte", np.zeros(199, np.uint8))


@pytest.mark.parametrize(
    ("how", "pattern"),
    [
        ("missing", "train-labels-idx1-ubyte not found in .*MNIST/raw"),
        ("wrong magic", "not an IDX image file: magic number 2049, expected 2051"),
        ("wrong size", r"images of shape \(32, 32\), expected \(28, 28\)"),
        ("count mismatch", "has 200 images but .* has 199 labels"),
    ],
)
def test_bad_data_files(how: str, pattern: str, tmp_path: Path, tiny_mnist: Path) -> None:
    corrupt(tiny_mnist / "MNIST" / "raw", how)
    result = train(["--data-dir", str(tiny_mnist), "-o", str(tmp_path / "out")], tmp_path)
    assert_one_sentence(result, pattern)
    assert not (tmp_path / "out").exists() and not (tmp_path / "lightning_logs").exists()


def test_out_not_writable(tmp_path: Path, tiny_mnist: Path) -> None:
    result = train(["--data-dir", str(tiny_mnist), "-o", "/proc/mnist-lightning-out"], tmp_path)
    assert_one_sentence(result, "is not writable")


def test_resume_missing_and_not_a_checkpoint(tmp_path: Path, tiny_mnist: Path) -> None:
    result = train(["--data-dir", str(tiny_mnist), "--resume", str(tmp_path / "nope")], tmp_path)
    assert_one_sentence(result, "no such file")
    junk = tmp_path / "junk"
    junk.write_text("not a checkpoint")
    result = train(["--data-dir", str(tiny_mnist), "--resume", str(junk)], tmp_path)
    assert_one_sentence(result, "not a Lightning checkpoint")
    assert not (tmp_path / "lightning_logs").exists()


def test_resume_refuses_a_snapshot_trained_on_other_inputs(tmp_path: Path, tiny_mnist: Path) -> None:
    """A snapshot trained with --normalize resumes only with it, and one trained without only without it."""
    out = tmp_path / "norm"
    first = train(["--data-dir", str(tiny_mnist), "-e", "1", "--normalize", "--noplot", "-o", str(out)], tmp_path)
    assert first.returncode == 0, first.stderr
    snapshot = out / "snapshot_iter_2"
    result = train(["--data-dir", str(tiny_mnist), "-e", "2", "-r", str(snapshot)], tmp_path)
    assert_one_sentence(result, "was trained on normalised pixels: add --normalize")
    resumed = train(
        ["--data-dir", str(tiny_mnist), "-e", "2", "--normalize", "--noplot", "-o", str(out), "-r", str(snapshot)],
        tmp_path,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert (out / "snapshot_iter_4").is_file()
    plain = tmp_path / "plain"
    assert train(["--data-dir", str(tiny_mnist), "-e", "1", "--noplot", "-o", str(plain)], tmp_path).returncode == 0
    result = train(
        ["--data-dir", str(tiny_mnist), "-e", "2", "--normalize", "-r", str(plain / "snapshot_iter_2")], tmp_path
    )
    assert_one_sentence(result, r"was trained on pixels in \[0, 1\]: drop --normalize")


def test_out_is_a_file(tmp_path: Path, tiny_mnist: Path) -> None:
    target = tmp_path / "taken"
    target.write_text("")
    result = train(["--data-dir", str(tiny_mnist), "-o", str(target)], tmp_path)
    assert_one_sentence(result, "is a file, not a folder")


def test_help_lists_chainer_and_lightning_flags(tmp_path: Path) -> None:
    result = train(["--help"], tmp_path)
    assert result.returncode == 0
    for flag in ("--batchsize", "--epoch", "--unit", "--resume", "--accelerator", "--devices", "--strategy"):
        assert flag in result.stdout


def test_fast_dev_run_writes_no_files(tmp_path: Path, tiny_mnist: Path) -> None:
    result = train(["--data-dir", str(tiny_mnist), "--fast-dev-run", "-o", str(tmp_path / "out")], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "epoch       main/loss" in result.stdout
    assert not (tmp_path / "out").exists() and not (tmp_path / "lightning_logs").exists()


def test_out_folder_whose_name_is_not_utf8_with_a_strict_stdout(tmp_path: Path, tiny_mnist: Path) -> None:
    out = os.fsencode(tmp_path) + b"/out-\xff"
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONIOENCODING": "utf-8:strict"}
    args = [b"--data-dir", os.fsencode(tiny_mnist), b"-e", b"1", b"--no-progress", b"--noplot", b"-o", out]
    result = subprocess.run([sys.executable, TRAIN, *args], cwd=tmp_path, env=env, capture_output=True, timeout=300)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert b"# out: " + os.fsencode(tmp_path) + b"/out-\\xff\n" in result.stdout
    assert os.path.isfile(out + b"/snapshot_iter_2") and os.path.isfile(out + b"/log")
