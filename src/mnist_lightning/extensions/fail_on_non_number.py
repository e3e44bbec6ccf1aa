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


class FailOnNonNumber(Extension):
    """Stops training when the loss, a gradient or a parameter becomes NaN or infinite.

    Every iteration it checks the loss on the device (no host sync) and remembers the first iteration whose
    loss was not finite; at ``trigger`` (default every iteration, as Chainer; ``(1, 'epoch')`` syncs once an
    epoch) it also checks every parameter and gradient with one fused reduction, then raises ``NonNumberError``
    (a ``RuntimeError``) naming the first bad iteration. A non-finite gradient or parameter makes the next loss
    non-finite, so checking those only at the trigger still finds where training diverged.
    """

    priority = PRIORITY_READER

    def __init__(self, trigger: Any = (1, "iteration")) -> None:
        super().__init__(trigger)
        self._first_bad: torch.Tensor | None = None
        self._loss: torch.Tensor | None = None

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        self._loss = loss.detach() if isinstance(loss, torch.Tensor) else None
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def _mark(self, bad: torch.Tensor, iteration: int) -> None:
        if self._first_bad is None:
            self._first_bad = torch.full((), -1, dtype=torch.long, device=bad.device)
        self._first_bad = torch.where(bad & (self._first_bad < 0), iteration, self._first_bad)

    def run(self, step: Step) -> None:
        if self._loss is not None:
            self._mark(~torch.isfinite(self._loss).all(), step.iteration)
        if self.trigger(step):
            self(step)

    def __call__(self, step: Step) -> None:
        parameters = [p.detach() for p in step.pl_module.parameters()]
        tensors = parameters + [p.grad.detach() for p in step.pl_module.parameters() if p.grad is not None]
        if tensors:
            worst = torch.nn.utils.get_total_norm(tensors, norm_type=math.inf, foreach=True)
            self._mark(~torch.isfinite(worst), step.iteration)
        if self._first_bad is None:
            return
        first = int(self._first_bad.item())
        if first >= 0:
            raise NonNumberError(
                f"Kill the process since the loss, gradients or parameters diverged (NaN or inf) at iteration "
                f"{first}. R.I.P."
            )
