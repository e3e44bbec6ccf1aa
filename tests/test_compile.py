"""``--compile`` (src/mnist_lightning/compiling.py): a compiled run writes the eager model's keys, and resumes
across compiled and eager runs both ways. The runs are in-process, on a tiny MNIST, two steps an epoch."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import make_mnist
from torch._dynamo.utils import counters

from mnist_lightning import cli
from mnist_lightning.best_model import BEST_MODEL
from mnist_lightning.classifier import Classifier
from mnist_lightning.compiling import check_compile
from mnist_lightning.interrupts import InterruptWatch

QUICK = ["-b", "40", "--limit-train-batches", "2", "--no-progress", "--noplot", "--accelerator", "cpu"]


def train_in_process(argv: list[str], cwd: Path) -> int:
    """``scripts/train.py argv`` in this process, from ``cwd``; compiled code of an earlier run is dropped first."""
    torch.compiler.reset()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(cwd)
        return cli.run(cli.build_parser().parse_args(argv), InterruptWatch(), argv)


class Runs:
    """Runs of two steps an epoch on the same tiny MNIST, each in its own folder under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = make_mnist(root / "data")
        self.graphs: dict[str, int] = {}

    def train(self, name: str, *flags: str, epochs: int = 1) -> Path:
        """Train into ``root/name`` (one epoch unless told); returns that folder; records the graphs compiled."""
        out = self.root / name
        before = counters["stats"]["unique_graphs"]
        argv = ["--data-dir", str(self.data), "-e", str(epochs), "-o", str(out), *QUICK, *flags]
        assert train_in_process(argv, self.root) == 0
        self.graphs[name] = counters["stats"]["unique_graphs"] - before
        return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    runs = Runs(tmp_path_factory.mktemp("compile"))
    runs.train("eager")
    runs.train("compiled", "--compile")
    runs.train("eager-from-eager", "-r", str(runs.root / "eager" / "snapshot_iter_2"), epochs=2)
    yield runs
    torch.compiler.reset()


def strings(value: Any) -> Iterator[str]:
    """Every string in a nested checkpoint (dict keys included)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings(key)
            yield from strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from strings(item)


def test_compile_compiles_the_predictor(runs: Runs) -> None:
    assert runs.graphs["compiled"] > 0
    assert runs.graphs["eager"] == 0


def test_a_compiled_run_writes_the_eager_keys_in_every_file(runs: Runs) -> None:
    for name in ("snapshot_iter_2", BEST_MODEL):
        eager = torch.load(runs.root / "eager" / name, weights_only=True)
        compiled = torch.load(runs.root / "compiled" / name, weights_only=True)
        assert list(compiled["state_dict"]) == list(eager["state_dict"])
        assert not [text for text in strings(compiled) if "_orig_mod" in text]


def test_an_eager_classifier_loads_a_compiled_runs_snapshot(runs: Runs) -> None:
    model = Classifier.load_from_checkpoint(runs.root / "compiled" / "snapshot_iter_2", map_location="cpu")
    saved = torch.load(runs.root / "compiled" / BEST_MODEL, weights_only=True)["state_dict"]
    assert all(torch.equal(model.predictor.state_dict()[key], value) for key, value in saved.items())


def validation_losses(out: Path) -> list[float]:
    return [entry["validation/main/loss"] for entry in json.loads((out / "log").read_text())]


@pytest.mark.parametrize(
    ("start", "flags"),
    [("compiled", ["--compile"]), ("compiled", []), ("eager", ["--compile"])],
    ids=["compiled-from-compiled", "eager-from-compiled", "compiled-from-eager"],
)
def test_resume_across_compiled_and_eager_runs(runs: Runs, start: str, flags: list[str]) -> None:
    """Each resume trains epoch 2 as an eager run resumed from the eager snapshot does (to float rounding)."""
    name = f"{'compiled' if flags else 'eager'}-from-{start}"
    out = runs.train(name, "-r", str(runs.root / start / "snapshot_iter_2"), *flags, epochs=2)
    assert (runs.graphs[name] > 0) == bool(flags)
    resumed = torch.load(out / "snapshot_iter_4", weights_only=True)
    assert resumed["global_step"] == 4
    reference = torch.load(runs.root / "eager-from-eager" / "snapshot_iter_4", weights_only=True)
    assert list(resumed["state_dict"]) == list(reference["state_dict"])
    for key, value in reference["state_dict"].items():
        torch.testing.assert_close(resumed["state_dict"][key], value, rtol=1e-4, atol=1e-5)
    assert validation_losses(out) == pytest.approx(validation_losses(runs.root / "eager-from-eager"), rel=1e-4)


def test_compile_without_a_cpp_compiler_is_one_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CXX", "no-such-compiler++")
    data = make_mnist(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    argv = ["--data-dir", str(data), "-e", "1", *QUICK, "--compile"]
    assert cli.main(argv) == 2
    assert capsys.readouterr().err == (
        "error: --compile on the CPU needs a C++ compiler, and no-such-compiler++ is not on PATH: install one (or "
        "set CXX), or drop --compile.\n"
    )
    assert sorted(os.listdir(tmp_path)) == ["data"]


def test_the_compiler_check_passes_on_a_machine_with_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CXX", raising=False)
    check_compile("cpu")
