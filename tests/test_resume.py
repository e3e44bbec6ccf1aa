"""Resuming through the real command line: the test scores the trained weights, flags that disagree with the
snapshot are refused or applied out loud, and a crafted checkpoint ends in one sentence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_cli import assert_one_sentence, train

QUIET = ["--no-progress", "--noplot", "--deterministic"]


def scores(stdout: str) -> list[str]:
    """The two test lines a run prints last."""
    return [line for line in stdout.splitlines() if line.startswith("test/main/")]


@pytest.fixture(scope="module")
def snapshot_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A one-epoch run on a tiny MNIST (2 iterations), shared by the checks below: (data folder, output folder)."""
    from conftest import make_mnist

    root = tmp_path_factory.mktemp("resume")
    data = make_mnist(root / "data")
    out = root / "one"
    result = train(["--data-dir", str(data), "-e", "1", "-o", str(out), *QUIET], root)
    assert result.returncode == 0, result.stderr
    return data, out / "snapshot_iter_2"


def test_autoload_then_test_scores_the_trained_weights_not_the_snapshot(tmp_path: Path, tiny_mnist: Path) -> None:
    args = ["--data-dir", str(tiny_mnist), "-b", "20", *QUIET]
    whole = train([*args, "-e", "3", "-o", str(tmp_path / "whole")], tmp_path)
    assert whole.returncode == 0, whole.stderr
    first = train([*args, "-e", "1", "-o", str(tmp_path / "parts")], tmp_path)
    assert first.returncode == 0, first.stderr
    resumed = train([*args, "-e", "3", "-o", str(tmp_path / "parts"), "--autoload"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert scores(resumed.stdout) == scores(whole.stdout) != scores(first.stdout)
    logs = [json.loads((tmp_path / name / "log").read_text()) for name in ("whole", "parts")]
    assert [[{k: v for k, v in e.items() if k != "elapsed_time"} for e in log] for log in logs][0] == [
        {k: v for k, v in e.items() if k != "elapsed_time"} for e in logs[1]
    ]


def test_resume_with_r_then_test_scores_the_trained_weights(tmp_path: Path, snapshot_run: tuple[Path, Path]) -> None:
    data, snapshot = snapshot_run
    resumed = train(
        ["--data-dir", str(data), "-e", "2", "-r", str(snapshot), "-o", str(tmp_path / "r"), *QUIET], tmp_path
    )
    assert resumed.returncode == 0, resumed.stderr
    trained = torch.load(tmp_path / "r" / "snapshot_iter_4", weights_only=True)
    assert trained["global_step"] == 4
    assert scores(resumed.stdout) != []


@pytest.mark.parametrize(
    ("flags", "pattern"),
    [
        (
            ["--seed", "1"],
            r"was trained with --seed 0, and another seed moves training images .*: resume with --seed 0",
        ),
        (["-b", "64"], r"was trained with -b 128, .*: resume with -b 128"),
        (["--optimizer", "sgd"], r"was trained with --optimizer adam, .*: resume with --optimizer adam"),
        (["--model", "mlp"], r"is a snapshot of model 'lenet', not --model mlp"),
        (["--dataset", "kmnist"], r"was trained on --dataset mnist, .*: resume with --dataset mnist"),
        (["--validation", "test"], r"was trained with --validation split, .*: resume with --validation split"),
    ],
)
def test_resume_refuses_flags_that_change_the_training(
    flags: list[str], pattern: str, tmp_path: Path, snapshot_run: tuple[Path, Path]
) -> None:
    data, snapshot = snapshot_run
    result = train(["--data-dir", str(data), "-e", "2", "-r", str(snapshot), *flags, *QUIET], tmp_path)
    assert_one_sentence(result, pattern)
    assert not (tmp_path / "lightning_logs").exists()


def test_a_snapshot_without_dataset_and_validation_resumes_as_mnist_on_the_split(
    tmp_path: Path, snapshot_run: tuple[Path, Path]
) -> None:
    """Hyper-parameters without ``dataset`` and ``validation`` mean the defaults, and such a snapshot resumes."""
    data, snapshot = snapshot_run
    checkpoint = torch.load(snapshot, weights_only=True)
    for key in ("dataset", "validation"):
        del checkpoint["datamodule_hyper_parameters"][key]
    torch.save(checkpoint, tmp_path / "plain")
    args = ["--data-dir", str(data), "-e", "2", "-r", str(tmp_path / "plain"), *QUIET]
    assert train([*args, "-o", str(tmp_path / "r")], tmp_path).returncode == 0
    result = train([*args, "--validation", "test"], tmp_path)
    assert_one_sentence(result, r"was trained with --validation split, .*: resume with --validation split")


def test_resume_with_nothing_left_to_train_says_so(tmp_path: Path, snapshot_run: tuple[Path, Path]) -> None:
    data, snapshot = snapshot_run
    result = train(["--data-dir", str(data), "-e", "1", "-r", str(snapshot), *QUIET], tmp_path)
    assert_one_sentence(result, r"nothing left to train: .*snapshot_iter_2 already holds 1 epochs and -e is 1")


def test_resume_with_a_new_lr_applies_it_and_says_so(tmp_path: Path, snapshot_run: tuple[Path, Path]) -> None:
    data, snapshot = snapshot_run
    out = tmp_path / "lr"
    result = train(
        ["--data-dir", str(data), "-e", "2", "-r", str(snapshot), "--lr", "0.0005", "-o", str(out), *QUIET], tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "--lr 0.0005 replaces the snapshot's learning rate 0.001 from here on." in result.stdout
    resumed = torch.load(out / "snapshot_iter_4", weights_only=True)
    assert [g["lr"] for g in resumed["optimizer_states"][0]["param_groups"]] == [0.0005]


def craft(snapshot: Path, folder: Path, how: str) -> Path:
    """A copy of ``snapshot`` spoiled in one of the ways a checkpoint of something else looks."""
    checkpoint = torch.load(snapshot, weights_only=True)
    if how == "another module":
        checkpoint["state_dict"] = {"encoder.weight": torch.zeros(3, 3), "encoder.bias": torch.zeros(3)}
    elif how == "no lightning version":
        del checkpoint["pytorch-lightning_version"]
    elif how == "wrong shape":
        checkpoint["state_dict"]["predictor.classifier.5.weight"] = torch.zeros(3, 3)
    elif how == "hparams not a dict":
        checkpoint["hyper_parameters"] = ["lenet"]
    path = folder / how.replace(" ", "_")
    torch.save(checkpoint, path)
    return path


@pytest.mark.parametrize(
    ("how", "pattern"),
    [
        ("another module", r"lacks the weights predictor\..*: it is a checkpoint of another model"),
        ("no lightning version", r"not a complete Lightning checkpoint \(it has no pytorch-lightning_version\)"),
        ("wrong shape", r"holds predictor.classifier.5.weight of shape \(3, 3\), the model expects \(10, 64\)"),
        ("hparams not a dict", r"its hyper-parameters are not a dict"),
    ],
)
def test_resume_refuses_a_crafted_checkpoint(
    how: str, pattern: str, tmp_path: Path, snapshot_run: tuple[Path, Path]
) -> None:
    data, snapshot = snapshot_run
    result = train(["--data-dir", str(data), "-e", "2", "-r", str(craft(snapshot, tmp_path, how)), *QUIET], tmp_path)
    assert_one_sentence(result, pattern)
    assert not (tmp_path / "lightning_logs").exists()
