"""VariableStatisticsPlot: the figure real Chainer draws from the same values, its sample, and a resume.

Chainer's figure is caught at its ``savefig`` (both draw on a ``matplotlib.figure.Figure``) and compared with
ours artist by artist: axes, titles, labels, legends, lines and bands with their data. Chainer draws its reservoir
sample from NumPy's global random state; ours from its own, seeded with ``torch.initial_seed()``, so seeding both
alike gives the same sample.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import lightning as L
import matplotlib
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import MLP, chainer_trainers, make_trainer
from matplotlib.figure import Figure
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_chainer import Step
from lightning_chainer.extensions import VariableStatisticsPlot

ITERS_PER_EPOCH = 3
SEED = 3


def chainer_mlp() -> Any:
    from mnist_lightning.chainer_compat import import_chainer

    chainer = import_chainer()
    import chainer.links as CL

    class ChainerMLP(chainer.Chain):
        def __init__(self) -> None:
            super().__init__()
            with self.init_scope():
                self.l1 = CL.Linear(5, 4)
                self.l2 = CL.Linear(4, 3)

    return ChainerMLP()


def set_values(ours: MLP, theirs: Any, rng: np.random.Generator, grads: bool = True) -> None:
    """The same random values and gradients in the torch MLP and, unless None, the Chainer one."""
    for layer in ("l1", "l2"):
        for torch_name, chainer_name in (("weight", "W"), ("bias", "b")):
            param = getattr(getattr(ours, layer), torch_name)
            data, grad = (rng.standard_normal(tuple(param.shape)).astype(np.float32) for _ in range(2))
            with torch.no_grad():
                param.copy_(torch.from_numpy(data))
            param.grad = torch.from_numpy(grad.copy()) if grads else None
            if theirs is None:
                continue
            variable = getattr(getattr(theirs, layer), chainer_name)
            variable.array[...] = data
            variable.grad = grad.copy() if grads else None


def describe(figure: Figure) -> list[dict[str, Any]]:
    """What each axes shows: title, labels, legend, and the data of every line, band and error bar."""
    axes = []
    for ax in figure.axes:
        legend = ax.get_legend()
        axes.append(
            {
                "title": ax.get_title(),
                "xlabel": ax.get_xlabel(),
                "legend": None if legend is None else [t.get_text() for t in legend.get_texts()],
                "lines": [(line.get_label(), line.get_xdata().tolist(), line.get_ydata()) for line in ax.lines],
                "collections": [
                    (type(c).__name__, [p.vertices for p in c.get_paths()] or c.get_segments()) for c in ax.collections
                ],
                "containers": [type(c).__name__ for c in ax.containers],
                "grid": any(line.get_visible() for line in ax.xaxis.get_gridlines()),
            }
        )
    return axes


def assert_same_figure(ours: Figure, theirs: Figure) -> None:
    mine, chainers = describe(ours), describe(theirs)
    assert len(mine) == len(chainers)
    for a, b in zip(mine, chainers, strict=True):
        assert (a["title"], a["xlabel"], a["legend"], a["containers"], a["grid"]) == (
            b["title"],
            b["xlabel"],
            b["legend"],
            b["containers"],
            b["grid"],
        )
        assert [(label, x) for label, x, _ in a["lines"]] == [(label, x) for label, x, _ in b["lines"]]
        for (_, _, y), (_, _, z) in zip(a["lines"], b["lines"], strict=True):
            np.testing.assert_allclose(y, z, rtol=1e-6, atol=1e-7)
        assert [kind for kind, _ in a["collections"]] == [kind for kind, _ in b["collections"]]
        for (_, paths), (_, their_paths) in zip(a["collections"], b["collections"], strict=True):
            assert len(paths) == len(their_paths)
            for p, q in zip(paths, their_paths, strict=True):
                np.testing.assert_allclose(p, q, rtol=1e-6, atol=1e-7)


@pytest.fixture
def caught(monkeypatch: pytest.MonkeyPatch) -> list[Figure]:
    """Every figure saved, ours and Chainer's, in order."""
    matplotlib.use("Agg")
    figures: list[Figure] = []
    savefig = Figure.savefig

    def catch(self: Figure, *args: Any, **kwargs: Any) -> None:
        figures.append(self)
        savefig(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", catch)
    return figures


def run_both(
    ours: VariableStatisticsPlot, theirs: Any, models: tuple[MLP, Any], caught: list[Figure], out: Path, last: int
) -> list[tuple[Figure, Figure]]:
    """Both extensions over iterations 1..last on the same values; the pairs (ours, Chainer's) of saved figures."""
    mlp, chain = models
    rng = np.random.default_rng(0)
    pairs = []
    for i, trainer in chainer_trainers(range(1, last + 1), ITERS_PER_EPOCH):
        trainer.out = str(out)
        set_values(mlp, chain, rng, grads=i % 4 != 1)  # no gradients at some iterations: zeros, as in Chainer
        before = len(caught)
        theirs(trainer)
        ours.run(Step(SimpleNamespace(is_global_zero=True), None, i, i // ITERS_PER_EPOCH, i / ITERS_PER_EPOCH))
        assert len(caught) - before in (0, 2)
        if len(caught) > before:
            pairs.append((caught[-1], caught[-2]))
    return pairs


def chainer_extensions() -> Any:
    from mnist_lightning.chainer_compat import import_chainer

    import_chainer()
    from chainer.training import extensions

    return extensions


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"plot_std": False, "percentile_sigmas": (25, 50, 75), "report_grad": False, "marker": "x"},
        {"plot_mean": False, "percentile_sigmas": (10, 90), "grid": False},
        {"plot_mean": False, "plot_std": False, "percentile_sigmas": 50, "report_data": False},
    ],
)
def test_the_figure_is_chainers(tmp_path: Path, caught: list[Figure], options: dict[str, Any]) -> None:
    extensions = chainer_extensions()
    mlp, chain = MLP(), chainer_mlp()
    torch.manual_seed(SEED)  # our sample's seed ...
    np.random.seed(SEED)  # ... and Chainer's
    options = dict(max_sample_size=4, **options)
    ours = VariableStatisticsPlot(mlp, out=str(tmp_path), filename="ours.png", **options)
    theirs = extensions.VariableStatisticsPlot(chain, filename="chainer.png", **options)
    pairs = run_both(ours, theirs, (mlp, chain), caught, tmp_path, last=9)
    assert len(pairs) == 3  # at the end of each of the 3 epochs
    for mine, chainers in pairs:
        assert_same_figure(mine, chainers)
    x = pairs[-1][0].axes[-1].collections or pairs[-1][0].axes[-1].lines
    assert x  # something was drawn
    assert len(ours._samples.get_data()[0]) == 4  # a sample of 4 of the 9 iterations
    assert (tmp_path / "ours.png").read_bytes()[:4] == b"\x89PNG"


def test_the_sample_and_its_random_state_survive_a_checkpoint(tmp_path: Path, caught: list[Figure]) -> None:
    mlp = MLP()
    rng = np.random.default_rng(0)
    torch.manual_seed(SEED)
    straight = VariableStatisticsPlot(mlp, max_sample_size=3, trigger=(6, "iteration"), out=str(tmp_path / "a"))
    resumed = VariableStatisticsPlot(mlp, max_sample_size=3, trigger=(6, "iteration"), out=str(tmp_path / "b"))
    for i in range(1, 13):
        set_values(mlp, None, rng)
        step = Step(SimpleNamespace(is_global_zero=True), None, i, i // ITERS_PER_EPOCH, i / ITERS_PER_EPOCH)
        straight.run(step)
        resumed.run(step)
        if i == 7:  # a checkpoint in the middle, read back as a weights-only checkpoint into a fresh extension
            torch.save(resumed.state_dict(), tmp_path / "state.pt")
            torch.manual_seed(SEED + 1)  # the restored random state counts, not the seed
            resumed = VariableStatisticsPlot(mlp, max_sample_size=3, trigger=(6, "iteration"), out=str(tmp_path / "b"))
            resumed.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True))
    (idxs, data), (their_idxs, their_data) = straight._samples.get_data(), resumed._samples.get_data()
    assert idxs.tolist() == their_idxs.tolist() and idxs.tolist() != [1, 2, 3]  # the reservoir replaced some
    np.testing.assert_array_equal(data, their_data)
    assert_same_figure(caught[-1], caught[-2])
    assert (tmp_path / "a" / "statistics.png").read_bytes() == (tmp_path / "b" / "statistics.png").read_bytes()


class Module(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.predictor = MLP()

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, t = batch
        return F.cross_entropy(self.predictor(x), t)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_a_training_run_writes_the_plot_atomically(tmp_path: Path, caught: list[Figure]) -> None:
    (tmp_path / ".grads.png.abcdefgh.tmp").write_bytes(b"left by a killed run")
    generator = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.rand(12, 5, generator=generator), torch.randint(0, 3, (12,), generator=generator))
    module = Module()
    plot = VariableStatisticsPlot(module.predictor, file_name="grads.png", out=str(tmp_path))
    make_trainer([plot], max_epochs=2).fit(module, DataLoader(data, batch_size=4))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grads.png"]
    assert len(caught) == 2  # one plot an epoch
    assert caught[-1].axes[0].lines[0].get_xdata().tolist() == [1, 2, 3, 4, 5, 6]


def test_bad_arguments_raise_at_construction() -> None:
    with pytest.raises(ValueError, match="needs a tensor: pass a parameter or a module"):
        VariableStatisticsPlot(nn.ReLU())
    with pytest.raises(TypeError, match="takes tensors, modules or a list of them"):
        VariableStatisticsPlot("l1")
    with pytest.raises(ValueError, match="nothing to plot: set plot_mean, plot_std or percentile_sigmas"):
        VariableStatisticsPlot(MLP(), plot_mean=False, plot_std=False, percentile_sigmas=())
    with pytest.raises(ValueError, match="filename or its alias file_name, not both"):
        VariableStatisticsPlot(MLP(), filename="a.png", file_name="b.png")
    with pytest.raises(TypeError, match="unexpected keyword argument 'out_name'"):
        VariableStatisticsPlot(MLP(), out_name="a.png")
