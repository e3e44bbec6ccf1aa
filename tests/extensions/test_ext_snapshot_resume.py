"""Snapshots are complete Lightning checkpoints; resuming continues the log, triggers and schedule exactly."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
import torch
from ext_helpers import FixedModule, make_trainer, train_loader, val_loader

from lightning_chainer.extensions import (
    EarlyStoppingTrigger,
    ExponentialShift,
    LogReport,
    PrintReport,
    apply_autoload,
    find_latest_snapshot,
    list_snapshots,
    load_snapshot_object,
    observe_lr,
    snapshot,
    snapshot_object,
)


def callbacks(out: Path, **snap) -> list:
    return [
        observe_lr(),
        ExponentialShift("lr", 0.5, trigger=(1, "epoch")),
        LogReport(out=str(out)),
        snapshot(out=str(out), **snap),
    ]


def strip(log: list[dict]) -> list[dict]:
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


def test_test_after_an_autoloaded_fit_scores_the_trained_weights(tmp_path: Path) -> None:
    make_trainer(callbacks(tmp_path), max_epochs=1).fit(FixedModule(), train_loader(), val_loader())
    trainer = make_trainer(callbacks(tmp_path, autoload=True), max_epochs=3)
    assert apply_autoload(trainer) == str(tmp_path / "snapshot_iter_8")
    model = FixedModule()
    trainer.fit(model, train_loader(), val_loader())
    trained = {k: v.clone() for k, v in model.state_dict().items()}
    trainer.validate(model, val_loader(), verbose=False)
    assert trainer.ckpt_path is None
    assert all(torch.equal(trained[k], v) for k, v in model.state_dict().items())


def test_autoload_refuses_to_start_over_silently(tmp_path: Path) -> None:
    make_trainer(callbacks(tmp_path), max_epochs=1).fit(FixedModule(), train_loader(), val_loader())
    with pytest.raises(RuntimeError, match="autoload"):
        make_trainer(callbacks(tmp_path, autoload=True), max_epochs=2).fit(FixedModule(), train_loader())


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


def test_early_stopping_state_survives_resume(tmp_path: Path) -> None:
    class Plateau(FixedModule):
        def validation_step(self, batch, batch_idx):
            self.log("validation/main/loss", torch.tensor(1.0), batch_size=batch[0].shape[0])

    def cbs(out: Path) -> list:
        return [
            EarlyStoppingTrigger(monitor="validation/main/loss", patience=3),
            LogReport(out=str(out)),
            snapshot(out=str(out)),
        ]

    first = cbs(tmp_path / "a")
    make_trainer(first, max_epochs=3).fit(Plateau(), train_loader(), val_loader())
    assert first[0].count == 2  # epoch 1 sets best, epochs 2 and 3 do not improve
    resumed = cbs(tmp_path / "b")
    trainer = make_trainer(resumed, max_epochs=10)
    trainer.fit(Plateau(), train_loader(), val_loader(), ckpt_path=str(tmp_path / "a" / "snapshot_iter_24"))
    assert resumed[0].count == 3
    assert [e["epoch"] for e in resumed[1].log] == [1, 2, 3, 4]  # stopped after one more epoch, not three


def test_print_report_after_resume_reprints_header_and_rows_as_chainer(tmp_path: Path) -> None:
    make_trainer(callbacks(tmp_path), max_epochs=1).fit(FixedModule(), train_loader(), val_loader())
    out = io.StringIO()
    cbs = [*callbacks(tmp_path / "r"), PrintReport(["epoch", "iteration"], out=out)]
    make_trainer(cbs, max_epochs=2).fit(
        FixedModule(), train_loader(), val_loader(), ckpt_path=str(tmp_path / "snapshot_iter_8")
    )
    assert out.getvalue() == (
        "epoch       iteration \n\x1b[J1           8           \n\x1b[J2           16          \n"
    )


def test_autoload_accepts_an_explicit_ckpt_path(tmp_path: Path) -> None:
    make_trainer(callbacks(tmp_path), max_epochs=1).fit(FixedModule(), train_loader(), val_loader())
    resumed = callbacks(tmp_path, autoload=True)
    latest = find_latest_snapshot(str(tmp_path))
    make_trainer(resumed, max_epochs=2).fit(FixedModule(), train_loader(), val_loader(), ckpt_path=latest)
    assert [e["epoch"] for e in resumed[2].log] == [1, 2]


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
