"""Evaluator: Chainer's ``Evaluator(iterator, target, converter, device, eval_hook, eval_func)`` over any loader."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import torch
from lightning.pytorch.utilities import move_data_to_device

from lightning_chainer.device_spec import torch_device
from lightning_chainer.driver import returned_observation
from lightning_chainer.evaluation_bar import EvaluationBar
from lightning_chainer.evaluator_checks import check_evaluator_arguments, has_validation_step
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
    """Every ``trigger`` (default each epoch) evaluates ``target`` over ``iterator`` and reports the means.

    As Chainer's: ``eval_hook(evaluator)`` runs first; then for each batch ``converter(batch, device)`` (default:
    the batch moved to ``device``), and ``eval_func(*batch)`` (``**batch`` for a dict) instead of the target.
    Without ``eval_func`` it calls ``target.validation_step(batch, i)``. Both run in eval mode without
    gradients. What they log with ``self.log`` on the target, and the scalars of a dict they return (``loss``
    aside, as a ``training_step``'s), are observations: a leading ``validation/`` becomes ``<name>/``, other
    names get the ``<name>/`` prefix. As Chainer, the result is the mean of batch means; ``weighted=True``
    weights each batch by its size (``self.log(batch_size=)`` or the batch's first dimension), giving exact
    per-sample means. It runs before LogReport in the same iteration (Chainer's WRITER priority); ranks are
    reduced by the LogReport.

    Args:
        iterator: a DataLoader, or any re-iterable of batches (or Chainer's ``{'main': loader}``).
        target: the torch module to evaluate (or ``{'main': module}``); None: the module being trained.
        converter: ``converter(batch, device) -> batch``, with ``device`` a torch device; None moves the batch.
        device: where the batch goes: Chainer's ``-1``, ``0``, ``'@numpy'``, ``'@cupy:0'``, or torch's
            ``'cuda:0'``, ``torch.device``; None: the module's device.
        eval_hook: called with this evaluator before each evaluation.
        eval_func: called with the batch's items instead of ``target.validation_step``.
        progress_bar: draw Chainer's evaluation bar on ``sys.stdout`` (rank 0).
        name: the prefix of the reported keys (Chainer's ``trainer.extend(name=)``).
        trigger: when to evaluate.
        weighted: per-sample instead of per-batch means.
        call_before_training: also evaluate once at iteration 0.
    """

    priority = PRIORITY_WRITER

    def __init__(
        self,
        iterator: Iterable[Any] | Mapping[str, Iterable[Any]],
        target: torch.nn.Module | Mapping[str, torch.nn.Module] | None = None,
        converter: Callable[[Any, torch.device], Any] | None = None,
        device: Any = None,
        eval_hook: Callable[[Evaluator], None] | None = None,
        eval_func: Callable[..., Any] | None = None,
        *,
        progress_bar: bool = False,
        name: str = "validation",
        trigger: Any = (1, "epoch"),
        weighted: bool = False,
        call_before_training: bool = False,
    ) -> None:
        super().__init__(trigger, call_before_training=call_before_training)
        iterator, target = check_evaluator_arguments(iterator, target, converter, eval_hook, eval_func, progress_bar)
        if not isinstance(name, str) or not name:
            raise ValueError(f"Evaluator(name={name!r}) must be a non-empty str, such as 'validation'.")
        self.dataloader = iterator
        self.target = target
        self.converter = converter
        self.device: torch.device | None = None if device is None else torch_device(device, "Evaluator")
        self.eval_hook = eval_hook
        self.eval_func = eval_func
        self.progress_bar = bool(progress_bar)
        self.name = name
        self.weighted = weighted

    def _state_key_fields(self) -> dict[str, Any]:
        return dict(name=self.name)

    def get_iterator(self, name: str = "main") -> Iterable[Any]:
        """Chainer's accessor: the loader (``'main'``, the only one)."""
        return {"main": self.dataloader}[name]

    def get_target(self, name: str = "main") -> torch.nn.Module | None:
        """Chainer's accessor: the target (``'main'``; None until a module is being trained, when none was given)."""
        return {"main": self.target}[name]

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_fit_start(trainer, pl_module)
        module = self.target if self.target is not None else pl_module
        if self.eval_func is None and not has_validation_step(module):
            raise TypeError(
                f"Evaluator evaluates {type(module).__name__}, which has no validation_step: define it, or pass "
                "eval_func=... (called with the batch's items)."
            )
        here = _module_device(module)
        if self.device is not None and here is not None and not _same_device(self.device, here):
            raise ValueError(
                f"Evaluator(device={self.device}) sends batches to {self.device}, but the module it evaluates is "
                f"on {here}: pass device=None (the module's device) or move the module there."
            )

    def _rename(self, key: str) -> str:
        if key.startswith("validation/"):
            key = key[len("validation/") :]
        return f"{self.name}/{key}"

    def _to_device(self, batch: Any, trainer: pl.Trainer | None, module: torch.nn.Module) -> Any:
        device = self.device
        if self.converter is not None:
            return self.converter(batch, device if device is not None else _module_device(module))
        if device is not None:
            return move_data_to_device(batch, device)
        if trainer is not None:
            return trainer.strategy.batch_to_device(batch)
        here = _module_device(module)
        return batch if here is None else move_data_to_device(batch, here)

    def _call(self, module: torch.nn.Module, batch: Any, i: int) -> Any:
        if self.eval_func is None:
            return module.validation_step(batch, i)
        if isinstance(batch, (tuple, list)):  # Chainer's converters return a tuple; torch's collate a list
            return self.eval_func(*batch)
        if isinstance(batch, Mapping):
            return self.eval_func(**batch)
        return self.eval_func(batch)

    def evaluate(
        self, trainer: pl.Trainer | None = None, pl_module: pl.LightningModule | None = None
    ) -> dict[str, Any]:
        """Run the evaluation now and return ``{<name>/key: mean}`` with the means still tensors.

        Args:
            trainer: the trainer whose strategy moves the batches (None: to ``device`` or the module's).
            pl_module: the module being trained, evaluated when no target was given.
        """
        module = self.target if self.target is not None else pl_module
        if module is None:
            raise ValueError("Evaluator needs a target module (or to run inside a Trainer).")
        if self.eval_hook is not None:
            self.eval_hook(self)
        summary = Summary()
        captured: dict[str, tuple[Any, Any]] = {}

        def capture(name: str, value: Any, *args: Any, batch_size: int | None = None, **kwargs: Any) -> None:
            captured[name] = (value, batch_size)

        bar = None
        if self.progress_bar and (trainer is None or trainer.is_global_zero):
            bar = EvaluationBar(len(self.dataloader), _epoch_size(self.dataloader))  # type: ignore[arg-type]
        had_log = "log" in module.__dict__
        previous_log = module.__dict__.get("log")
        was_training = module.training
        module.eval()
        object.__setattr__(module, "log", capture)
        try:
            with torch.no_grad():
                for i, batch in enumerate(self.dataloader):
                    batch = self._to_device(batch, trainer, module)
                    captured.clear()
                    returned = returned_observation(self._call(module, batch, i))
                    n = _batch_size(batch)
                    for key, (value, size) in captured.items():
                        weight = (size if size is not None else n) if self.weighted else 1
                        summary.add({self._rename(key): (value, weight)})
                    for key, value in returned.items():
                        summary.add({self._rename(key): (value, n if self.weighted else 1)})
                    if bar is not None:
                        bar.update(n)
        finally:
            if had_log:
                object.__setattr__(module, "log", previous_log)
            else:
                del module.__dict__["log"]
            module.train(was_training)
            if bar is not None:
                bar.close()
        return summary.local_means()

    def __call__(self, step: Step) -> None:
        step.observation.update(self.evaluate(step.trainer, step.pl_module))


def _epoch_size(loader: Any) -> int | None:
    """The number of samples in one pass: the loader's dataset's length, when it has one."""
    try:
        return len(loader.dataset)
    except (AttributeError, TypeError):
        return None


def _module_device(module: torch.nn.Module) -> torch.device | None:
    device = getattr(module, "device", None)
    if isinstance(device, torch.device):
        return device
    first = next(iter(module.parameters()), None)
    return first.device if first is not None else None


def _same_device(a: torch.device, b: torch.device) -> bool:
    if a.type != b.type:
        return False
    return a.type != "cuda" or (a.index or 0) == (b.index or 0)  # 'cuda' alone is the current device, GPU 0
