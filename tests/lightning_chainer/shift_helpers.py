"""What the shift tests share: one of our HyperparameterShifts and real Chainer 7.8.1's same shift, each on a real
optimizer of its framework, driven iteration by iteration through their triggers, and resumed in the middle
through each framework's own state (our ``state_dict`` through ``torch.save``/``torch.load``; Chainer's
``serialize`` through a DictionarySerializer and an NpzDeserializer).

The test files import it by name (``from shift_helpers import ...``), as they import ``helpers``.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import torch
from helpers import step_at

from mnist_lightning.chainer_compat import import_chainer

ITERS_PER_EPOCH = 4


def read(optimizer: torch.optim.Optimizer, attr: str) -> float:
    """``attr`` of a torch optimizer under Chainer's name, the same in every param group."""

    def one(group: dict[str, Any]) -> float:
        if attr in group:
            return float(group[attr])
        key, index = {"alpha": ("lr", None), "beta1": ("betas", 0), "beta2": ("betas", 1)}[attr]
        return float(group[key] if index is None else group[key][index])

    values = {one(group) for group in optimizer.param_groups}
    assert len(values) == 1, f"param groups disagree on {attr}: {values}"
    return values.pop()


@dataclass
class Case:
    """One shift's arguments in both frameworks, and the optimizers it acts on."""

    ours: Callable[[], Any]  #: builds our shift
    theirs: Callable[[Any], Any]  #: builds Chainer's from ``chainer.training.extensions``
    attr: str = "lr"  #: Chainer's attribute name
    chainer_optimizer: tuple[str, dict[str, Any]] = ("MomentumSGD", {"lr": 0.1})
    torch_optimizer: tuple[str, dict[str, Any]] = ("SGD", {"lr": 0.1, "momentum": 0.9})
    trigger: Any = None  #: what ``trainer.extend(trigger=...)`` gets in Chainer (None: the extension's default)
    iterations: int = 16

    def torch_opt(self) -> torch.optim.Optimizer:
        """A fresh torch optimizer over two param groups."""
        name, hyper = self.torch_optimizer
        groups = [{"params": [torch.nn.Parameter(torch.zeros(1))]} for _ in range(2)]
        return getattr(torch.optim, name)(groups, **hyper)

    def chainer_opt(self) -> Any:
        """A fresh Chainer optimizer set up on a Linear link."""
        chainer = import_chainer()
        import chainer.links as L

        name, hyper = self.chainer_optimizer
        optimizer = getattr(chainer.optimizers, name)(**hyper)
        optimizer.setup(L.Linear(1, 1))
        return optimizer


class OurRun:
    """Our shift on a torch optimizer, fed fake steps (``initialize`` gets a trainer holding the optimizer)."""

    def __init__(self, case: Case, state: dict[str, Any] | None = None, restored: dict[str, Any] | None = None):
        self.case, self.optimizer, self.shift = case, case.torch_opt(), case.ours()
        if restored is not None:  # what Lightning restores before the callbacks' on_train_start
            self.optimizer.load_state_dict(restored)
        if state is not None:
            self.shift.load_state_dict(state)
        self.shift.initialize(SimpleNamespace(optimizers=[self.optimizer]), None)

    def value(self) -> float:
        return read(self.optimizer, self.case.attr)

    def iterate(self, i: int) -> float:
        self.shift.run(step_at(i, ITERS_PER_EPOCH))
        return self.value()

    def state(self) -> dict[str, Any]:
        """The shift's state as a checkpoint holds it: through ``torch.save`` and ``torch.load(weights_only=True)``."""
        buffer = io.BytesIO()
        torch.save(self.shift.state_dict(), buffer)
        buffer.seek(0)
        return torch.load(buffer, weights_only=True)


class ChainerRun:
    """Real Chainer's shift on a real Chainer optimizer, called as ``Trainer.run`` calls it, with its trigger."""

    def __init__(self, case: Case, state: dict[str, Any] | None = None):
        chainer = import_chainer()
        from chainer.serializers import NpzDeserializer
        from chainer.training import extensions, trigger

        self.case, self.optimizer = case, case.chainer_opt()
        self.extension = case.theirs(extensions)
        self.trigger = trigger.get_trigger(case.trigger if case.trigger is not None else self.extension.trigger)
        self.updater = SimpleNamespace(
            iteration=0, epoch_detail=0.0, previous_epoch_detail=0.0, get_optimizer=lambda name: self.optimizer
        )
        self.trainer = SimpleNamespace(updater=self.updater)
        if state is not None:
            self.extension.serialize(NpzDeserializer(state, path="extension/"))
            self.trigger.serialize(NpzDeserializer(state, path="trigger/"))
        assert chainer.__version__ == "7.8.1"
        self.extension.initialize(self.trainer)

    def value(self) -> float:
        return float(getattr(self.optimizer, self.case.attr))

    def iterate(self, i: int) -> float:
        self.updater.previous_epoch_detail = self.updater.epoch_detail
        self.updater.iteration, self.updater.epoch_detail = i, i / ITERS_PER_EPOCH
        if self.trigger(self.trainer):
            self.extension(self.trainer)
        return self.value()

    def state(self) -> dict[str, Any]:
        """What ``serialize`` writes into a DictionarySerializer, as Chainer's snapshot holds it."""
        from chainer.serializers import DictionarySerializer

        serializer = DictionarySerializer()
        self.extension.serialize(serializer["extension"])
        self.trigger.serialize(serializer["trigger"])
        return serializer.target


def uninterrupted(run: OurRun | ChainerRun, iterations: range) -> list[float]:
    """The value after ``initialize``, then after each iteration's extensions."""
    return [run.value()] + [run.iterate(i) for i in iterations]


def chainer_scalars(state: dict[str, Any], prefix: str) -> dict[str, Any]:
    """Chainer's serialized entries under ``prefix``, as Python scalars (``None`` stays ``None``)."""
    return {key[len(prefix) :]: value.item() for key, value in state.items() if key.startswith(prefix)}


@dataclass
class Resumed:
    """An interrupted run of each framework next to Chainer's uninterrupted one."""

    chainer: list[float]  #: Chainer, uninterrupted: after initialize, then iterations 1..n
    ours: list[float]  #: ours, the same steps, stopped after iteration ``at`` and resumed from its state
    ours_calls: list[float]  #: ours after each iteration past ``at``
    chainer_calls: list[float]  #: Chainer resumed from its own snapshot, after each iteration past ``at``
    ours_restart: float  #: ours after the resumed run's ``initialize``: what iteration ``at + 1`` trains with
    chainer_restart: float  #: the same of Chainer's resumed run
    our_state: dict[str, Any]
    chainer_state: dict[str, Any]


def resume(case: Case, at: int) -> Resumed:
    """Both frameworks stopped after iteration ``at`` and resumed, each from its own state, to ``case.iterations``."""
    n = case.iterations
    chainer = uninterrupted(ChainerRun(case), range(1, n + 1))
    first, chainer_first = OurRun(case), ChainerRun(case)
    ours = uninterrupted(first, range(1, at + 1))
    uninterrupted(chainer_first, range(1, at + 1))
    our_state, chainer_state = first.state(), chainer_first.state()
    second = OurRun(case, our_state, first.optimizer.state_dict())
    chainer_second = ChainerRun(case, chainer_state)
    restarts = second.value(), chainer_second.value()
    ours_calls = [second.iterate(i) for i in range(at + 1, n + 1)]
    chainer_calls = [chainer_second.iterate(i) for i in range(at + 1, n + 1)]
    return Resumed(chainer, ours + ours_calls, ours_calls, chainer_calls, *restarts, our_state, chainer_state)


def assert_resumes_as_chainer(case: Case, at: int) -> Resumed:
    """Ours saves what Chainer serializes, under Chainer's names, and a resume changes nothing in the sequence."""
    result = resume(case, at)
    theirs = chainer_scalars(result.chainer_state, "extension/")
    assert {key: result.our_state["extension"][key] for key in theirs} == theirs
    assert chainer_scalars(result.chainer_state, "trigger/") == result.our_state["trigger"]
    assert result.ours == result.chainer
    assert result.ours_restart == result.chainer[at]
    return result
