"""The overhead rule, measured on the CPU: no host read of a tensor on an ordinary training step.

On a GPU every ``.item()``, ``float(tensor)``, ``.tolist()`` or ``.cpu()`` waits for the queued kernels. The CPU
has no such wait, so this test counts the reads themselves: a ``TorchFunctionMode`` sees every tensor method
call from the first ``on_train_batch_start`` hook to the last ``on_train_batch_end`` hook of every step, with
``scripts/train.py``'s whole set of extensions on.
"""

from __future__ import annotations

import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lightning.pytorch.callbacks import Callback
from torch.overrides import TorchFunctionMode

from mnist_lightning import cli

HOST_READS = {"item", "tolist", "numpy", "cpu", "__bool__", "__float__", "__int__", "__index__", "__format__"}


class HostReads(TorchFunctionMode):
    """Counts host reads per global step while ``step`` is set, with the caller's file, skipping torch's own."""

    def __init__(self) -> None:
        super().__init__()
        self.step: int | None = None
        self.reads: Counter[tuple[int, str, str]] = Counter()

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        name = getattr(func, "__name__", "")
        if self.step is not None and name in HOST_READS:
            caller = traceback.extract_stack(limit=2)[0]
            if "/torch/" not in caller.filename:  # e.g. torch.optim.Adam reads its CPU step counter
                self.reads[(self.step, name, f"{Path(caller.filename).name}:{caller.lineno}")] += 1
        return func(*args, **(kwargs or {}))


class Window(Callback):
    """Opens the counting window in the first callback's batch-start hook, closes it in the last's batch-end."""

    def __init__(self, mode: HostReads, opens: bool) -> None:
        self.mode, self.opens = mode, opens

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if self.opens:
            self.mode.step = trainer.global_step

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        if not self.opens:
            self.mode.step = None


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from ``tmp_path``: the TensorBoard logger writes ``lightning_logs/`` into the current folder."""
    monkeypatch.chdir(tmp_path)


def fit_counting_reads(argv: list[str], change: Callable[[Any], None] | None = None) -> tuple[HostReads, Any]:
    """Build ``scripts/train.py``'s trainer for ``argv`` (after ``change`` to the model), fit it counting reads."""
    run = cli.build(cli.build_parser().parse_args(argv))
    if change is not None:
        change(run.model)
    mode = HostReads()
    run.trainer.callbacks.insert(0, Window(mode, opens=True))
    run.trainer.callbacks.append(Window(mode, opens=False))
    with mode:
        run.trainer.fit(run.model, datamodule=run.datamodule)
    run.close(failed=False)
    return mode, run.trainer


def test_no_host_read_on_ordinary_steps(tiny_mnist: Path, tmp_path: Path) -> None:
    """160 steps with every extension on: reads only on the logger's steps (every 50th), none elsewhere."""
    argv = ["--data-dir", str(tiny_mnist), "-e", "2", "-b", "2", "--accelerator", "cpu", "-o", str(tmp_path / "out")]
    mode, trainer = fit_counting_reads(argv)
    assert trainer.global_step == 160
    log_steps = {step for step in range(160) if (step + 1) % trainer.log_every_n_steps == 0}
    assert {step for step, _, _ in mode.reads} <= log_steps, mode.reads


def test_the_counter_sees_a_read_in_training_step(tiny_mnist: Path, tmp_path: Path) -> None:
    """The same window catches one ``.item()`` a step when training_step makes it (the test can fail)."""

    def read_every_step(model: Any) -> None:
        step = model.training_step

        def reading_step(batch: Any, batch_idx: int) -> Any:
            outputs = step(batch, batch_idx)
            outputs["loss"].item()
            return outputs

        model.training_step = reading_step

    argv = ["--data-dir", str(tiny_mnist), "-e", "1", "-b", "16", "--accelerator", "cpu", "-o", str(tmp_path / "out")]
    mode, trainer = fit_counting_reads(argv, read_every_step)
    assert trainer.global_step == 10
    assert sorted(step for step, name, _ in mode.reads if name == "item") == list(range(10))
