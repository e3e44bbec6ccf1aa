"""HyperparameterShift: what Chainer's shifts share (one hyper-parameter of one optimizer, a count, resume)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from lightning_chainer.extension import Extension
from lightning_chainer.step import PRIORITY_READER, Step

if TYPE_CHECKING:
    import lightning.pytorch as pl

#: Chainer's Adam attributes (Adam, AdamW, AMSGrad, AdaBound) that torch's Adam family keeps under another
#: param-group key: ``(key, index in a tuple)``. An alias applies only to a param group with ``betas`` and without
#: a key of the Chainer name itself, so RMSprop's ``alpha`` (the decay rate in both frameworks) stays ``alpha``,
#: Adam's ``alpha`` (its step size) becomes ``lr``, and SGD has no ``alpha``.
ALIASES: dict[str, tuple[str, int | None]] = {
    "alpha": ("lr", None),
    "beta1": ("betas", 0),
    "beta2": ("betas", 1),
}


def param_group_key(owner: str, attr: str, optimizer: torch.optim.Optimizer) -> tuple[str, int | None]:
    """Where ``attr`` lives in ``optimizer``'s param groups: the key, and the index for a tuple such as ``betas``.

    Args:
        owner: the extension's name, for the error message.
        attr: a param-group key (``'lr'``, ``'momentum'``) or a Chainer attribute name of :data:`ALIASES`.
        optimizer: the optimizer whose first param group is looked at.

    Raises:
        ValueError: the optimizer has no such hyper-parameter.
    """
    group = optimizer.param_groups[0]
    if attr in group:
        return attr, None
    alias = ALIASES.get(attr)
    if alias is not None and "betas" in group and alias[0] in group:
        return alias
    names = [k for k, v in group.items() if isinstance(v, (int, float, torch.Tensor)) and not isinstance(v, bool)]
    names += [name for name in ALIASES if "betas" in group]
    raise ValueError(
        f"{owner}: {type(optimizer).__name__} has no hyper-parameter {attr!r}; use one of {', '.join(names)}."
    )


def clamp_at_target(value: float, target: float | None, increasing: bool) -> float:
    """``value`` stopped at ``target``, Chainer's way: by the ratio, so that negative values work too.

    Args:
        value: the schedule's value.
        target: where the shift stops; ``None`` for no stop.
        increasing: whether the schedule grows (it then stops at ``target`` from below), else it shrinks.
    """
    if target is None:
        return value
    if increasing:
        return target if value / target > 1 else value
    return target if value / target < 1 else value


class HyperparameterShift(Extension):
    """Sets ``attr`` in every param group of one optimizer after each trigger, as Chainer's shifts set an attribute.

    Subclasses say what the value is after ``self._t`` triggers (:meth:`value`) and, where that differs, what to
    set at the start of training (:meth:`start`). ``optimizer=None`` is the first of ``trainer.optimizers`` (the
    LightningModule's); an int picks another of them, and a ``torch.optim.Optimizer`` is used as given. The count
    and the last value set are saved under Chainer's names (``_t``, ``_last_value``), so a resumed run continues
    the schedule. The default trigger is every iteration, as in Chainer.

    Args:
        attr: a param-group key (``'lr'``, ``'momentum'``, ``'weight_decay'``) or a Chainer name of :data:`ALIASES`
            (``'alpha'``, ``'beta1'``, ``'beta2'``).
        optimizer: ``None``, an index into ``trainer.optimizers``, or an optimizer.
        trigger: when the value moves on.
    """

    priority = PRIORITY_READER

    def __init__(
        self, attr: str, optimizer: torch.optim.Optimizer | int | None = None, trigger: Any = (1, "iteration")
    ) -> None:
        super().__init__(trigger)
        name = type(self).__name__
        if not isinstance(attr, str) or not attr:
            raise TypeError(f"{name}'s attr must name a hyper-parameter, such as 'lr', not {attr!r}.")
        if isinstance(optimizer, bool) or not (
            optimizer is None
            or (isinstance(optimizer, int) and optimizer >= 0)
            or isinstance(optimizer, torch.optim.Optimizer)
        ):
            raise TypeError(
                f"{name}'s optimizer must be None (the module's optimizer), an index into trainer.optimizers "
                f"or a torch.optim.Optimizer, not {optimizer!r}."
            )
        self._attr = attr
        self._optimizer = optimizer
        self._target_optimizer: torch.optim.Optimizer | None = None
        self._key: tuple[str, int | None] = (attr, None)
        if isinstance(optimizer, torch.optim.Optimizer):
            self._key = param_group_key(name, attr, optimizer)
        self._t = 0
        self._last_value: float | None = None

    def value(self) -> float | None:
        """The value after ``self._t`` triggers; ``None`` leaves the optimizer's value as it is."""
        raise NotImplementedError

    def start(self, current: float) -> float | None:
        """The value to set at the start of training, given the optimizer's ``current`` one (``None``: none).

        A resumed run sets the last value set before the snapshot, as Chainer does.
        """
        return self._last_value if self._last_value is not None else self.value()

    def _state_key_fields(self) -> dict[str, Any]:
        optimizer = self._optimizer
        which = type(optimizer).__name__ if isinstance(optimizer, torch.optim.Optimizer) else optimizer or 0
        return dict(attr=self._attr, optimizer=which)

    def _resolve(self, trainer: pl.Trainer) -> torch.optim.Optimizer:
        if isinstance(self._optimizer, torch.optim.Optimizer):
            return self._optimizer
        index = self._optimizer or 0
        optimizers = trainer.optimizers
        if index >= len(optimizers):
            raise ValueError(
                f"{type(self).__name__}: optimizer={index}, but the module has {len(optimizers)} optimizer(s); "
                f"use an index below {len(optimizers)}."
            )
        return optimizers[index]

    def current(self) -> float:
        """The optimizer's value of ``attr`` (in its first param group)."""
        assert self._target_optimizer is not None, "initialize() finds the optimizer"
        key, index = self._key
        value = self._target_optimizer.param_groups[0][key]
        return float(value if index is None else value[index])

    def _set(self, value: float) -> None:
        assert self._target_optimizer is not None, "initialize() finds the optimizer"
        value = float(value)
        key, index = self._key
        for group in self._target_optimizer.param_groups:
            if index is not None:
                items = list(group[key])
                items[index] = value
                group[key] = tuple(items)
            elif isinstance(group[key], torch.Tensor):  # a tensor lr (capturable, fused) must stay a tensor
                group[key].fill_(value)
            else:
                group[key] = value
        self._last_value = value

    def _shift(self) -> None:
        value = self.value()
        if value is not None:
            self._set(value)

    def initialize(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        optimizer = self._resolve(trainer)
        self._target_optimizer = optimizer
        self._key = param_group_key(type(self).__name__, self._attr, optimizer)
        value = self.start(self.current())
        if value is not None:
            self._set(value)

    def __call__(self, step: Step) -> None:
        self._t += 1
        self._shift()

    def extension_state(self) -> dict[str, Any]:
        return {"_t": self._t, "_last_value": self._last_value}

    def load_extension_state(self, state: dict[str, Any]) -> None:
        if state:
            self._t = int(state["_t"])
            last = state.get("_last_value")
            self._last_value = None if last is None else float(last)


class InitShift(HyperparameterShift):
    """A shift from ``init``, which defaults to the optimizer's value at the start of training.

    ``init`` is saved with the count, since the optimizer a resumed run restores holds the shifted value, not the
    first one. A value of ``init`` given to the constructor wins over a saved one.

    Args:
        attr: see :class:`HyperparameterShift`.
        init: the value before the first trigger; ``None`` reads it from the optimizer.
        optimizer: see :class:`HyperparameterShift`.
        trigger: see :class:`HyperparameterShift`.
    """

    def __init__(
        self,
        attr: str,
        init: float | None = None,
        optimizer: torch.optim.Optimizer | int | None = None,
        trigger: Any = (1, "iteration"),
    ) -> None:
        super().__init__(attr, optimizer, trigger)
        self._init = init

    def start(self, current: float) -> float | None:
        if self._init is None:
            self._init = current
        if self._last_value is None and self._t == 0:
            return self._init
        return super().start(current)

    def extension_state(self) -> dict[str, Any]:
        return {**super().extension_state(), "init": self._init}

    def load_extension_state(self, state: dict[str, Any]) -> None:
        super().load_extension_state(state)
        if state and self._init is None and state.get("init") is not None:
            self._init = float(state["init"])
