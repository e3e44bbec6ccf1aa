"""What ``Evaluator`` refuses when it is built, in one sentence each, rather than at its first evaluation.

Chainer's iterators, datasets, links and converters have torch counterparts the message names; a one-shot
iterator would be empty at the second evaluation; a target without ``validation_step`` and no ``eval_func``
has nothing to call.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import torch
from lightning.pytorch.utilities.model_helpers import is_overridden


def _module_of(obj: Any) -> str:
    """The top-level package that defines ``obj``."""
    return str(getattr(obj, "__module__", None) or "").split(".")[0]


def _from_chainer(obj: Any) -> bool:
    """Whether ``obj`` is an instance of a Chainer class (an iterator, a dataset, a link, a converter)."""
    return any(_module_of(cls) == "chainer" for cls in type(obj).__mro__)


def _main(value: Any, what: str) -> Any:
    """Chainer's ``{'main': x}`` form of one iterator or target is ``x``; more than one is refused."""
    if isinstance(value, Mapping) and not isinstance(value, torch.nn.Module):
        if list(value) != ["main"]:
            raise ValueError(
                f"Evaluator takes one {what}, not {sorted(value)}: pass it alone (or as {{'main': ...}}), "
                "and add one Evaluator (name=...) per further one."
            )
        return value["main"]
    return value


def _check_iterator(iterator: Any, progress_bar: bool) -> None:
    if _from_chainer(iterator):
        raise TypeError(
            f"Evaluator takes a torch DataLoader (any re-iterable of batches), not a Chainer "
            f"{type(iterator).__name__}: pass torch.utils.data.DataLoader(dataset, batch_size=..., shuffle=False)."
        )
    if not isinstance(iterator, Iterable):
        raise TypeError(f"Evaluator's iterator must be a DataLoader (any re-iterable of batches), got {iterator!r}.")
    if isinstance(iterator, Iterator):
        raise TypeError(
            "Evaluator's iterator is a one-shot iterator, empty at the second evaluation: pass a DataLoader or a list."
        )
    if progress_bar:
        try:
            len(iterator)
        except TypeError:
            raise TypeError(
                "Evaluator(progress_bar=True) needs a loader with a length: pass a DataLoader over a dataset "
                "with __len__, or progress_bar=False."
            ) from None


def _check_target(target: Any, eval_func: Any) -> None:
    if target is None:
        return
    if not isinstance(target, torch.nn.Module):
        kind = "Chainer link" if _from_chainer(target) else type(target).__name__
        raise TypeError(
            f"Evaluator's target must be a torch module (the LightningModule to evaluate), not a {kind}: pass the "
            "module, or None for the one being trained."
        )
    if eval_func is None and not has_validation_step(target):
        raise TypeError(
            f"Evaluator's target {type(target).__name__} has no validation_step to call: pass "
            "eval_func=... (called with the batch's items), or a LightningModule that defines validation_step."
        )


def has_validation_step(module: torch.nn.Module) -> bool:
    """Whether ``module`` has a ``validation_step`` of its own (LightningModule's does nothing)."""
    import lightning.pytorch as pl

    if isinstance(module, pl.LightningModule):
        return is_overridden("validation_step", module, pl.LightningModule)
    return callable(getattr(module, "validation_step", None))


def _check_callable(value: Any, what: str, hint: str) -> None:
    if value is not None and not callable(value):
        raise TypeError(f"Evaluator's {what} must be a function {hint}, got {value!r}.")


def check_evaluator_arguments(
    iterator: Any, target: Any, converter: Any, eval_hook: Any, eval_func: Any, progress_bar: bool
) -> tuple[Any, Any]:
    """The iterator and target Evaluator keeps (Chainer's ``{'main': x}`` unwrapped), or one sentence.

    Args:
        iterator: Evaluator's ``iterator``.
        target: Evaluator's ``target``.
        converter: Evaluator's ``converter``.
        eval_hook: Evaluator's ``eval_hook``.
        eval_func: Evaluator's ``eval_func``.
        progress_bar: Evaluator's ``progress_bar``.

    Raises:
        TypeError: an argument Evaluator could not use at its first evaluation.
        ValueError: a dict of more than one iterator or target.
    """
    iterator, target = _main(iterator, "iterator"), _main(target, "target")
    _check_iterator(iterator, progress_bar)
    _check_target(target, eval_func)
    _check_callable(eval_func, "eval_func", "called with the batch's items")
    _check_callable(eval_hook, "eval_hook", "called with the evaluator")
    _check_callable(converter, "converter", "(batch, device) -> batch")
    if converter is not None and (_from_chainer(converter) or _module_of(converter) == "chainer"):
        raise TypeError(
            "Evaluator's converter is Chainer's, which batches NumPy examples: a DataLoader's batches are "
            "already collated, so pass converter=None (or a function (batch, device) -> batch)."
        )
    return iterator, target
