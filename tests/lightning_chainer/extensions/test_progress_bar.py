"""ProgressBar: plain lines when the output is not a terminal, in the place of Lightning's tqdm bar."""

from __future__ import annotations

import io

from helpers import FixedModule, make_trainer, train_loader

from lightning_chainer.extensions import ProgressBar


def test_progress_bar_plain_lines_when_not_a_terminal_and_replaces_tqdm() -> None:
    out = io.StringIO()
    bar = ProgressBar(update_interval=4, out=out)
    trainer = make_trainer([bar], max_epochs=2)
    trainer.fit(FixedModule(), train_loader())
    assert trainer.progress_bar_callback is bar
    lines = out.getvalue().splitlines()
    assert len(lines) == 4 and "\x1b" not in out.getvalue()
    assert lines[1].startswith("8 iter, 1 epoch / 2 epochs, total 50.00%, this epoch 0.00%")
