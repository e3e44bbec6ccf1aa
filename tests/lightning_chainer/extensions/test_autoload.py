"""autoload: the snapshot a run resumes from is the highest-numbered readable one, and never none silently."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from helpers import FixedModule, callbacks, chainer_trainers, make_trainer, touch, train_loader, val_loader

from lightning_chainer.extensions import SnapshotError, apply_autoload, find_latest_snapshot, list_snapshots, snapshot


def names(paths: list[str]) -> list[str]:
    """The file names of ``paths``, in their order."""
    return [os.path.basename(p) for p in paths]


def test_snapshots_are_ordered_by_the_number_in_their_name_not_their_mtime(tmp_path: Path) -> None:
    for i, name in enumerate(["snapshot_iter_10", "snapshot_iter_9", "snapshot_iter_2"]):
        touch(tmp_path / name, 1000.0 + i)  # the lowest iteration was written last
    for name in ("snapshot_iter_10.bak", "snapshot_iter_x", ".snapshot_iter_11.abcd1234.tmp"):
        touch(tmp_path / name, 2000.0)
    assert names(list_snapshots(str(tmp_path))) == ["snapshot_iter_2", "snapshot_iter_9", "snapshot_iter_10"]
    assert find_latest_snapshot(str(tmp_path)) == str(tmp_path / "snapshot_iter_10")


@pytest.mark.parametrize(
    ("template", "files", "expected"),
    [
        ("model_epoch_{epoch}", ["model_epoch_12", "model_epoch_3"], ["model_epoch_3", "model_epoch_12"]),
        ("snap_{epoch_detail}", ["snap_10.0", "snap_2.25", "snap_1.5"], ["snap_1.5", "snap_2.25", "snap_10.0"]),
        ("e{epoch}_i{iteration}", ["e2_i9", "e1_i10", "e1_i8"], ["e1_i8", "e2_i9", "e1_i10"]),
        ("snap_{name}", ["snap_b", "snap_a", "snap_c"], ["snap_b", "snap_a", "snap_c"]),  # no number: by mtime
    ],
)
def test_templates_order_by_iteration_then_epoch_then_mtime(
    tmp_path: Path, template: str, files: list[str], expected: list[str]
) -> None:
    for i, name in enumerate(files):
        touch(tmp_path / name, 1000.0 + i)
    assert names(list_snapshots(str(tmp_path), template)) == expected


def two_snapshots(out: Path) -> None:
    """Train two epochs with a snapshot each into ``out``: ``snapshot_iter_8`` and ``snapshot_iter_16``."""
    make_trainer([snapshot(out=str(out))], max_epochs=2).fit(FixedModule(), train_loader())
    assert sorted(os.listdir(out)) == ["snapshot_iter_16", "snapshot_iter_8"]


@pytest.mark.parametrize("damage", ["truncated", "garbage", "no state_dict"])
def test_autoload_passes_over_an_unreadable_newest_snapshot(
    tmp_path: Path, capsys: pytest.CaptureFixture, damage: str
) -> None:
    two_snapshots(tmp_path)
    newest = tmp_path / "snapshot_iter_16"
    if damage == "truncated":
        newest.write_bytes(newest.read_bytes()[:2000])
    elif damage == "garbage":
        newest.write_bytes(os.urandom(5000))
    else:
        torch.save({"epoch": 2}, newest)
    capsys.readouterr()
    trainer = make_trainer([snapshot(out=str(tmp_path), autoload=True)])
    assert apply_autoload(trainer) == str(tmp_path / "snapshot_iter_8") == trainer.ckpt_path
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"autoload: skipped {newest}: ")
    assert line.endswith(f"resuming from {tmp_path}/snapshot_iter_8.")


def test_autoload_with_only_unreadable_snapshots_raises_one_sentence(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    two_snapshots(tmp_path)
    for name in ("snapshot_iter_8", "snapshot_iter_16"):
        (tmp_path / name).write_bytes(b"garbage")
    capsys.readouterr()
    with pytest.raises(SnapshotError) as raised:
        apply_autoload(make_trainer([snapshot(out=str(tmp_path), autoload=True)]))
    message = str(raised.value)
    assert isinstance(raised.value, ValueError)
    assert message.startswith(f"no snapshot in {tmp_path} can be resumed from: {tmp_path}/snapshot_iter_16 (")
    assert f"{tmp_path}/snapshot_iter_8 (" in message and message.endswith("move them away to start over.")
    assert "\n" not in message and capsys.readouterr().err == ""  # the error is the only thing said


def test_autoload_without_snapshots_starts_over(tmp_path: Path) -> None:
    assert apply_autoload(make_trainer([snapshot(out=str(tmp_path), autoload=True)])) is None


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


def test_autoload_accepts_an_explicit_ckpt_path(tmp_path: Path) -> None:
    make_trainer(callbacks(tmp_path), max_epochs=1).fit(FixedModule(), train_loader(), val_loader())
    resumed = callbacks(tmp_path, autoload=True)
    latest = find_latest_snapshot(str(tmp_path))
    make_trainer(resumed, max_epochs=2).fit(FixedModule(), train_loader(), val_loader(), ckpt_path=latest)
    assert [e["epoch"] for e in resumed[2].log] == [1, 2]


@pytest.mark.parametrize(
    ("written", "listed"),
    [
        ("snapshot_iter_{.updater.iteration}", "snapshot_iter_{iteration}"),
        ("snapshot_iter_{iteration}", "snapshot_iter_{.updater.iteration}"),
        ("snap_{.updater.epoch_detail}", "snap_{epoch_detail}"),
        ("model_epoch_{epoch}", "model_epoch_{0.updater.epoch}"),
    ],
)
def test_either_spelling_lists_the_files_chainer_names_by_the_other(tmp_path: Path, written: str, listed: str) -> None:
    """Names as Chainer's ``written.format(trainer)`` makes them (or ours), newest written first, at 8 an epoch."""
    chainer_form = written if ".updater" in written else listed
    made = []
    for i, trainer in chainer_trainers([3, 9, 24, 17], iters_per_epoch=8):
        trainer.updater.epoch = i // 8
        made.append(chainer_form.format(trainer))
        touch(tmp_path / made[-1], 3000.0 - i)  # the newest mtime on the oldest file
    expected = [made[i] for i in (0, 1, 3, 2)]  # by the number in the name
    assert names(list_snapshots(str(tmp_path), listed)) == names(list_snapshots(str(tmp_path), written)) == expected


def test_autoload_with_chainers_default_template_resumes_from_files_named_by_ours(tmp_path: Path) -> None:
    make_trainer([snapshot(filename="snapshot_iter_{iteration}", out=str(tmp_path))], max_epochs=2).fit(
        FixedModule(), train_loader()
    )
    trainer = make_trainer([snapshot(out=str(tmp_path), autoload=True)], max_epochs=3)
    assert trainer.callbacks[0].filename == "snapshot_iter_{.updater.iteration}"
    assert apply_autoload(trainer) == str(tmp_path / "snapshot_iter_16")
