"""FailOnNonNumber: stop training when a parameter, a gradient or the loss becomes NaN or infinite."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch

from lightning_chainer.extension import Extension
from lightning_chainer.step import PRIORITY_READER, Step

if TYPE_CHECKING:
    import lightning.pytorch as pl


class NonNumberError(RuntimeError):
    """Raised by FailOnNonNumber: training diverged; the message names the first bad iteration."""


NO_BAD_ITERATION = 2**62  # larger than any iteration


class FailOnNonNumber(Extension):
    """Stops training when the loss, a gradient or the parameters become NaN or infinite.

    Every iteration it holds on to the loss tensor (no device op, no host sync); every ``chunk`` iterations and
    at ``trigger`` (default every iteration, as Chainer; ``(1, 'epoch')`` syncs once an epoch) one stacked
    reduction finds the first non-finite loss among them. At the trigger it also checks every parameter and
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
        self._held: list[torch.Tensor] = []  # losses of consecutive iterations, from _first_held on
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
        """The loss joins the held ones, which are reduced first when full or not of the previous iteration."""
        if self._held and (len(self._held) >= self.chunk or iteration != self._first_held + len(self._held)):
            self._reduce()
        if not self._held:
            self._first_held = iteration
        self._held.append(loss if loss.dim() == 0 else loss.sum())  # a sum is finite iff all its terms are

    def _reduce(self) -> None:
        """Fold the held losses into ``_first_bad`` (one stack and one reduction on the device) and let them go."""
        if self._held:
            losses, self._held = torch.stack(self._held), []
            positions = torch.arange(len(losses), device=losses.device)
            self._mark(torch.where(torch.isfinite(losses), NO_BAD_ITERATION, positions).min() + self._first_held)

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
