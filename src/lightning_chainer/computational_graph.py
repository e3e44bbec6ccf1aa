"""Chainer's computational graph in the dot language, read from torch's autograd graph.

Chainer's graph has variable nodes and function nodes, with edges input variable -> function -> output variable.
torch's autograd graph has function nodes only (``grad_fn`` and its ``next_functions``); the variables between
them are the edges' ends. The graph built here puts a variable node on each of those ends, so the file has
Chainer's shape:

- a function node per autograd node, labelled with torch's name (``AddmmBackward0``, ``ReluBackward0``, ...);
- a variable node per parameter (an ``AccumulateGrad`` leaf), labelled ``name: (shape), dtype`` as Chainer labels
  a named variable, the name being the parameter's path in the module (``predictor.l1.weight``);
- a variable node per output of a function that another function reads, labelled ``(shape), dtype``;
- the root variable, whose creator is the first function.

Inputs that need no gradient (the data, the labels) are not in torch's graph, so they are not in the file, while
Chainer draws them. torch's public API does not tell an intermediate variable's shape and dtype after the
forward pass; the gradients of the node's outputs have them, so :func:`record_output_shapes` hooks every node
before ``backward()`` and notes them. Without that note a label is the shapeless ``variable``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

#: Chainer's default dot styles (``chainer.computational_graph``).
VARIABLE_STYLE = {"shape": "octagon", "fillcolor": "#E0E0E0", "style": "filled"}
FUNCTION_STYLE = {"shape": "record", "fillcolor": "#6495ED", "style": "filled"}


def variable_label(shape: Any, dtype: Any, name: str | None = None) -> str:
    """Chainer's label of a variable node: ``(3, 4), float32``, ``float32`` for a scalar, ``name: `` first.

    Args:
        shape: the variable's shape (a ``torch.Size`` or a sequence of ints).
        dtype: a torch or NumPy dtype; torch's ``torch.`` prefix is dropped, so it reads as NumPy's name.
        name: the variable's name, if it has one.
    """
    dtype_name = str(dtype).removeprefix("torch.")
    dims = tuple(int(d) for d in shape)
    label = dtype_name if not dims else "({}), {}".format(", ".join(map(str, dims)), dtype_name)
    return label if name is None else f"{name}: {label}"


@dataclass
class ComputationalGraph:
    """Nodes ``(id, is_variable, label)`` and edges ``(head id, tail id)``, in the order they were found."""

    nodes: list[tuple[int, bool, str]] = field(default_factory=list)
    edges: list[tuple[int, int]] = field(default_factory=list)

    def dump(
        self,
        variable_style: Mapping[str, str] | None = None,
        function_style: Mapping[str, str] | None = None,
        rankdir: str = "TB",
    ) -> str:
        """The graph as Chainer's ``ComputationalGraph.dump()`` writes it: one line, ``digraph graphname{...}``.

        Args:
            variable_style: dot attributes of variable nodes, after ``label`` and ``shape="oval"``.
            function_style: dot attributes of function nodes, after ``label`` and ``shape="box"``.
            rankdir: ``TB``, ``BT``, ``LR`` or ``RL``.
        """
        if rankdir not in ("TB", "BT", "LR", "RL"):
            raise ValueError(f"rankdir must be TB, BT, LR or RL, not {rankdir!r}.")
        parts = [f"digraph graphname{{rankdir={rankdir};"]
        for node_id, is_variable, label in self.nodes:
            attributes = {"label": label, "shape": "oval" if is_variable else "box"}
            attributes.update((variable_style if is_variable else function_style) or {})
            parts.append("{} [{}];".format(node_id, ",".join(f'{k}="{v}"' for k, v in attributes.items())))
        parts.extend(f"{head} -> {tail};" for head, tail in self.edges)
        parts.append("}")
        return "".join(parts)


#: ``node -> [(shape, dtype) or None, one per output]``, as :func:`record_output_shapes` notes them.
OutputShapes = dict[Any, list[Any]]


def record_output_shapes(root: torch.Tensor) -> tuple[OutputShapes, list[Any]]:
    """Hooks on every function of ``root``'s graph that note the shape and dtype of each output in ``backward()``.

    A node's hook sees the gradients of the node's outputs, which have the outputs' shapes and dtypes; it keeps
    no tensor. Call before ``backward()``; remove the returned handles (``handle.remove()``) after it.

    Args:
        root: the tensor about to be backpropagated.

    Returns:
        The mapping the hooks fill in, and the hooks' handles.
    """
    shapes: OutputShapes = {}
    handles = []
    seen = set()
    queue = [] if root.grad_fn is None else [root.grad_fn]
    while queue:
        node = queue.pop()
        if node in seen or hasattr(node, "variable"):  # AccumulateGrad: a leaf, whose shape is the tensor's
            continue
        seen.add(node)

        def note(grad_inputs: Any, grad_outputs: Any, node: Any = node) -> None:
            shapes[node] = [None if g is None else (tuple(g.shape), g.dtype) for g in grad_outputs]

        handles.append(node.register_hook(note))
        queue.extend(source for source, _ in node.next_functions if source is not None)
    return shapes, handles


def _output_label(shapes: OutputShapes, node: Any, output_nr: int) -> str:
    outputs = shapes.get(node)
    if outputs is None or output_nr >= len(outputs) or outputs[output_nr] is None:
        return "variable"
    return variable_label(*outputs[output_nr])


def build_computational_graph(
    root: torch.Tensor | tuple[Any, int],
    parameter_names: Mapping[int, str] | None = None,
    output_shapes: OutputShapes | None = None,
) -> ComputationalGraph:
    """The graph of functions and variables that ``root`` was computed from, as Chainer's function of this name.

    Args:
        root: a tensor, or an edge of torch's graph as ``next_functions`` holds them: ``(node, output_nr)``, the
            variable being output ``output_nr`` of ``node``.
        parameter_names: ``id(parameter) -> name`` for the variable nodes of leaves (``named_parameters()``).
        output_shapes: the shapes :func:`record_output_shapes` noted, for the labels of intermediate variables.
    """
    names = parameter_names or {}
    shapes = output_shapes or {}
    graph = ComputationalGraph()
    # The keys hold the node objects, so torch hands out the same Python object for a node during the walk.
    ids: dict[Any, int] = {}

    def node_id(key: Any, is_variable: bool, label: str) -> tuple[int, bool]:
        found = ids.get(key)
        if found is not None:
            return found, False
        ids[key] = len(ids) + 1
        graph.nodes.append((ids[key], is_variable, label))
        return ids[key], True

    def leaf(tensor: torch.Tensor) -> int:
        return node_id(("leaf", id(tensor)), True, variable_label(tensor.shape, tensor.dtype, names.get(id(tensor))))[0]

    edges: set[tuple[int, int]] = set()

    def edge(head: int, tail: int) -> None:
        if (head, tail) not in edges:
            edges.add((head, tail))
            graph.edges.append((head, tail))

    if isinstance(root, torch.Tensor):
        if root.grad_fn is None:
            leaf(root)
            return graph
        creator, label = root.grad_fn, variable_label(root.shape, root.dtype, names.get(id(root)))
    else:
        creator, output_nr = root
        if hasattr(creator, "variable"):  # an AccumulateGrad: the root is a leaf
            leaf(creator.variable)
            return graph
        label = _output_label(shapes, creator, output_nr)
    root_id, _ = node_id(("root",), True, label)
    queue = [creator]
    edge(node_id(creator, False, creator.name())[0], root_id)
    while queue:
        function = queue.pop(0)
        function_id = ids[function]
        for source, output_nr in function.next_functions:
            if source is None:  # an input that needs no gradient
                continue
            if hasattr(source, "variable"):
                edge(leaf(source.variable), function_id)
                continue
            variable_id, _ = node_id((source, output_nr), True, _output_label(shapes, source, output_nr))
            source_id, is_new = node_id(source, False, source.name())
            if is_new:
                queue.append(source)
            edge(source_id, variable_id)
            edge(variable_id, function_id)
    return graph
