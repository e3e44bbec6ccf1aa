"""DumpGraph: Chainer's dot file of the computational graph behind an observation, written at the first iteration."""

from __future__ import annotations

import os
import shutil
import subprocess
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch

from lightning_chainer.computational_graph import (
    FUNCTION_STYLE,
    VARIABLE_STYLE,
    OutputShapes,
    build_computational_graph,
    record_output_shapes,
)
from lightning_chainer.extension import Extension
from lightning_chainer.files import atomic_write, remove_temp_files, resolve_out
from lightning_chainer.step import PRIORITY_READER, Step

if TYPE_CHECKING:
    import lightning.pytorch as pl

#: The key of the loss in what a ``training_step`` returns; the driver leaves it out of the observation.
LOSS_KEY = "loss"


class DumpGraph(Extension):
    """Writes ``out/filename``, Chainer's ``cg.dot``, of the graph behind the observation ``root_name``, once.

    In Chainer the observed variable holds its graph. Here observations are detached, and the only graph a step
    keeps is that of the loss Lightning backpropagates, which Lightning hands to ``on_before_backward``. So at the
    first iteration the graph written is that loss's, and ``root_name`` has to name it:

    - the observation under ``root_name`` is a detached view of the loss (the same storage: the
      ``loss.detach()`` that a module such as the example's ``Classifier`` reports as ``main/loss``), or equal to
      it in value;
    - or it equals the loss before Lightning's own scaling (the division by ``accumulate_grad_batches``, the
      GradScaler's factor under ``16-mixed``): the file then starts at the unscaled loss, as the observed value;
    - or ``root_name`` is ``'loss'``, the loss key of ``training_step``'s result, which is not in the observation.

    Anything else (a missing key, ``main/accuracy``) has no graph to reach: a warning says so in one sentence at
    the first iteration and no file is written. The file has Chainer's layout and styles, with torch's autograd
    functions and the parameters named by their path in the module (see ``computational_graph.py``). When
    Graphviz's ``dot`` is on the ``PATH``, ``dot -Tpng`` also renders it to the same name with ``.png``, as in
    Chainer. Rank 0 writes, atomically. Whether the graph was written travels in checkpoints, so a resumed run
    does not write it again. ``out`` defaults to the logger's run folder, else ``result``.

    Args:
        root_name: the observation whose graph to write, e.g. ``'main/loss'``.
        filename: the dot file's name in ``out``; Chainer's ``out_name`` is accepted as an alias.
        variable_style: dot attributes of variable nodes; None means Chainer's grey octagons.
        function_style: dot attributes of function nodes; None means Chainer's blue records.
        out: the output folder.
    """

    priority = PRIORITY_READER

    def __init__(
        self,
        root_name: str,
        filename: str | None = None,
        variable_style: Mapping[str, str] | None = None,
        function_style: Mapping[str, str] | None = None,
        *,
        out: str | None = None,
        **kwargs: Any,
    ) -> None:
        out_name = kwargs.pop("out_name", None)
        if kwargs:
            raise TypeError(f"DumpGraph got an unexpected keyword argument {next(iter(kwargs))!r}: use filename=.")
        if filename is not None and out_name is not None:
            raise ValueError("DumpGraph takes filename or its alias out_name, not both: pass filename= alone.")
        filename = filename if filename is not None else out_name if out_name is not None else "cg.dot"
        if not isinstance(root_name, str) or not root_name:
            raise TypeError(f"DumpGraph's root_name must be an observation key such as 'main/loss', not {root_name!r}.")
        if not isinstance(filename, str) or not filename:
            raise TypeError(f"DumpGraph's filename must be a file name such as 'cg.dot', not {filename!r}.")
        for what, style in (("variable_style", variable_style), ("function_style", function_style)):
            if style is not None and not isinstance(style, Mapping):
                raise TypeError(f"DumpGraph's {what} must be a dict of dot attributes or None, not {style!r}.")
        super().__init__()
        self._root_name = root_name
        self._filename = filename
        self._variable_style = dict(VARIABLE_STYLE if variable_style is None else variable_style)
        self._function_style = dict(FUNCTION_STYLE if function_style is None else function_style)
        self._out = out
        self.out: str | None = out
        self._done = False
        #: This iteration's backpropagated losses, with the output shapes their graph's hooks note in backward().
        self._losses: list[tuple[torch.Tensor, OutputShapes, list[Any]]] = []

    def _state_key_fields(self) -> dict[str, Any]:
        return dict(root_name=self._root_name, filename=self._filename)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if stage == "fit":
            self.out = resolve_out(trainer, self._out)
            self._losses = []
            if trainer.is_global_zero:
                remove_temp_files(self.out, self._filename)
                remove_temp_files(self.out, self._image_name())

    def on_before_backward(self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: torch.Tensor) -> None:
        """Hold the loss, and so its graph, until this iteration's extensions run; note its shapes in backward."""
        self._losses.append((loss, *record_output_shapes(loss)))

    def run(self, step: Step) -> None:
        if not self._done:
            self(step)

    def __call__(self, step: Step) -> None:
        self._stop_holding()
        held, self._losses = self._losses, []
        for _, _, handles in held:
            for handle in handles:
                handle.remove()
        root, problem = self._find_root(step, [loss for loss, _, _ in held])
        if root is None:
            warnings.warn(
                f"DumpGraph wrote no {self._filename}: {problem}; pass the key the module reports its loss under, "
                "such as 'main/loss'.",
                stacklevel=2,
            )
            return
        if not step.trainer.is_global_zero:
            return
        names = {id(p): name for name, p in step.pl_module.named_parameters()}
        shapes = {node: noted for _, found, _ in held for node, noted in found.items()}
        dot = build_computational_graph(root, names, shapes).dump(self._variable_style, self._function_style)
        path = os.path.join(self.out or "result", self._filename)
        atomic_write(path, dot)
        self._render(path, dot)

    def _stop_holding(self) -> None:
        """Done after the first call, as Chainer's: the hook is switched off so Lightning skips it from now on."""
        self._done = True
        self.on_before_backward = None  # type: ignore[assignment]

    def _find_root(self, step: Step, losses: list[torch.Tensor]) -> tuple[Any, str]:
        """The root of the graph to write (a tensor or a ``(node, output_nr)`` edge), or None and why not."""
        if not losses:
            return None, "no loss was backpropagated in the first iteration"
        value = step.observation.get(self._root_name)
        if value is None:
            if self._root_name == LOSS_KEY:
                return unscaled_root(losses[-1], len(lightning_scaling(step.trainer))), ""
            return None, f"the observation has no {self._root_name!r}"
        for loss in reversed(losses):
            root = match_loss(value, loss, step.trainer)
            if root is not None:
                return root, ""
        return None, (
            f"{self._root_name!r} is not the loss Lightning backpropagated, the only graph a step keeps "
            "(observations are detached)"
        )

    def _image_name(self) -> str:
        return os.path.splitext(self._filename)[0] + ".png"

    def _render(self, path: str, dot: str) -> None:
        """Chainer's PNG next to the dot file, when Graphviz is installed; a failure is a warning, not a crash."""
        executable = shutil.which("dot")
        if executable is None:
            return
        result = subprocess.run([executable, "-Tpng"], input=dot.encode(), capture_output=True, check=False)
        if result.returncode != 0 or not result.stdout:
            reason = result.stderr.decode(errors="replace").strip() or f"exit status {result.returncode}"
            warnings.warn(f"DumpGraph could not render {path} with Graphviz: {reason}.", stacklevel=3)
            return
        atomic_write(os.path.join(os.path.dirname(path), self._image_name()), result.stdout)

    def extension_state(self) -> dict[str, Any]:
        return {"done": self._done}

    def load_extension_state(self, state: dict[str, Any]) -> None:
        if state.get("done"):
            self._stop_holding()


dump_graph = DumpGraph


def lightning_scaling(trainer: Any) -> list[tuple[str, float]]:
    """What Lightning applies to ``training_step``'s loss before ``on_before_backward``, in order.

    It divides by ``accumulate_grad_batches`` when that is over 1, then multiplies by a GradScaler's scale.

    Args:
        trainer: the Lightning trainer (anything with its ``accumulate_grad_batches`` and ``precision_plugin``).
    """
    ops: list[tuple[str, float]] = []
    accumulate = getattr(trainer, "accumulate_grad_batches", 1)
    if isinstance(accumulate, int) and accumulate > 1:
        ops.append(("div", float(accumulate)))
    scaler = getattr(getattr(trainer, "precision_plugin", None), "scaler", None)
    if scaler is not None and scaler.is_enabled():
        ops.append(("mul", float(scaler.get_scale())))
    return ops


def unscaled_root(loss: torch.Tensor, n_scalings: int) -> Any:
    """The graph edge of ``loss`` before its last ``n_scalings`` scalings (Mul/Div nodes with one graph input).

    Args:
        loss: the loss Lightning backpropagated.
        n_scalings: how many scalings to go back through; a graph of another shape keeps ``loss`` as the root.
    """
    root: Any = loss
    node = loss.grad_fn
    for _ in range(n_scalings):
        inputs = [] if node is None else [edge for edge in node.next_functions if edge[0] is not None]
        if node is None or node.name() not in ("DivBackward0", "MulBackward0") or len(inputs) != 1:
            return loss
        root = inputs[0]
        node = root[0]
    return root


def match_loss(value: Any, loss: torch.Tensor, trainer: Any) -> Any:
    """The root to write when the observed ``value`` is ``loss`` (same storage or value) or it unscaled; else None.

    Comparing values reads them back from the device once, at the one iteration that writes the graph.

    Args:
        value: the observation under ``root_name``.
        loss: a loss Lightning backpropagated this iteration.
        trainer: the trainer, for Lightning's scaling of the loss (:func:`lightning_scaling`).
    """
    if not isinstance(value, torch.Tensor) or value.shape != loss.shape:
        return None
    if value.data_ptr() == loss.data_ptr() and value.dtype == loss.dtype and value.stride() == loss.stride():
        return loss
    observed = value.detach().to(device=loss.device, dtype=loss.dtype)
    target = loss.detach()
    if torch.equal(observed, target):
        return loss
    ops = lightning_scaling(trainer)
    if not ops:
        return None
    for op, factor in ops:
        observed = observed / factor if op == "div" else observed * factor
    if torch.allclose(observed, target, rtol=1e-6, atol=0.0):
        return unscaled_root(loss, len(ops))
    return None
