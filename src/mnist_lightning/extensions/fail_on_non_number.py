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
    """Checks parameters, gradients and the loss every iteration with one fused max-abs reduction on the device.

    The result is kept on the device (no host sync per step) together with the first failing iteration; the
    host looks at it at ``trigger`` (default every iteration, as Chainer; pass ``(1, 'epoch')`` to sync once an
    epoch) and raises ``NonNumberError`` (a ``RuntimeError``) naming the first bad iteration.
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

    def run(self, step: Step) -> None:
        tensors = [p.detach() for p in step.pl_module.parameters()]
        tensors += [p.grad.detach() for p in step.pl_module.parameters() if p.grad is not None]
        if self._loss is not None:
            tensors.append(self._loss.reshape(-1))
        if tensors:
            worst = torch.nn.utils.get_total_norm(tensors, norm_type=math.inf, foreach=True)
            bad = ~torch.isfinite(worst)
            if self._first_bad is None:
                self._first_bad = torch.full((), -1, dtype=torch.long, device=worst.device)
            self._first_bad = torch.where(bad & (self._first_bad < 0), step.iteration, self._first_bad)
        if self.trigger(step):
            self(step)

    def __call__(self, step: Step) -> None:
        if self._first_bad is None:
            return
        first = int(self._first_bad.item())
        if first >= 0:
            raise NonNumberError(
                f"Kill the process since parameters, gradients or the loss diverged (NaN or inf) at iteration "
                f"{first}. R.I.P."
            )
