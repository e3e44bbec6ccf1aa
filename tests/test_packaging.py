"""The package as a user installs and starts it: ``python -m``, the console script, the licence, the Makefile."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import REPO

PYPROJECT = (REPO / "pyproject.toml").read_text()


def test_python_m_runs_the_training_command(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mnist_lightning", "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "--batchsize" in result.stdout and "--accelerator" in result.stdout


def test_console_script_is_installed_and_runs(tmp_path: Path) -> None:
    assert 'mnist-lightning-train = "mnist_lightning.cli:main"' in PYPROJECT.splitlines()
    script = Path(sys.executable).parent / "mnist-lightning-train"
    result = subprocess.run([str(script), "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "--epoch" in result.stdout


def test_licence_file_matches_the_metadata() -> None:
    assert {'license = "MIT"', 'license-files = ["LICENSE"]'} <= set(PYPROJECT.splitlines())
    assert (REPO / "LICENSE").read_text().startswith("MIT License\n")


def test_make_test_hands_data_dir_to_the_tests_as_make_train_does() -> None:
    def dry_run(*args: str) -> str:
        result = subprocess.run(["make", "-n", *args], cwd=REPO, capture_output=True, text=True, check=True)
        return result.stdout

    assert "MNIST_DATA_DIR=/some/data " in dry_run("test", "DATA_DIR=/some/data")
    assert "--data-dir /some/data" in dry_run("train", "DATA_DIR=/some/data")
