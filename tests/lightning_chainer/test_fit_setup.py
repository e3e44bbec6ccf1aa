"""The ExtensionsManager's setup steps, one by one, on stand-ins for the Lightning trainer."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from lightning.pytorch.callbacks import TQDMProgressBar

from lightning_chainer import ExtensionsManager
from lightning_chainer.extensions import EarlyStoppingTrigger, LogReport, ProgressBar, snapshot
from lightning_chainer.fit_setup import (
    lift_default_epoch_limit,
    preload_autoload,
    refuse_mixing,
    replace_progress_bar,
)


def test_only_lightnings_default_epoch_limit_is_lifted() -> None:
    for max_epochs, max_steps, after in ((1000, -1, -1), (5, -1, 5), (1000, 40, 1000)):
        trainer = SimpleNamespace(max_steps=max_steps, fit_loop=SimpleNamespace(max_epochs=max_epochs))
        lift_default_epoch_limit(trainer)
        assert trainer.fit_loop.max_epochs == after


def test_what_is_left_in_callbacks_next_to_a_manager_is_named_with_where_it_goes() -> None:
    manager = ExtensionsManager()
    refuse_mixing(SimpleNamespace(callbacks=[manager, TQDMProgressBar()]), manager)  # a plain callback is fine
    others = ((LogReport(), "trainer.extend"), (EarlyStoppingTrigger(), "stop_trigger"), (ExtensionsManager(), "one"))
    for other, where in others:
        with pytest.raises(ValueError, match=where):
            refuse_mixing(SimpleNamespace(callbacks=[manager, other]), manager)


def test_a_progress_bar_extension_replaces_lightnings_bar() -> None:
    manager, tqdm = ExtensionsManager(), TQDMProgressBar()
    trainer = SimpleNamespace(callbacks=[manager, tqdm])
    replace_progress_bar(trainer, [LogReport()])
    assert trainer.callbacks == [manager, tqdm]
    replace_progress_bar(trainer, [ProgressBar()])
    assert trainer.callbacks == [manager]


def test_autoload_finds_nothing_to_load_without_a_snapshot(tmp_path: Path) -> None:
    trainer = SimpleNamespace(is_global_zero=True)
    assert preload_autoload(trainer, [snapshot(out=str(tmp_path), autoload=True)]) is None
    (tmp_path / "snapshot_iter_8").write_bytes(b"")
    assert preload_autoload(trainer, [snapshot(out=str(tmp_path))]) is None  # no autoload: not looked at
