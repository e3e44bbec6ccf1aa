"""``model_best`` (src/mnist_lightning/best_model.py): the predictor of the best validation accuracy, a model file
that ``load_trained`` reads, and the same file after a SIGKILL and a resume as after an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import make_mnist

from mnist_lightning import cli
from mnist_lightning.best_model import BEST_MODEL, MONITOR
from mnist_lightning.classifier import Classifier
from mnist_lightning.datasets import MNIST_FILES
from mnist_lightning.interrupts import InterruptWatch
from mnist_lightning.trained import load_trained

# 160 training images in batches of 20: 8 iterations an epoch. At this learning rate the validation accuracy
# peaks at epoch 2 and epoch 3 only equals it, so a resume that forgot the best value would write model_best again.
ARGS = ["-e", "3", "-b", "20", "--lr", "0.01", "--no-progress", "--noplot", "--accelerator", "cpu"]
STEPS_PER_EPOCH = 8

# scripts/train.py with one more callback, which SIGKILLs the process once epoch 2 (snapshot and all) is done.
KILLED_AFTER_EPOCH_2 = """
import os, signal, sys
from lightning.pytorch.callbacks import Callback
from mnist_lightning import cli

class KillAfterEpoch2(Callback):
    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.current_epoch == 1:
            os.kill(os.getpid(), signal.SIGKILL)

build = cli.build
cli.build = lambda args, extra_callbacks=(): build(args, [*extra_callbacks, KillAfterEpoch2()])
sys.exit(cli.main(sys.argv[1:]))
"""


def train_in_process(argv: list[str], cwd: Path) -> int:
    """``scripts/train.py argv`` in this process, from ``cwd``."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(cwd)
        return cli.run(cli.build_parser().parse_args(argv), InterruptWatch(), argv)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``whole``: three epochs; ``parts``: killed after epoch 2, then resumed with --autoload to epoch 3."""
    root = tmp_path_factory.mktemp("best")
    data = make_mnist(root / "data")
    common = ["--data-dir", str(data), *ARGS]
    assert train_in_process([*common, "-o", str(root / "whole")], root) == 0
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_AFTER_EPOCH_2, *common, "-o", str(root / "parts")],
        cwd=root,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert sorted(p.name for p in (root / "parts").glob("snapshot_iter_*")) == ["snapshot_iter_16", "snapshot_iter_8"]
    assert train_in_process([*common, "-o", str(root / "parts"), "--autoload"], root) == 0
    return root


def best_value_state(snapshot: Path) -> Any:
    """The best value the model_best trigger holds in ``snapshot``'s callback states."""
    states = torch.load(snapshot, weights_only=True)["callbacks"]
    (key,) = [key for key in states if BEST_MODEL in key]
    return states[key]["trigger"]["best_value"]


def assert_same(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a.keys() == b.keys()
    assert {k: v for k, v in a.items() if k != "state_dict"} == {k: v for k, v in b.items() if k != "state_dict"}
    assert a["state_dict"].keys() == b["state_dict"].keys()
    assert all(torch.equal(a["state_dict"][key], b["state_dict"][key]) for key in a["state_dict"])


def test_model_best_holds_the_predictor_of_the_best_epoch(runs: Path) -> None:
    accuracies = [entry[MONITOR] for entry in json.loads((runs / "whole" / "log").read_text())]
    best = torch.load(runs / "whole" / BEST_MODEL, weights_only=True)
    epoch = accuracies.index(max(accuracies)) + 1
    assert (best["epoch"], best["iteration"], best["monitor"]) == (epoch, epoch * STEPS_PER_EPOCH, MONITOR)
    assert best["best_value"] == pytest.approx(max(accuracies))
    assert best["datamodule_hyper_parameters"] == {"dataset": "mnist", "normalize": False}
    assert best["hyper_parameters"]["predictor"] == "lenet"
    snapshot = torch.load(runs / "whole" / f"snapshot_iter_{best['iteration']}", weights_only=True)
    weights = {key.removeprefix("predictor."): value for key, value in snapshot["state_dict"].items()}
    assert_same(best, {**best, "state_dict": weights})


def test_model_best_after_sigkill_and_resume_equals_an_uninterrupted_runs(runs: Path) -> None:
    whole = torch.load(runs / "whole" / BEST_MODEL, weights_only=True)
    assert whole["epoch"] < 3  # the epoch a resume without the trigger's state would write again
    assert_same(torch.load(runs / "parts" / BEST_MODEL, weights_only=True), whole)
    last = f"snapshot_iter_{3 * STEPS_PER_EPOCH}"
    assert best_value_state(runs / "parts" / last) == best_value_state(runs / "whole" / last) == whole["best_value"]


def test_load_trained_reads_model_best_as_the_classifier_of_the_best_epoch(runs: Path) -> None:
    trained = load_trained(runs / "whole" / BEST_MODEL)
    iteration = torch.load(runs / "whole" / BEST_MODEL, weights_only=True)["iteration"]
    classifier = Classifier.load_from_checkpoint(runs / "whole" / f"snapshot_iter_{iteration}", map_location="cpu")
    images, _ = MNIST_FILES.load_split(str(runs / "data"), train=False)
    x = trained.preprocessing(torch.from_numpy(images[:8]).view(-1, 1, 28, 28))
    with torch.no_grad():
        assert torch.equal(trained.predictor(x), classifier.eval().predictor(x))
