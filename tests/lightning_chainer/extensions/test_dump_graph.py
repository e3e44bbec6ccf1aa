"""DumpGraph: the dot file of a two-layer MLP's loss, compared with the cg.dot real Chainer writes for it.

What is comparable: the parameter nodes (Chainer's ``W``/``b`` are torch's ``weight``/``bias``, same shapes), the
functions where the ops correspond (Chainer's LinearFunction is torch's AddmmBackward0, ReLU is ReluBackward0,
SoftmaxCrossEntropy is NllLossBackward0), the variables those functions output, the scalar root, and every
node's attributes. Not comparable: torch's extra TBackward0 (the weight's transpose inside ``F.linear``) and
LogSoftmaxBackward0 (torch's cross-entropy is two functions), and the data and label variables that Chainer draws
but torch's graph leaves out (they need no gradient).
"""

from __future__ import annotations

import importlib
import os
import re
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import make_trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_chainer.extensions import DumpGraph, LogReport, dump_graph

# The package's ``dump_graph`` is Chainer's alias of the class, so the module is taken from sys.modules.
dump_graph_module = importlib.import_module("lightning_chainer.extensions.dump_graph")

BATCH, N_IN, N_HIDDEN, N_OUT = 4, 4, 3, 2
#: Chainer's function -> torch's function for the same op of the MLP.
CORRESPONDING = {"LinearFunction": "AddmmBackward0", "ReLU": "ReluBackward0", "SoftmaxCrossEntropy": "NllLossBackward0"}
#: Chainer's parameter name -> torch's.
PARAMETER_NAMES = {"W": "weight", "b": "bias"}


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.l1 = nn.Linear(N_IN, N_HIDDEN)
        self.l2 = nn.Linear(N_HIDDEN, N_OUT)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.l2(F.relu(self.l1(x)))


class Module(L.LightningModule):
    """Reports ``main/loss`` as the example's Classifier does (a detached view), or as a copy with ``copy=True``."""

    def __init__(self, copy: bool = False) -> None:
        super().__init__()
        self.predictor = MLP()
        self.copy = copy

    def training_step(self, batch: Any, batch_idx: int) -> dict[str, torch.Tensor]:
        x, t = batch
        y = self.predictor(x)
        loss = F.cross_entropy(y, t)
        reported = loss.detach().clone() if self.copy else loss.detach()
        return {"loss": loss, "main/loss": reported, "main/accuracy": (y.argmax(1) == t).float().mean()}

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def loader() -> DataLoader:
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(4 * BATCH, N_IN, generator=generator)
    t = torch.randint(0, N_OUT, (4 * BATCH,), generator=generator)
    return DataLoader(TensorDataset(x, t), batch_size=BATCH)


def parse_dot(text: str) -> tuple[dict[str, dict[str, str]], list[tuple[str, str]], list[list[str]]]:
    """Nodes ``{id: attributes}`` (in file order), edges and each node's attribute names, of Chainer's dot."""
    assert text.startswith("digraph graphname{rankdir=TB;") and text.endswith("}")
    body = text[len("digraph graphname{rankdir=TB;") : -1]
    statements = [s for s in body.split(";") if s]
    nodes: dict[str, dict[str, str]] = {}
    order: list[list[str]] = []
    edges = []
    for statement in statements:
        if "->" in statement:
            head, tail = statement.split(" -> ")
            edges.append((head, tail))
        else:
            match = re.fullmatch(r"(\d+) \[(.*)\]", statement)
            assert match, statement
            pairs = re.findall(r'(\w+)="([^"]*)"', match.group(2))
            nodes[match.group(1)] = dict(pairs)
            order.append([k for k, _ in pairs])
    assert all(head in nodes and tail in nodes for head, tail in edges)
    assert len(set(edges)) == len(edges)
    return nodes, edges, order


def is_function(attributes: dict[str, str]) -> bool:
    return attributes["shape"] == "record"


def chainer_cg_dot(tmp_path: Path) -> str:
    """The cg.dot real Chainer 7.8.1 writes for the same MLP in a Classifier, batch 4."""
    from mnist_lightning.chainer_compat import import_chainer

    chainer = import_chainer()
    import chainer.functions as CF
    import chainer.links as CL
    from chainer import training
    from chainer.training import extensions

    class ChainerMLP(chainer.Chain):
        def __init__(self) -> None:
            super().__init__()
            with self.init_scope():
                self.l1 = CL.Linear(N_IN, N_HIDDEN)
                self.l2 = CL.Linear(N_HIDDEN, N_OUT)

        def forward(self, x: Any) -> Any:
            return self.l2(CF.relu(self.l1(x)))

    model = CL.Classifier(ChainerMLP())
    rng = np.random.default_rng(0)
    data = chainer.datasets.TupleDataset(
        rng.random((4 * BATCH, N_IN), dtype=np.float32), rng.integers(0, N_OUT, 4 * BATCH).astype(np.int32)
    )
    optimizer = chainer.optimizers.SGD()
    optimizer.setup(model)
    iterator = chainer.iterators.SerialIterator(data, BATCH)
    trainer = training.Trainer(
        training.updaters.StandardUpdater(iterator, optimizer), (2, "iteration"), out=str(tmp_path)
    )
    trainer.extend(extensions.DumpGraph("main/loss"))
    trainer.run()
    return (tmp_path / "cg.dot").read_text()


def reaches(edges: list[tuple[str, str]], start: str, goal: str) -> bool:
    seen, todo = {start}, [start]
    while todo:
        node = todo.pop()
        for head, tail in edges:
            if head == node and tail not in seen:
                seen.add(tail)
                todo.append(tail)
    return goal in seen


def test_dump_graph_main_loss_has_the_mlp_as_chainer_draws_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writes = []
    write = dump_graph_module.atomic_write
    monkeypatch.setattr(dump_graph_module, "atomic_write", lambda path, data: (writes.append(path), write(path, data)))
    monkeypatch.setattr(dump_graph_module.shutil, "which", lambda name: None)  # no Graphviz
    monkeypatch.chdir(tmp_path)
    module = Module()
    make_trainer([LogReport(), DumpGraph("main/loss")], max_epochs=2).fit(module, loader())
    ours = (tmp_path / "result" / "cg.dot").read_text()
    assert writes == [os.path.join("result", "cg.dot")]  # once, at the first of 8 iterations

    nodes, edges, order = parse_dot(ours)
    theirs, their_edges, their_order = parse_dot(chainer_cg_dot(tmp_path / "chainer"))

    # Parameters: every weight and bias by its path and shape, as Chainer's W and b.
    named = {a["label"] for a in nodes.values() if ": " in a["label"]}
    assert named == {
        f"predictor.{layer}.{torch_name}: {shape}, float32"
        for layer, torch_name, shape in [
            ("l1", "weight", "(3, 4)"),
            ("l1", "bias", "(3)"),
            ("l2", "weight", "(2, 3)"),
            ("l2", "bias", "(2)"),
        ]
    }
    their_named = {a["label"] for a in theirs.values() if ": " in a["label"]}
    assert sorted(label.split(": ")[1] for label in named) == sorted(label.split(": ")[1] for label in their_named)
    assert len(their_named) == len(named) == len(dict(module.named_parameters()))

    # Functions: the same number of each corresponding kind, and the variables they output.
    kinds = Counter(a["label"] for a in nodes.values() if is_function(a))
    their_kinds = Counter(a["label"] for a in theirs.values() if is_function(a))
    assert {kinds[torch_name] for torch_name in CORRESPONDING.values()} != {0}
    for chainer_name, torch_name in CORRESPONDING.items():
        assert kinds[torch_name] == their_kinds[chainer_name], chainer_name

    def outputs(found: dict[str, dict[str, str]], links: list[tuple[str, str]], name: str) -> list[str]:
        return sorted(found[t]["label"] for h, t in links if found[h]["label"] == name)

    for chainer_name, torch_name in CORRESPONDING.items():
        assert outputs(nodes, edges, torch_name) == outputs(theirs, their_edges, chainer_name)

    # The root: the scalar loss, made by the loss function; a path to it from every parameter.
    roots = [n for n in nodes if not any(h == n for h, _ in edges)]
    their_roots = [n for n in theirs if not any(h == n for h, _ in their_edges)]
    assert [nodes[r]["label"] for r in roots] == [theirs[r]["label"] for r in their_roots] == ["float32"]
    assert all(reaches(edges, n, roots[0]) for n, a in nodes.items() if ": " in a["label"])

    # Chainer's attributes, in Chainer's order; edges only between a variable and a function.
    assert {tuple(o) for o in order} == {tuple(o) for o in their_order} == {("label", "shape", "fillcolor", "style")}
    for attributes in (*nodes.values(), *theirs.values()):
        style = (("record", "#6495ED") if is_function(attributes) else ("octagon", "#E0E0E0")) + ("filled",)
        assert (attributes["shape"], attributes["fillcolor"], attributes["style"]) == style
    assert all(is_function(nodes[h]) != is_function(nodes[t]) for h, t in edges)


def test_a_reported_copy_of_the_loss_and_the_loss_key_reach_the_graph(tmp_path: Path) -> None:
    cbs = [DumpGraph("main/loss", out=str(tmp_path), filename="copy.dot"), DumpGraph("loss", out=str(tmp_path))]
    make_trainer(cbs, max_epochs=1).fit(Module(copy=True), loader())
    for name in ("copy.dot", "cg.dot"):
        nodes, edges, _ = parse_dot((tmp_path / name).read_text())
        assert Counter(a["label"] for a in nodes.values())["AddmmBackward0"] == 2


def test_with_accumulated_gradients_the_graph_starts_at_the_observed_loss(tmp_path: Path) -> None:
    cbs = [DumpGraph("main/loss", out=str(tmp_path), filename="observed.dot"), DumpGraph("loss", out=str(tmp_path))]
    make_trainer(cbs, max_epochs=1, accumulate_grad_batches=2).fit(Module(), loader())
    for name in ("observed.dot", "cg.dot"):
        nodes, edges, _ = parse_dot((tmp_path / name).read_text())
        root = next(n for n in nodes if not any(h == n for h, _ in edges))
        assert [nodes[h]["label"] for h, t in edges if t == root] == ["NllLossBackward0"]  # not Lightning's division
        assert "DivBackward0" not in {a["label"] for a in nodes.values()}


def test_an_unscaled_observation_matches_a_scaled_loss() -> None:
    weight = torch.tensor([1.5], requires_grad=True)
    observed = (weight * 3).sum()
    scaler = SimpleNamespace(is_enabled=lambda: True, get_scale=lambda: 1024.0)
    trainer = SimpleNamespace(accumulate_grad_batches=4, precision_plugin=SimpleNamespace(scaler=scaler))
    loss = observed / 4 * 1024.0
    root = dump_graph_module.match_loss(observed.detach(), loss, trainer)
    assert root == (observed.grad_fn, 0)
    assert dump_graph_module.match_loss(observed.detach() + 1, loss, trainer) is None


@pytest.mark.parametrize(
    ("root_name", "message"),
    [
        ("main/accuracy", "'main/accuracy' is not the loss Lightning backpropagated"),
        ("main/missing", "the observation has no 'main/missing'"),
    ],
)
def test_a_root_without_a_graph_is_a_warning_not_a_crash(tmp_path: Path, root_name: str, message: str) -> None:
    with pytest.warns(UserWarning, match=f"DumpGraph wrote no cg.dot: {message}"):
        make_trainer([DumpGraph(root_name, out=str(tmp_path))], max_epochs=1).fit(Module(), loader())
    assert not (tmp_path / "cg.dot").exists()


def test_a_resumed_dump_graph_does_not_write_again_and_stops_holding_losses(tmp_path: Path) -> None:
    first = DumpGraph("main/loss", out=str(tmp_path / "a"))
    make_trainer([first], max_epochs=1).fit(Module(), loader())
    assert first.on_before_backward is None and first._losses == []
    resumed = DumpGraph("main/loss", out=str(tmp_path / "b"))
    torch.save(first.state_dict(), tmp_path / "state.pt")
    resumed.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True))
    make_trainer([resumed], max_epochs=1).fit(Module(), loader())
    assert (tmp_path / "a" / "cg.dot").exists() and not (tmp_path / "b").exists()


def test_graphviz_renders_a_png_next_to_the_dot_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_dot = bin_dir / "dot"
    fake_dot.write_text('#!/bin/sh\n[ "$1" = "-Tpng" ] || exit 2\necho -n PNG; cat\n')
    fake_dot.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    make_trainer([dump_graph("main/loss", out_name="graph.dot", out=str(tmp_path))], max_epochs=1).fit(
        Module(), loader()
    )
    dot = (tmp_path / "graph.dot").read_text()
    assert (tmp_path / "graph.png").read_text() == "PNG" + dot


def test_bad_arguments_raise_at_construction() -> None:
    with pytest.raises(ValueError, match="filename or its alias out_name, not both"):
        DumpGraph("main/loss", filename="a.dot", out_name="b.dot")
    with pytest.raises(TypeError, match="unexpected keyword argument 'file_name'"):
        DumpGraph("main/loss", file_name="a.dot")
    with pytest.raises(TypeError, match="root_name must be an observation key"):
        DumpGraph(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="variable_style must be a dict"):
        DumpGraph("main/loss", variable_style="octagon")  # type: ignore[arg-type]
