"""FailOnNonNumber: stop training when a parameter, a gradient or the loss becomes NaN or infinite."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch

from mnist_lightning.extensions.observation import PRIORITY_READER, Extension, Step

if TYPE_CHECKING:
    import lightning.pytorch as pl


class NonNumberError(RuntimeError):
    """Raised by FailOnNonNumber: training diverged; the message names the first bad iteration."""


NO_BAD_ITERATION = 2**62  # larger than any iteration


class FailOnNonNumber(Extension):
    """Stops training when the loss, a gradient or the parameters become NaN or infinite.

    Every iteration it copies the loss into a small buffer on the device (one copy, no host sync); every
    ``chunk`` iterations and at ``trigger`` (default every iteration, as Chainer; ``(1, 'epoch')`` syncs once an
    epoch) one reduction finds the first non-finite loss in it. At the trigger it also checks every parameter and
    gradient with one fused reduction, then raises ``NonNumberError`` (a ``RuntimeError``) naming the first bad
    iteration. A non-finite gradient or parameter makes the next loss non-finite, so checking those only at the
    trigger still finds where training diverged.
    """

    priority = PRIORITY_READER
    chunk = 256  #: losses held on the device between two reductions

    def __init__(self, trigger: Any = (1, "iteration")) -> None:
        super().__init__(trigger)
        self._first_bad: torch.Tensor | None = None
        self._loss: torch.Tensor | None = None
        self._losses: torch.Tensor | None = None  # the held losses, of consecutive iterations from _first_held
        self._slots: tuple[torch.Tensor, ...] = ()  # 0-d views of _losses, one per position
        self._positions: torch.Tensor | None = None  # arange(chunk) on the same device
        self._held = 0
        self._first_held = 0

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        self._loss = loss.detach() if isinstance(loss, torch.Tensor) else None
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def _mark(self, first: torch.Tensor) -> None:
        """Keep the smallest first-bad iteration seen (device ops only)."""
        self._first_bad = first if self._first_bad is None else torch.minimum(self._first_bad, first)

    def _hold(self, loss: torch.Tensor, iteration: int) -> None:
        """One device copy: the loss joins the buffer (which is reduced first when full or not consecutive)."""
        if self._held and (self._held == len(self._slots) or iteration != self._first_held + self._held):
            self._reduce()
        if self._losses is None or self._losses.device != loss.device or len(self._slots) != self.chunk:
            self._reduce()
            self._losses = torch.empty(self.chunk, dtype=torch.float32, device=loss.device)
            self._slots = self._losses.unbind()
            self._positions = torch.arange(self.chunk, device=loss.device)
        if not self._held:
            self._first_held = iteration
        self._slots[self._held].copy_(loss if loss.dim() == 0 else loss.sum())  # a sum is finite iff all terms are
        self._held += 1

    def _reduce(self) -> None:
        """Fold the held losses into ``_first_bad`` and empty the buffer."""
        if self._held and self._losses is not None and self._positions is not None:
            n, self._held = self._held, 0
            bad = ~torch.isfinite(self._losses[:n])
            self._mark(torch.where(bad, self._positions[:n], NO_BAD_ITERATION).min() + self._first_held)

    def run(self, step: Step) -> None:
        if self._loss is not None:
            self._hold(self._loss, step.iteration)
        if self.trigger(step):
            self(step)

    def __call__(self, step: Step) -> None:
        self._reduce()
        parameters = [p.detach() for p in step.pl_module.parameters()]
        tensors = parameters + [p.grad.detach() for p in step.pl_module.parameters() if p.grad is not None]
        if tensors:
            worst = torch.nn.utils.get_total_norm(tensors, norm_type=math.inf, foreach=True)
            self._mark(torch.where(torch.isfinite(worst), NO_BAD_ITERATION, step.iteration))
        if self._first_bad is None:
            return
        first = int(self._first_bad.item())
        if first < NO_BAD_ITERATION:
            raise NonNumberError(
                f"Kill the process since the loss, gradients or parameters diverged (NaN or inf) at iteration "
                f"{first}. R.I.P."
            )
