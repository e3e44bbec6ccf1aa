"""``--dataset`` and ``--validation`` through the real command line, on IDX files the tests generate."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import make_mnist
from test_cli import assert_one_sentence, train
from test_datasets import RGB
from torch import nn

from mnist_lightning import cli
from mnist_lightning.datasets import DATASETS
from mnist_lightning.interrupts import InterruptWatch
from mnist_lightning.models import MODELS

QUICK = ["-e", "1", "--no-progress", "--noplot"]


def hparams(cwd: Path) -> dict:
    """The run's ``hparams.yaml``: the Classifier's and the DataModule's hyper-parameters together."""
    return yaml.safe_load((cwd / "lightning_logs" / "version_0" / "hparams.yaml").read_text())


def test_fashion_mnist_trains_on_its_own_files(tmp_path: Path) -> None:
    """A data folder holding FashionMNIST/raw/ alone: the run reads it (there is no MNIST/raw/ to fall back on)."""
    data = make_mnist(tmp_path / "data", folder="FashionMNIST")
    result = train(["--dataset", "fashion-mnist", "--data-dir", str(data), *QUICK], tmp_path)
    assert result.returncode == 0, result.stderr
    log = json.loads((tmp_path / "lightning_logs" / "version_0" / "log").read_text())
    assert [entry["epoch"] for entry in log] == [1] and "validation/main/accuracy" in log[0]
    assert "test/main/accuracy: " in result.stdout
    recorded = hparams(tmp_path)
    assert recorded["dataset"] == "fashion-mnist" and recorded["validation"] == "split"
    assert recorded["input_shape"] == [1, 28, 28] and recorded["n_classes"] == 10


def test_kmnist_trains_through_python_m(tmp_path: Path) -> None:
    """``python -m mnist_lightning`` is the same command: a KMNIST folder alone trains an epoch and tests."""
    data = make_mnist(tmp_path / "data", folder="KMNIST")
    argv = [sys.executable, "-m", "mnist_lightning", "--dataset", "kmnist", "--data-dir", str(data), *QUICK]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    log = json.loads((tmp_path / "lightning_logs" / "version_0" / "log").read_text())
    assert [entry["epoch"] for entry in log] == [1] and "test/main/accuracy: " in result.stdout
    assert hparams(tmp_path)["dataset"] == "kmnist"


def test_kmnist_without_its_files_names_its_folder(tmp_path: Path, tiny_mnist: Path) -> None:
    """MNIST's files are no stand-in for KMNIST's: the run stops in one sentence before any folder is made."""
    result = train(["--dataset", "kmnist", "--data-dir", str(tiny_mnist), *QUICK], tmp_path)
    assert_one_sentence(result, r"KMNIST files .* not found in .*/KMNIST/raw: download them from ")
    assert not (tmp_path / "lightning_logs").exists() and not (tiny_mnist / "KMNIST").exists()


def test_validation_on_the_test_set_validates_what_the_test_scores(tmp_path: Path, tiny_mnist: Path) -> None:
    """``--validation test``: the last validation and the final test see the same images with the same weights."""
    result = train(["--validation", "test", "--data-dir", str(tiny_mnist), "-b", "40", *QUICK], tmp_path)
    assert result.returncode == 0, result.stderr
    log = json.loads((tmp_path / "lightning_logs" / "version_0" / "log").read_text())
    assert log[-1]["iteration"] == 5  # all 200 training images in batches of 40, none held out
    assert f"test/main/loss: {log[-1]['validation/main/loss']:.4f}" in result.stdout
    assert f"test/main/accuracy: {log[-1]['validation/main/accuracy']:.4f}" in result.stdout
    assert hparams(tmp_path)["validation"] == "test"


def test_help_says_the_test_still_runs(tmp_path: Path) -> None:
    result = train(["--help"], tmp_path)
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "{mnist,fashion-mnist,kmnist}" in text and "{split,test}" in text
    assert "the final test then scores that same set" in text


class TinyNet(nn.Module):
    """A model of one's own: one linear layer on the flattened image."""

    def __init__(self, input_shape: tuple[int, int, int], n_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(math.prod(input_shape), n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


def test_a_registered_model_on_a_registered_dataset_through_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One class and one entry each: the CLI builds TinyNet for RGB's (3, 8, 8) images and three classes, trains
    an epoch, and --export-init / --init-from carry its weights from one run to the next."""
    monkeypatch.setitem(MODELS, "tiny", TinyNet)
    monkeypatch.setitem(DATASETS, "rgb", RGB)
    monkeypatch.chdir(tmp_path)
    common = ["--dataset", "rgb", "--model", "tiny", "-b", "8", *QUICK, "--accelerator", "cpu"]
    for name, extra in (("first", []), ("second", ["--init-from", "first.npz"])):
        argv = [*common, "-o", name, "--export-init", f"{name}.npz", *extra]
        assert cli.run(cli.build_parser().parse_args(argv), InterruptWatch(), argv) == 0
        log = json.loads((tmp_path / name / "log").read_text())
        assert [(entry["epoch"], entry["iteration"]) for entry in log] == [(1, 4)]  # 32 training images
    with np.load("first.npz") as first, np.load("second.npz") as second:
        assert str(first["model"]) == "tiny" and first["layer0/W"].shape == (3, 192)
        assert np.array_equal(first["layer0/W"], second["layer0/W"])
        assert np.array_equal(first["layer0/b"], second["layer0/b"])


def test_data_dir_default_reads_data_dir_then_mnist_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATA_DIR", raising=False)
    monkeypatch.delenv("MNIST_DATA_DIR", raising=False)
    assert cli.build_parser().parse_args([]).data_dir == "data"
    monkeypatch.setenv("MNIST_DATA_DIR", "/srv/mnist")
    assert cli.build_parser().parse_args([]).data_dir == "/srv/mnist"
    monkeypatch.setenv("DATA_DIR", "/srv/images")
    assert cli.build_parser().parse_args([]).data_dir == "/srv/images"
