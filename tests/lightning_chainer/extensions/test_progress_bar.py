"""ProgressBar: Chainer's frames byte for byte for every argument, plain lines when the output is not a terminal,
a notebook display inside Jupyter, and one-sentence errors for arguments it cannot draw with."""

from __future__ import annotations

import io
import itertools
import re
import sys
from types import SimpleNamespace
from typing import Any

import pytest
from helpers import FixedModule, make_trainer, run_chainer, train_loader

from lightning_chainer.extensions import ProgressBar
from lightning_chainer.extensions import progress_bar as progress_bar_module
from mnist_lightning.chainer_compat import import_chainer


def fake_time(monkeypatch: pytest.MonkeyPatch, module: Any) -> None:
    """``module``'s ``time.time()`` ticks 0.25 s a call, from the same start on each side, so speeds and ETAs agree."""
    ticks = itertools.count()
    monkeypatch.setattr(module, "time", SimpleNamespace(time=lambda: 1000.0 + 0.25 * next(ticks)))


def chainer_frames(monkeypatch: pytest.MonkeyPatch, tmp_path: Any, **kwargs: Any) -> str:
    """What real Chainer 7.8.1's ProgressBar draws in a 2-epoch run, given ``training_length``, ``bar_length`` and
    ``out`` the meaning its docstring gives them (7.8.1 passes none of them on to the bar it draws)."""
    import_chainer()
    from chainer.training.extensions import ProgressBar as ChainerProgressBar
    from chainer.training.extensions import util

    fake_time(monkeypatch, util)
    out = io.StringIO()
    bar = ChainerProgressBar(**kwargs, out=out)
    bar._pbar._bar_length = kwargs.get("bar_length", 50)
    bar._pbar._out = out
    bar._pbar.training_length = kwargs.get("training_length")
    run_chainer([(bar, {})], str(tmp_path))
    return out.getvalue()


def our_frames(monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> str:
    """What our ProgressBar draws (escape codes on) in the same 2-epoch run."""
    fake_time(monkeypatch, progress_bar_module)
    out = io.StringIO()
    make_trainer([ProgressBar(**kwargs, out=out, ansi=True)], max_epochs=2).fit(FixedModule(), train_loader())
    return out.getvalue()


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(update_interval=3),
        dict(training_length=(10, "iteration"), update_interval=2, bar_length=30),  # passes its length: 100%, ETA 0
        dict(training_length=(1.5, "epoch"), update_interval=5, bar_length=7),
        dict(training_length=(4, "epoch"), update_interval=1),
    ],
)
def test_progress_bar_frames_are_chainers_byte_for_byte(monkeypatch: pytest.MonkeyPatch, tmp_path: Any, kwargs) -> None:
    ours = our_frames(monkeypatch, **kwargs)
    assert ours == chainer_frames(monkeypatch, tmp_path, **kwargs)
    bars = re.findall(r"(?:     total|this epoch) \[([#.]*)\]", ours)
    assert len(bars) >= 6 and {len(bar) for bar in bars} == {kwargs.get("bar_length", 50)}
    assert ours.endswith("\x1b[4A\x1b[J")


def test_progress_bar_plain_lines_when_not_a_terminal_and_replaces_tqdm() -> None:
    out = io.StringIO()
    bar = ProgressBar(update_interval=4, out=out)
    trainer = make_trainer([bar], max_epochs=2)
    trainer.fit(FixedModule(), train_loader())
    assert trainer.progress_bar_callback is bar
    lines = out.getvalue().splitlines()
    assert len(lines) == 4 and "\x1b" not in out.getvalue()
    assert lines[1].startswith("8 iter, 1 epoch / 2 epochs, total 50.00%, this epoch 0.00%")


def test_progress_bar_in_a_notebook_updates_one_display_and_shows_the_last_iteration(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    import IPython.display

    shown: list[tuple[str, dict[str, str]]] = []

    class Handle:
        def update(self, bundle: dict[str, str], raw: bool) -> None:
            shown.append(("update", bundle))

    def display(bundle: dict[str, str], raw: bool, display_id: bool) -> Handle:
        shown.append(("display", bundle))
        return Handle()

    monkeypatch.setattr(IPython.display, "display", display)
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    frames = our_frames(monkeypatch, update_interval=5, notebook=True)
    assert frames == "" and sys.stdout.getvalue() == ""
    assert [kind for kind, _ in shown] == ["display", "update", "update", "update"]  # iterations 5, 10, 15, then 16
    chainer = chainer_frames(monkeypatch, tmp_path, update_interval=5)
    last_chainer_frame = chainer.split("\x1b[J")[-2].removesuffix("\x1b[4A")  # Chainer never draws iteration 16
    assert "        15 iter, 1 epoch / 2 epochs" in last_chainer_frame
    for _, bundle in shown:
        assert "\x1b" not in bundle["text/plain"] + bundle["text/html"]
    final = shown[-1][1]["text/plain"]
    assert final.startswith(f"     total [{'#' * 50}] 100.00%\n") and "        16 iter, 2 epoch / 2 epochs\n" in final
    assert shown[-1][1]["text/html"].startswith('<pre class="lightning-chainer-progress">     total [###')


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(training_length=(10, "epochs")), r"ProgressBar\(training_length=\(10, 'epochs'\)\) must be a"),
        (dict(training_length=10), r"ProgressBar\(training_length=10\) must be a \(length, 'epoch'\)"),
        (dict(training_length=(0, "epoch")), "or None for the trainer's max_epochs"),
        (dict(update_interval=0), r"ProgressBar\(update_interval=0\) must be a positive whole number"),
        (dict(bar_length=2.5), r"ProgressBar\(bar_length=2.5\) must be a positive whole number"),
    ],
)
def test_progress_bar_refuses_arguments_it_cannot_draw_with(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ProgressBar(**kwargs)


@pytest.mark.parametrize(("kwargs", "message"), [(dict(ansi="yes"), "ansi="), (dict(notebook=1), "notebook must be")])
def test_progress_bar_refuses_switches_that_are_not_bools(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(TypeError, match=message):
        ProgressBar(**kwargs)
