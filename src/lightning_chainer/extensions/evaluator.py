"""Evaluator: run a LightningModule's ``validation_step`` over any loader and report what it logs."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import torch

from lightning_chainer.extension import Extension
from lightning_chainer.step import PRIORITY_WRITER, Step
from lightning_chainer.summary import Summary

if TYPE_CHECKING:
    import lightning.pytorch as pl


def _batch_size(batch: Any) -> int:
    """The leading dimension of the first tensor in ``batch``."""
    if isinstance(batch, torch.Tensor):
        return batch.shape[0] if batch.dim() else 1
    if isinstance(batch, dict):
        batch = list(batch.values())
    if isinstance(batch, (list, tuple)):
        for item in batch:
            size = _batch_size(item)
            if size:
                return size
    return 0


class Evaluator(Extension):
    """Every ``trigger`` (default each epoch) evaluates ``target`` over ``dataloader`` and reports the means.

    It calls ``target.validation_step(batch, i)`` (or ``eval_func``) in eval mode without gradients, captures
    what it logs with ``self.log``, and renames a leading ``validation/`` to ``<name>/`` (other names get the
    ``<name>/`` prefix). As Chainer, the result is the mean of batch means; ``weighted=True`` weights each batch by
    its size (``self.log(batch_size=)`` or the batch's first dimension), giving exact per-sample means. It runs
    before LogReport in the same iteration (Chainer's WRITER priority); ranks are reduced by the LogReport.
    """

    priority = PRIORITY_WRITER

    def __init__(
        self,
        dataloader: Iterable[Any],
        target: pl.LightningModule | None = None,
        name: str = "validation",
        trigger: Any = (1, "epoch"),
        weighted: bool = False,
        eval_func: Callable[[Any, int], Any] | None = None,
        *,
        call_before_training: bool = False,
    ) -> None:
        super().__init__(trigger, call_before_training=call_before_training)
        self.dataloader = dataloader
        self.target = target
        self.name = name
        self.weighted = weighted
        self.eval_func = eval_func

    def _state_key_fields(self) -> dict[str, Any]:
        return dict(name=self.name)

    def _rename(self, key: str) -> str:
        if key.startswith("validation/"):
            key = key[len("validation/") :]
        return f"{self.name}/{key}"

    def evaluate(
        self, trainer: pl.Trainer | None = None, pl_module: pl.LightningModule | None = None
    ) -> dict[str, Any]:
        """Run the evaluation now and return ``{<name>/key: mean}`` with the means still tensors."""
        module = self.target if self.target is not None else pl_module
        if module is None:
            raise ValueError("Evaluator needs a target module (or to run inside a Trainer).")
        summary = Summary()
        captured: dict[str, tuple[Any, Any]] = {}

        def capture(name: str, value: Any, *args: Any, batch_size: int | None = None, **kwargs: Any) -> None:
            captured[name] = (value, batch_size)

        step_fn = self.eval_func or module.validation_step
        had_log = "log" in module.__dict__
        previous_log = module.__dict__.get("log")
        was_training = module.training
        module.eval()
        object.__setattr__(module, "log", capture)
        try:
            with torch.no_grad():
                for i, batch in enumerate(self.dataloader):
                    if trainer is not None:
                        batch = trainer.strategy.batch_to_device(batch)
                    else:
                        batch = _to_device(batch, module.device)
                    captured.clear()
                    step_fn(batch, i)
                    n = _batch_size(batch)
                    for key, (value, size) in captured.items():
                        weight = (size if size is not None else n) if self.weighted else 1
                        summary.add({self._rename(key): (value, weight)})
        finally:
            if had_log:
                object.__setattr__(module, "log", previous_log)
            else:
                del module.__dict__["log"]
            module.train(was_training)
        return summary.local_means()

    def __call__(self, step: Step) -> None:
        step.observation.update(self.evaluate(step.trainer, step.pl_module))


def _to_device(batch: Any, device: torch.device) -> Any:
    from lightning.pytorch.utilities import move_data_to_device

    return move_data_to_device(batch, device)
