"""Evaluator: the mean of batch means as Chainer, per-sample means when weighted, the module left as it was;
Chainer's arguments (target, converter, device, eval_hook, eval_func, progress_bar) with Chainer's meaning, and
what would fail later refused when built."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pytest
import torch
from helpers import FixedModule, make_trainer, train_loader, val_loader
from torch.utils.data import DataLoader, TensorDataset

from lightning_chainer.extensions import Evaluator, LogReport


def test_evaluator_weighted_gives_per_sample_mean_and_restores_train_mode(tmp_path: Path) -> None:
    class SizeModule(FixedModule):
        def validation_step(self, batch, batch_idx):
            n = batch[0].shape[0]
            self.log("validation/main/loss", torch.tensor(float(n)), batch_size=n)

    module = SizeModule()
    cbs = [
        Evaluator(val_loader(6), name="test", trigger=(1, "epoch")),
        Evaluator(val_loader(6), name="exact", weighted=True),
        LogReport(out=str(tmp_path)),
    ]
    make_trainer(cbs, max_epochs=1, limit_val_batches=0).fit(module, train_loader())
    entry = cbs[2].log[0]
    assert entry["test/main/loss"] == 3.0  # batches of 4 and 2: mean of batch means
    assert entry["exact/main/loss"] == (4 * 4 + 2 * 2) / 6
    assert module.training and "log" not in module.__dict__


@pytest.fixture(scope="module")
def chainer() -> Any:
    """Real Chainer 7.8.1."""
    from mnist_lightning.chainer_compat import import_chainer

    return import_chainer()


def test_chainers_positional_target_converter_device_and_hook(tmp_path: Path) -> None:
    """``Evaluator(loader, model, converter, device, eval_hook)`` as Chainer's example writes it."""
    calls: list[Any] = []

    class Scored(FixedModule):
        def validation_step(self, batch, batch_idx):
            calls.append(("step", batch[0].device, float(batch[0].sum())))
            self.log("validation/main/loss", batch[0].sum())

    def converter(batch: Any, device: torch.device) -> Any:
        calls.append(("convert", device))
        return [batch[0] + 1]

    other = Scored()
    evaluator = Evaluator(val_loader(8), other, converter, -1, lambda e: calls.append(("hook", e)))
    log = LogReport(out=str(tmp_path))
    make_trainer([evaluator, log], max_epochs=1, limit_val_batches=0).fit(FixedModule(), train_loader())
    cpu = torch.device("cpu")
    assert calls[0] == ("hook", evaluator) and calls[1] == ("convert", cpu)
    assert [c[0] for c in calls] == ["hook", "convert", "step", "convert", "step"]
    assert calls[2][1] == cpu
    batches = [float((x + 1).sum()) for (x,) in val_loader(8)]
    assert [c[2] for c in calls if c[0] == "step"] == batches
    assert log.log[0]["validation/main/loss"] == pytest.approx(sum(batches) / 2)
    assert evaluator.get_target() is other and evaluator.get_iterator("main") is evaluator.dataloader


def test_the_batch_goes_to_device_and_a_device_the_module_is_not_on_is_refused_at_fit_start() -> None:
    seen: list[torch.device] = []
    evaluator = Evaluator(val_loader(), FixedModule(), device="meta", eval_func=lambda x: seen.append(x.device))
    evaluator.evaluate()
    assert seen == [torch.device("meta")]
    module = FixedModule()
    with pytest.raises(ValueError, match=r"sends batches to meta, but the module it evaluates is on cpu: pass dev"):
        make_trainer([Evaluator(val_loader(), device="meta")], max_epochs=1).fit(module, train_loader())
    assert module.global_step == 0


def test_eval_func_gets_the_batch_items_and_reports_as_chainers(chainer: Any) -> None:
    """Chainer calls ``eval_func(*batch)`` (``**batch`` for dicts); the results are means of batch means."""
    from chainer import iterators, reporter
    from chainer.training import extensions as E

    x = np.linspace(-1, 1, 10, dtype=np.float32).reshape(-1, 1)
    t = np.arange(10, dtype=np.float32).reshape(-1, 1)
    examples = [{"x": x[i], "t": t[i]} for i in range(10)]
    link = chainer.Link()

    def chainer_func(x: Any, t: Any) -> None:
        reporter.report({"loss": float((x * t).sum()), "size": float(len(x))}, link)

    evaluator = E.Evaluator(iterators.SerialIterator(examples, 4, False, False), link, eval_func=chainer_func)
    evaluator.name = "validation"  # what trainer.extend names it
    chainer_result = evaluator()

    module = FixedModule()

    def ours_func(x: torch.Tensor, t: torch.Tensor) -> dict[str, Any]:
        module.log("main/loss", (x * t).sum())  # what a step logs on the target ...
        return {"main/size": float(len(x)), "loss": torch.tensor(99.0)}  # ... and returns ('loss' aside)

    loader = DataLoader([{"x": torch.from_numpy(x[i]), "t": torch.from_numpy(t[i])} for i in range(10)], batch_size=4)
    ours = Evaluator(loader, module, eval_func=ours_func).evaluate()
    assert {k: float(v) for k, v in ours.items()} == pytest.approx(chainer_result, rel=1e-6)
    assert sorted(ours) == sorted(chainer_result) == ["validation/main/loss", "validation/main/size"]
    tuples = Evaluator(val_loader(6), module, eval_func=lambda x: {"main/n": float(len(x))}).evaluate()
    assert float(tuples["validation/main/n"]) == 3.0  # a list batch [x] is passed as eval_func(x)


def speed_free(text: str) -> str:
    """Bar frames with the speed and ETA line replaced (they depend on the clock)."""
    return re.sub(r"[^\n]*iters/sec\. Estimated time to finish: [^\n]*\.\n", "SPEED\n", text)


def test_progress_bar_prints_chainers_frames_on_stdout(chainer: Any, capsys: pytest.CaptureFixture) -> None:
    from chainer import iterators
    from chainer.training import extensions as E

    data = np.arange(10, dtype=np.float32).reshape(-1, 1)
    link = chainer.Link()
    E.Evaluator(iterators.SerialIterator(data, 4, False, False), link, eval_func=lambda x: None, progress_bar=True)()
    expected = capsys.readouterr()
    loader = DataLoader(TensorDataset(torch.from_numpy(data)), batch_size=4)
    Evaluator(loader, FixedModule(), eval_func=lambda x: None, progress_bar=True).evaluate()
    ours = capsys.readouterr()
    assert speed_free(ours.out) == speed_free(expected.out) and ours.err == expected.err == ""
    assert "         0 / 10 iterations" in ours.out and "\x1b[3A\x1b[J" in ours.out
    assert "-" not in ours.out.split("SPEED")[-1]


REFUSED: list[tuple[Any, str]] = [
    (lambda c: Evaluator(c.iterators.SerialIterator([1, 2], 1, repeat=False)), "not a Chainer SerialIterator: pass"),
    (lambda c: Evaluator(c.datasets.TupleDataset([1, 2], [3, 4])), "not a Chainer TupleDataset"),
    (lambda c: Evaluator(iter(val_loader())), "one-shot iterator, empty at the second evaluation"),
    (lambda c: Evaluator(3), "must be a DataLoader"),
    (lambda c: Evaluator({"main": val_loader(), "test": val_loader()}), "one iterator, not ['main', 'test']"),
    (lambda c: Evaluator(val_loader(), c.Link()), "not a Chainer link"),
    (lambda c: Evaluator(val_loader(), torch.nn.Linear(1, 1)), "has no validation_step to call: pass eval_func"),
    (lambda c: Evaluator(val_loader(), L.LightningModule()), "has no validation_step to call"),
    (lambda c: Evaluator(val_loader(), converter=c.dataset.concat_examples), "converter is Chainer's"),
    (lambda c: Evaluator(val_loader(), eval_func=3), "eval_func must be a function"),
    (lambda c: Evaluator(val_loader(), device="@cupy"), "Evaluator(device='@cupy') is not a device: use -1"),
    (lambda c: Evaluator(val_loader(), device=True), "is not a device"),
    (lambda c: Evaluator(val_loader(), device=99), "names CUDA device 99, but this machine has"),
    (lambda c: Evaluator((b for b in [1]), progress_bar=True), "one-shot iterator"),
    (lambda c: Evaluator(Unsized(), progress_bar=True), "progress_bar=True) needs a loader with a length"),
    (lambda c: Evaluator(val_loader(), name=""), "must be a non-empty str"),
]


class Unsized:
    """Re-iterable batches with no length."""

    def __iter__(self) -> Any:
        return iter([])


@pytest.mark.parametrize(("make", "words"), REFUSED)
def test_what_would_fail_at_the_first_evaluation_is_refused_when_built(chainer: Any, make: Any, words: str) -> None:
    with pytest.raises((TypeError, ValueError)) as raised:
        make(chainer)
    message = str(raised.value)
    assert words in message and "\n" not in message and message.endswith(".")


def test_a_trained_module_without_validation_step_is_refused_at_fit_start() -> None:
    class NoSteps(FixedModule):
        validation_step = L.LightningModule.validation_step

    with pytest.raises(TypeError, match="evaluates NoSteps, which has no validation_step"):
        make_trainer([Evaluator(val_loader())], max_epochs=1).fit(NoSteps(), train_loader())
