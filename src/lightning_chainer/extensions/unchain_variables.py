"""unchain_variables: Chainer's extension that frees the graphs held by observed variables; nothing to do here."""

from __future__ import annotations

from lightning_chainer.extension import Extension
from lightning_chainer.step import Step

#: Chainer's priority of unchain_variables: after the readers (100), before the snapshots (-100).
PRIORITY_UNCHAIN = 0


class unchain_variables(Extension):  # noqa: N801 - Chainer's name
    """A no-op kept so that Chainer code that extends a trainer with it runs unchanged.

    In Chainer an observed variable keeps the graph it was computed by while ``keep_graph_on_report`` is on
    (DumpGraph turns it on for the first iteration), and this extension, run after the readers, calls
    ``unchain_backward()`` on every observed variable to free that graph. In PyTorch, ``backward()`` frees the
    graph's saved tensors itself, and the observation holds detached tensors only (the driver detaches them), so
    no observation holds a graph to unchain. DumpGraph lets go of the loss it holds once the graph is written.

    It runs at Chainer's priority, 0, every iteration (Chainer's runs in the iterations after the flag was on),
    and does nothing.
    """

    priority = PRIORITY_UNCHAIN

    def __init__(self) -> None:
        super().__init__()

    def __call__(self, step: Step) -> None:
        """Nothing to unchain: torch freed the graph in ``backward()`` and the observation is detached."""
