"""ParameterStatistics: the same keys and values as real Chainer's from the same weights and gradients.

The keys compare after the documented mapping: torch's ``weight``/``bias`` are Chainer's ``W``/``b``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import MLP, chainer_trainers, make_trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_chainer import Step
from lightning_chainer.extensions import LogReport, ParameterStatistics
from lightning_chainer.tensor_statistics import percentile

ITERS_PER_EPOCH = 3


class Holder(nn.Module):
    """Stands for the LightningModule: the MLP is its ``predictor``, as in Chainer's Classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.predictor = MLP()


def chainer_extensions() -> Any:
    """``chainer.training.extensions``, Chainer imported the way it imports on this Python."""
    from mnist_lightning.chainer_compat import import_chainer

    import_chainer()
    from chainer.training import extensions

    return extensions


def chainer_model() -> Any:
    chainer_extensions()
    import chainer
    import chainer.links as CL

    class ChainerMLP(chainer.Chain):
        def __init__(self) -> None:
            super().__init__()
            with self.init_scope():
                self.l1 = CL.Linear(5, 4)
                self.l2 = CL.Linear(4, 3)

    return CL.Classifier(ChainerMLP())


def set_values(ours: MLP, theirs: Any, rng: np.random.Generator, nan_in: str | None = None) -> None:
    """The same random values and gradients (a fifth of them exactly zero) in the torch and Chainer MLPs."""
    for layer in ("l1", "l2"):
        for torch_name, chainer_name in (("weight", "W"), ("bias", "b")):
            param = getattr(getattr(ours, layer), torch_name)
            data, grad = (rng.standard_normal(tuple(param.shape)).astype(np.float32) for _ in range(2))
            data[rng.random(data.shape) < 0.2] = 0
            if nan_in == f"{layer}.{torch_name}":
                data.flat[0] = np.nan
            with torch.no_grad():
                param.copy_(torch.from_numpy(data))
            param.grad = torch.from_numpy(grad.copy())
            variable = getattr(getattr(theirs, layer), chainer_name)
            variable.array[...] = data
            variable.grad = grad.copy()


def chainer_key(key: str) -> str:
    return key.replace("/weight/", "/W/").replace("/bias/", "/b/")


def compare_runs(
    ours: ParameterStatistics, theirs: Any, holder: Holder, chainer_mlp: Any, nan_at: dict[int, str] | None = None
) -> int:
    """Run both for 6 iterations (2 epochs) on the same values; the reported dicts must agree; returns reports."""
    from chainer import reporter

    rng = np.random.default_rng(0)
    reports = 0
    for i, trainer in chainer_trainers(range(1, 7), ITERS_PER_EPOCH):
        set_values(holder.predictor, chainer_mlp, rng, (nan_at or {}).get(i))
        observation: dict[str, Any] = {}
        with reporter.Reporter().scope(observation):
            theirs(trainer)
        step = Step(None, holder, i, i // ITERS_PER_EPOCH, i / ITERS_PER_EPOCH)  # type: ignore[arg-type]
        ours.run(step)
        got = {chainer_key(k): float(v) for k, v in step.observation.items()}
        want = {k: float(v) for k, v in observation.items()}
        assert list(got) == sorted(got, key=list(want).index) and set(got) == set(want), i
        np.testing.assert_allclose([got[k] for k in want], list(want.values()), rtol=1e-6, atol=1e-7)
        reports += bool(want)
    return reports


def test_default_statistics_equal_chainers() -> None:
    extensions = chainer_extensions()
    holder, model = Holder(), chainer_model()
    ours = ParameterStatistics(holder.predictor)
    theirs = extensions.ParameterStatistics(model.predictor)
    assert compare_runs(ours, theirs, holder, model.predictor) == 2  # at the end of each epoch
    assert ours.priority == theirs.priority


def test_a_statistics_dict_a_prefix_and_nan_parameters_equal_chainers() -> None:
    extensions = chainer_extensions()
    holder, model = Holder(), chainer_model()
    mine = {"absmax": lambda x: x.abs().max(), "quartiles": lambda x: percentile(x, (25, 75))}
    chainers = {"absmax": lambda x: np.abs(x).max(), "quartiles": lambda x: np.percentile(x, (25, 75))}
    options = dict(report_grads=False, prefix="stats", trigger=(1, "iteration"), skip_nan_params=True)
    ours = ParameterStatistics([holder.predictor.l1, holder.predictor], mine, **options)
    theirs = extensions.ParameterStatistics([model.predictor.l1, model.predictor], chainers, **options)
    assert compare_runs(ours, theirs, holder, model.predictor, nan_at={2: "l1.weight", 5: "l2.bias"}) == 6


def test_the_interval_survives_a_checkpoint(tmp_path: Path) -> None:
    extensions = chainer_extensions()
    holder, model = Holder(), chainer_model()
    ours = ParameterStatistics(holder.predictor, trigger=(6, "iteration"))
    theirs = extensions.ParameterStatistics(model.predictor, trigger=(6, "iteration"))
    from chainer import reporter

    rng = np.random.default_rng(1)
    for i, trainer in chainer_trainers(range(1, 7), ITERS_PER_EPOCH):
        if i == 4:  # a checkpoint in the middle of the interval, read back as a weights-only checkpoint
            torch.save(ours.state_dict(), tmp_path / "state.pt")
            ours = ParameterStatistics(holder.predictor, trigger=(6, "iteration"))
            ours.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True))
        set_values(holder.predictor, model.predictor, rng)
        observation: dict[str, Any] = {}
        with reporter.Reporter().scope(observation):
            theirs(trainer)
        step = Step(None, holder, i, i // ITERS_PER_EPOCH, i / ITERS_PER_EPOCH)  # type: ignore[arg-type]
        ours.run(step)
    assert observation and {chainer_key(k) for k in step.observation} == set(observation)
    for key, value in step.observation.items():
        assert float(value) == pytest.approx(float(observation[chainer_key(key)]), rel=1e-6, abs=1e-7)


class Module(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.predictor = MLP()

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, t = batch
        return F.cross_entropy(self.predictor(x), t)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.0)  # the weights stay as they are: known statistics


def test_log_report_logs_the_statistics_as_tensors_reach_it(tmp_path: Path) -> None:
    generator = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.rand(12, 5, generator=generator), torch.randint(0, 3, (12,), generator=generator))
    module = Module()
    log = LogReport(out=str(tmp_path))
    make_trainer([log, ParameterStatistics(module.predictor)], max_epochs=2).fit(module, DataLoader(data, batch_size=4))
    assert [entry["iteration"] for entry in log.log] == [3, 6]
    weight = module.predictor.l1.weight.detach()
    entry = log.log[-1]
    assert entry["predictor/l1/weight/data/max"] == pytest.approx(float(weight.max()))
    assert entry["predictor/l1/weight/data/std"] == pytest.approx(float(weight.std(correction=0)))
    assert entry["predictor/l1/weight/data/percentile/3"] == pytest.approx(np.percentile(weight.numpy(), 50))
    assert entry["predictor/l2/bias/data/zeros"] == 0.0
    assert "predictor/l2/bias/grad/mean" in entry
    assert len([k for k in entry if k.startswith("predictor/")]) == 4 * 2 * (5 + 7)


def test_bad_arguments_raise_at_construction() -> None:
    with pytest.raises(TypeError, match="takes a torch module or a list of modules"):
        ParameterStatistics(torch.zeros(3))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must be 'default' or a dict"):
        ParameterStatistics(MLP(), statistics="mean")
    with pytest.raises(TypeError, match="must be 'default' or a dict of name -> function"):
        ParameterStatistics(MLP(), statistics={"mean": 1})  # type: ignore[dict-item]
