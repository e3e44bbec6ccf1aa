"""Snapshots are complete Lightning checkpoints; resuming continues the log, triggers and schedule exactly;
Chainer's templates name the same files as Chainer, and what snapshot() cannot honour is refused when built."""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import FixedModule, callbacks, make_trainer, run_chainer, touch, train_loader, val_loader
from lightning.pytorch.strategies import SingleDeviceStrategy

from lightning_chainer import Extension
from lightning_chainer.extensions import (
    Snapshot,
    SnapshotObject,
    apply_autoload,
    find_latest_snapshot,
    list_snapshots,
    load_snapshot_object,
    snapshot,
    snapshot_object,
)


def strip(log: list[dict]) -> list[dict]:
    """The log entries without their ``elapsed_time``."""
    return [{k: v for k, v in e.items() if k != "elapsed_time"} for e in log]


@pytest.mark.parametrize("validate", [True, False])
def test_resume_from_end_of_epoch_snapshot_continues_with_next_epoch(tmp_path: Path, validate: bool) -> None:
    val = val_loader() if validate else None
    full = callbacks(tmp_path / "full")
    make_trainer(full, max_epochs=3).fit(FixedModule(log_real=True), train_loader(), val)

    first = callbacks(tmp_path / "first")
    make_trainer(first, max_epochs=2).fit(FixedModule(log_real=True), train_loader(), val)
    assert sorted(os.listdir(tmp_path / "first")) == ["log", "snapshot_iter_16", "snapshot_iter_8"]

    resumed = callbacks(tmp_path / "resumed")
    trainer = make_trainer(resumed, max_epochs=3)
    trainer.fit(FixedModule(log_real=True), train_loader(), val, ckpt_path=str(tmp_path / "first" / "snapshot_iter_8"))
    log = resumed[2].log
    assert [e["epoch"] for e in log] == [1, 2, 3]
    assert [e["iteration"] for e in log] == [8, 16, 24]
    times = [e["elapsed_time"] for e in log]
    assert times == sorted(times)
    assert strip(log) == strip(full[2].log)
    assert [e["lr"] for e in log] == [0.1, 0.05, 0.025]
    assert trainer.global_step == 24


def test_snapshot_is_a_weights_only_readable_checkpoint_with_every_state(tmp_path: Path) -> None:
    make_trainer(callbacks(tmp_path), max_epochs=1).fit(FixedModule(), train_loader(), val_loader())
    ckpt = torch.load(tmp_path / "snapshot_iter_8", weights_only=True)
    assert {"state_dict", "optimizer_states", "loops", "callbacks"} <= set(ckpt)
    states = {k: v for k, v in ckpt["callbacks"].items() if k.startswith("LogReport")}
    (state,) = states.values()
    assert state["extension"]["log"][0]["iteration"] == 8
    assert state["trigger"] == {"previous_iteration": 8, "previous_epoch_detail": 1.0}


def test_n_retains_keeps_the_highest_iterations(tmp_path: Path) -> None:
    touch(tmp_path / "snapshot_iter_4", 4e9)  # an older snapshot with the newest mtime
    make_trainer([snapshot(out=str(tmp_path), n_retains=2)], max_epochs=2).fit(FixedModule(), train_loader())
    assert sorted(os.listdir(tmp_path)) == ["snapshot_iter_16", "snapshot_iter_8"]


def test_n_retains_prunes_after_save_and_autoload_finds_newest_complete(tmp_path: Path) -> None:
    make_trainer(callbacks(tmp_path, n_retains=2), max_epochs=3).fit(FixedModule(), train_loader(), val_loader())
    assert sorted(p for p in os.listdir(tmp_path) if p.startswith("snapshot")) == [
        "snapshot_iter_16",
        "snapshot_iter_24",
    ]
    (tmp_path / ".snapshot_iter_32.tmp").write_bytes(b"truncated")  # a killed save leaves only a hidden temp file
    assert find_latest_snapshot(str(tmp_path)) == str(tmp_path / "snapshot_iter_24")
    assert [os.path.basename(p) for p in list_snapshots(str(tmp_path))] == ["snapshot_iter_16", "snapshot_iter_24"]

    resumed = callbacks(tmp_path, autoload=True)
    trainer = make_trainer(resumed, max_epochs=4)
    assert apply_autoload(trainer) == str(tmp_path / "snapshot_iter_24")
    trainer.fit(FixedModule(), train_loader(), val_loader())
    assert [e["epoch"] for e in resumed[2].log] == [1, 2, 3, 4]


def test_snapshot_object_saves_state_dict_loadable_into_fresh_module(tmp_path: Path) -> None:
    model = FixedModule()
    cbs = [snapshot_object(model.layer, "model_epoch_{epoch}", out=str(tmp_path))]
    make_trainer(cbs, max_epochs=2).fit(model, train_loader())
    assert sorted(os.listdir(tmp_path)) == ["model_epoch_1", "model_epoch_2"]
    fresh = load_snapshot_object(str(tmp_path / "model_epoch_2"), torch.nn.Linear(1, 1))
    assert torch.equal(fresh.weight, model.layer.weight)


def test_snapshot_on_error_saves_when_training_fails(tmp_path: Path) -> None:
    class Failing(FixedModule):
        def training_step(self, batch, batch_idx):
            if self.global_step == 3:
                raise ValueError("boom")
            return super().training_step(batch, batch_idx)

    cbs = [snapshot(out=str(tmp_path), snapshot_on_error=True)]
    with pytest.raises(ValueError, match="boom"):
        make_trainer(cbs).fit(Failing(), train_loader())
    assert os.listdir(tmp_path) == ["snapshot_iter_3"]


class OwnSaveStrategy(SingleDeviceStrategy):
    """Stands in for DeepSpeed or FSDP, whose ``save_checkpoint`` is their own."""

    def save_checkpoint(self, checkpoint, filepath, storage_options=None) -> None:
        super().save_checkpoint(checkpoint, filepath, storage_options)


def test_a_strategy_with_its_own_save_still_writes_under_a_temp_name_in_out(tmp_path: Path) -> None:
    trainer = make_trainer([snapshot(out=str(tmp_path))], max_epochs=1, strategy=OwnSaveStrategy(torch.device("cpu")))
    trainer.fit(FixedModule(), train_loader())
    assert os.listdir(tmp_path) == ["snapshot_iter_8"]
    assert "state_dict" in torch.load(tmp_path / "snapshot_iter_8", weights_only=True)


def test_snapshot_carries_rng_states_that_resume_continues_from() -> None:
    import random

    import numpy as np

    from lightning_chainer.extensions.snapshot import restore_rng_states, rng_states

    torch.manual_seed(3)
    random.seed(3)
    np.random.seed(3)
    saved = rng_states()
    expected = (torch.rand(3), random.random(), np.random.rand())
    torch.manual_seed(99)
    random.seed(99)
    np.random.seed(99)
    buffer = io.BytesIO()
    torch.save(saved, buffer)
    buffer.seek(0)
    restore_rng_states(torch.load(buffer, weights_only=True))
    assert torch.equal(torch.rand(3), expected[0])
    assert random.random() == expected[1] and np.random.rand() == expected[2]


#: Chainer's templates, each with the trigger it runs under: every 3 iterations crosses epochs mid-way.
CHAINER_TEMPLATES = [
    ("snapshot_iter_{.updater.iteration}", (3, "iteration")),
    ("model_epoch_{.updater.epoch}", (1, "epoch")),
    ("snap_{.updater.epoch_detail}", (3, "iteration")),
    ("e{0.updater.epoch}_i{0.updater.iteration:05d}", (5, "iteration")),
]


@pytest.mark.parametrize(("template", "trigger"), CHAINER_TEMPLATES)
def test_chainers_templates_name_the_files_chainer_names(tmp_path: Path, template: str, trigger: tuple) -> None:
    from mnist_lightning.chainer_compat import import_chainer

    import_chainer()
    from chainer.training import extensions as E

    module, out = FixedModule(), str(tmp_path / "ours")
    if "model" in template:
        make: Any = lambda trainer, model: E.snapshot_object(model, template)  # noqa: E731
        ours = snapshot_object(module.layer, template, out=out, trigger=trigger)
    else:
        make, ours = E.snapshot(filename=template), snapshot(filename=template, out=out, trigger=trigger)
    run_chainer([(make, {"trigger": trigger})], str(tmp_path / "chainer"))
    make_trainer([ours], max_epochs=2).fit(module, train_loader())
    chainer_names = sorted(os.listdir(tmp_path / "chainer"))
    assert len(chainer_names) >= 2
    assert sorted(os.listdir(tmp_path / "ours")) == chainer_names


REFUSED: list[tuple[Any, str]] = [
    (lambda: snapshot(filename="snapshot_{}"), "names {}, which a snapshot cannot fill: use {.updater.iteration}"),
    (lambda: snapshot(filename="snapshot_{0}"), "names {0}, which a snapshot cannot fill"),
    (lambda: snapshot(filename="snapshot_{.updater.foo}"), "names {.updater.foo}"),
    (lambda: snapshot(filename="snapshot_{iteration:s}"), "cannot be formatted"),
    (lambda: snapshot(filename="s_{.updater.epoch}_{0.updater.iteration}"), "cannot switch from automatic field"),
    (lambda: snapshot(filename="snapshot_{"), "write a literal brace as '{{'"),
    (lambda: snapshot(filename=lambda trainer: "x"), "must be a template string"),
    (lambda: snapshot(savefun=torch.save), "savefun=...) is not supported"),
    (lambda: snapshot("snapshot_{iteration}"), "first argument (snapshot_object's third) is Chainer's savefun"),
    (lambda: snapshot(writer=object()), "writer=...) is not supported"),
    (lambda: snapshot(n_retains="2"), "n_retains='2') must be an int"),
    (lambda: snapshot(autoload="yes"), "autoload='yes') must be True or False"),
    (lambda: snapshot(condition=True), "condition=True) must be a function"),
    (lambda: snapshot(retain=2), "unexpected keyword argument 'retain'"),
    (lambda: snapshot_object(None, "m_{epoch}"), "has nothing to save"),
    (lambda: snapshot_object(object(), "m_{epoch}"), "must have state_dict() and load_state_dict()"),
    (lambda: snapshot_object(torch.nn.Linear(1, 1), "m_{epoch}", (1, "epoch")), "is Chainer's savefun"),
]


@pytest.mark.parametrize(("make", "words"), REFUSED)
def test_what_snapshot_cannot_honour_is_refused_when_built_in_one_sentence(make: Any, words: str) -> None:
    with pytest.raises((TypeError, ValueError)) as raised:
        make()
    message = str(raised.value)
    assert words in message and "\n" not in message and message.endswith(".")


def test_condition_target_and_num_retain_have_chainers_meaning(tmp_path: Path) -> None:
    answers = iter([False, True])
    model = FixedModule()
    with pytest.warns(DeprecationWarning, match="num_retain"):
        retained = snapshot(filename="r_{.updater.iteration}", out=str(tmp_path), num_retain=1)
    cbs = [
        snapshot(out=str(tmp_path), condition=lambda: next(answers)),  # asked only when the trigger fires
        snapshot(target=model.layer, filename="layer_{.updater.epoch}", out=str(tmp_path)),
        retained,
    ]
    assert isinstance(cbs[1], SnapshotObject) and retained.n_retains == 1
    make_trainer(cbs, max_epochs=2).fit(model, train_loader())
    assert sorted(os.listdir(tmp_path)) == ["layer_1", "layer_2", "r_16", "snapshot_iter_16"]
    assert set(torch.load(tmp_path / "layer_2", weights_only=True)) == {"weight", "bias"}


def test_snapshot_object_autoload_loads_the_newest_into_its_target_when_training_starts(tmp_path: Path) -> None:
    trained = FixedModule()
    make_trainer([snapshot_object(trained.layer, "layer_{.updater.epoch}", out=str(tmp_path))], max_epochs=2).fit(
        trained, train_loader()
    )
    (tmp_path / "layer_3").write_bytes(b"truncated")  # the newest by its number, but unreadable: passed over
    seen: dict[str, torch.Tensor] = {}

    class Look(Extension):
        priority = -200  # initialized after the snapshots

        def initialize(self, trainer, pl_module) -> None:
            seen.update({k: v.clone() for k, v in pl_module.layer.state_dict().items()})

    fresh = FixedModule()
    torch.nn.init.constant_(fresh.layer.weight, 7.0)
    objects = snapshot_object(fresh.layer, "layer_{epoch}", out=str(tmp_path), autoload=True)
    trainer = make_trainer([objects, Look()], max_epochs=1)
    assert apply_autoload(trainer) is None  # a state_dict does not resume the run
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(fresh, train_loader())
    assert torch.equal(seen["weight"], trained.layer.weight.detach())
    assert isinstance(objects, Snapshot)
