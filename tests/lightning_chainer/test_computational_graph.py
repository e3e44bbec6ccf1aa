"""build_computational_graph: Chainer's labels and dot text, shapes noted in backward, shared outputs, leaves."""

from __future__ import annotations

import torch

from lightning_chainer.computational_graph import (
    VARIABLE_STYLE,
    build_computational_graph,
    record_output_shapes,
    variable_label,
)


def chainer_label(shape: tuple[int, ...], dtype: str) -> str:
    from mnist_lightning.chainer_compat import import_chainer

    chainer = import_chainer()
    import numpy as np

    return chainer.Variable(np.zeros(shape, dtype=dtype)).node.label


def test_variable_labels_are_chainers() -> None:
    for shape in [(), (3,), (2, 3)]:
        assert variable_label(torch.Size(shape), torch.float32) == chainer_label(shape, "float32")
    assert variable_label((4,), torch.int64, "t") == "t: " + chainer_label((4,), "int64")


def test_an_output_read_twice_is_one_variable_and_a_leaf_root_is_one_node() -> None:
    weight = torch.ones(3, requires_grad=True)
    hidden = weight * 2
    loss = (hidden + hidden.exp()).sum()
    assert [label for _, _, label in build_computational_graph(loss).nodes].count("variable") == 3  # no shapes
    shapes, handles = record_output_shapes(loss)
    loss.backward()
    for handle in handles:
        handle.remove()
    graph = build_computational_graph(loss, {id(weight): "weight"}, shapes)
    labels = [label for _, _, label in graph.nodes]
    assert labels.count("(3), float32") == 3 and labels.count("variable") == 0  # hidden, its exp, their sum
    assert labels.count("MulBackward0") == 1 and labels.count("weight: (3), float32") == 1
    mul = next(i for i, _, label in graph.nodes if label == "MulBackward0")
    (output,) = [tail for head, tail in graph.edges if head == mul]
    assert len([head for head, tail in graph.edges if head == output]) == 2  # read by AddBackward0 and ExpBackward0
    leaf = build_computational_graph(weight, {id(weight): "weight"})
    assert leaf.dump(VARIABLE_STYLE) == (
        'digraph graphname{rankdir=TB;1 [label="weight: (3), float32",shape="octagon",fillcolor="#E0E0E0",'
        'style="filled"];}'
    )
