"""What the extensions share: the per-iteration observation, its on-device summary and the extension base class.

Chainer runs every extension once per iteration, in priority order, around one ``trainer.observation`` dict. The
base class :class:`Extension` recreates that inside Lightning: the first ``Extension`` in ``trainer.callbacks`` drives
all of them at the end of each training iteration (after Lightning's validation when one follows that batch), so
writers (Evaluator, observe_lr) run before readers (LogReport, PrintReport) and snapshots run last.
"""

from __future__ import annotations

import math
import time
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
from lightning.pytorch.callbacks import Callback

if TYPE_CHECKING:
    import lightning.pytorch as pl

    from mnist_lightning.extensions.triggers import Trigger

PRIORITY_WRITER = 300
PRIORITY_EDITOR = 200
PRIORITY_READER = 100
PRIORITY_STOP = -50
PRIORITY_SNAPSHOT = -100


@dataclass
class Step:
    """One training iteration as the extensions and triggers see it (Chainer's ``trainer`` + ``updater``)."""

    trainer: pl.Trainer
    pl_module: pl.LightningModule
    iteration: int  #: optimizer steps so far (Chainer's ``updater.iteration``; the first update is 1)
    epoch: int  #: completed epochs (Chainer's ``updater.epoch``)
    epoch_detail: float  #: fractional epochs, ``iteration / iterations_per_epoch`` as Chainer
    observation: dict[str, Any] = field(default_factory=dict)


class Summary:
    """Chainer's ``DictSummary`` kept on the device: float64 sums and counts per key, in first-seen order.

    ``add`` never leaves the device; ``compute_mean`` reduces across ranks and syncs to the host once.
    A ``(value, weight)`` tuple counts as a weighted sample; only scalars and 0-d tensors are kept, as Chainer.
    """

    def __init__(self) -> None:
        self._sums: dict[str, Any] = {}
        self._counts: dict[str, Any] = {}

    def __len__(self) -> int:
        return len(self._sums)

    def __contains__(self, key: object) -> bool:
        return key in self._sums

    def add(self, observation: Mapping[str, Any], keys: Iterable[str] | None = None) -> None:
        """Accumulate every scalar of ``observation`` (only ``keys`` when given)."""
        for key, value in observation.items():
            if keys is not None and key not in keys:
                continue
            weight: Any = 1
            if isinstance(value, tuple):
                value, weight = value
            if isinstance(value, torch.Tensor):
                if value.dim() != 0:
                    continue
                if value.requires_grad:
                    value = value.detach()
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                value = float(value)
            elif hasattr(value, "dtype") and getattr(value, "ndim", -1) == 0:  # numpy scalars
                value = float(value)
            else:
                continue
            if weight != 1:
                value = (value.to(torch.float64) if isinstance(value, torch.Tensor) else value) * weight
            total = self._sums.get(key)
            if isinstance(value, torch.Tensor) and not isinstance(total, torch.Tensor):
                # The first tensor starts a float64 sum on its device (plus an earlier float sum, if any); later
                # float32 values are promoted exactly inside the addition, one device op a step and no copy.
                value = value.to(torch.float64)
            self._sums[key] = value if total is None else total + value
            self._counts[key] = self._counts.get(key, 0) + weight

    def local_means(self) -> dict[str, Any]:
        """Means of this rank only, still tensors where the values were (no host sync)."""
        return {k: self._sums[k] / self._counts[k] for k in self._sums}

    def compute_mean(self, trainer: pl.Trainer | None = None) -> dict[str, float]:
        """Means as Python floats, sums and counts summed over ranks first: one all-reduce, one host sync."""
        if not self._sums:
            return {}
        keys = list(self._sums)
        device = trainer.strategy.root_device if trainer is not None else torch.device("cpu")
        packed = torch.stack(
            [torch.as_tensor(self._sums[k], dtype=torch.float64).to(device) for k in keys]
            + [torch.as_tensor(self._counts[k], dtype=torch.float64).to(device) for k in keys]
        )
        if trainer is not None and trainer.world_size > 1:
            packed = trainer.strategy.reduce(packed, reduce_op="sum")
        values = packed.tolist()
        n = len(keys)
        counts = [int(c) if float(c).is_integer() else c for c in values[n:]]
        return {k: values[i] / counts[i] for i, k in enumerate(keys)}

    def state_dict(self) -> dict[str, Any]:
        """Plain floats and CPU tensors, readable with ``torch.load(weights_only=True)``."""

        def plain(v: Any) -> Any:
            return v.detach().cpu() if isinstance(v, torch.Tensor) else v

        return {"sums": {k: plain(v) for k, v in self._sums.items()}, "counts": dict(self._counts)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore sums and counts saved by :meth:`state_dict`."""
        self._sums = dict(state.get("sums", {}))
        self._counts = {k: (v.item() if isinstance(v, torch.Tensor) else v) for k, v in state.get("counts", {}).items()}


class _LightningView(NamedTuple):
    step_values: list[tuple[str, torch.Tensor]]
    epoch_keys: list[str]
    validation_follows: bool


def read_lightning(trainer: pl.Trainer, phase: str) -> _LightningView:
    """The only place that reads Lightning internals; Lightning has no public per-step view of ``self.log``.

    ``trainer.callback_metrics`` mixes this step's values with stale epoch and validation values, so for
    ``phase='train'`` (in ``on_train_batch_end``) this returns the active ``_ResultCollection``'s ``on_step``
    items with their ``_forward_cache`` (this step's value, still on the device) and whether Lightning's
    validation runs right after this batch (``_should_check_val_fx``), so that it joins this iteration as
    Chainer's Evaluator does. For ``phase='validation'`` (``on_validation_end``) it names the ``on_epoch``
    keys the evaluation loop logged, whose reduced values are in ``trainer.callback_metrics``.
    """
    # In on_train_batch_end the training epoch loop's collection is the active one; ``trainer._results`` and
    # ``fit_loop._results`` find it by comparing Lightning's running-stage enums, which costs more than the rest.
    results = trainer.fit_loop.epoch_loop._results if phase == "train" else trainer._results
    items = list(results.valid_items()) if results is not None else []
    if phase == "train":
        values = [(m.meta.name, m._forward_cache) for _, m in items if m.meta.on_step and m._forward_cache is not None]
        loop = trainer.fit_loop
        follows = _validation_may_follow(trainer) and bool(loop.epoch_loop._should_check_val_fx(loop._data_fetcher))
        return _LightningView(values, [], follows)
    keys = [m.meta.name for _, m in items if m.meta.on_epoch]
    return _LightningView([], keys, False)


def _validation_may_follow(trainer: pl.Trainer) -> bool:
    """False when Lightning's (costly, ~50 us) validation check cannot be true for this batch.

    Validation follows a batch only at the end of an epoch, every ``val_check_batch`` batches, on a stop
    request, or on a time interval; any case this does not recognise is left to Lightning to decide.
    """
    loop = trainer.fit_loop.epoch_loop
    every = trainer.val_check_batch
    if not isinstance(every, int) or every <= 0:
        return True
    return (
        loop.batch_progress.is_last_batch
        or trainer.should_stop
        or getattr(trainer, "_val_check_time_interval", None) is not None
        or (loop.batch_idx + 1) % every == 0
        or (loop.total_batch_idx + 1) % every == 0
    )


def returned_observation(outputs: Any) -> dict[str, Any]:
    """The scalar entries, other than ``loss``, of the dict a ``training_step`` returned.

    This is the cheap way to report: Lightning hands the returned dict to ``on_train_batch_end`` as it is,
    while each ``self.log`` call costs about 0.3 ms of Python per step in Lightning 2.6.
    """
    if not isinstance(outputs, Mapping):
        return {}
    return {
        key: value
        for key, value in outputs.items()
        if key != "loss"
        and (
            (isinstance(value, torch.Tensor) and value.dim() == 0)
            or (isinstance(value, (int, float)) and not isinstance(value, bool))
        )
    }


def resolve_out(trainer: pl.Trainer, out: str | None) -> str:
    """``out``, else the logger's run folder (``trainer.log_dir``, already broadcast), else ``'result'``."""
    if out is None:
        out = trainer.log_dir if trainer.loggers else "result"
    return str(trainer.strategy.broadcast(out or "result"))


class _Driver:
    """Runs every Extension of one trainer per iteration, in Chainer's priority order."""

    def __init__(self, trainer: pl.Trainer) -> None:
        found = [cb for cb in trainer.callbacks if isinstance(cb, Extension)]
        self.extensions = sorted(found, key=lambda e: -e.priority)  # stable: registration order within a priority
        self.leader = found[0] if found else None
        self.observation: dict[str, Any] = {}
        self.pending: Step | None = None
        self.seen: dict[str, torch.Tensor] = {}

    def flush(self) -> None:
        """Finish an iteration that waited for a validation run that did not come."""
        if self.pending is not None:
            step, self.pending = self.pending, None
            self.run(step)

    def batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch_idx: int) -> None:
        self.flush()
        view = read_lightning(trainer, "train")
        for name, value in view.step_values:
            if self.seen.get(name) is not value:  # a key not logged this step keeps last step's cache
                self.seen[name] = value
                self.observation[name] = value
        self.observation.update(returned_observation(outputs))
        for name, value in self.observation.items():  # once here rather than in every extension's summary
            if isinstance(value, torch.Tensor) and value.requires_grad:
                self.observation[name] = value.detach()
        n = trainer.num_training_batches
        epoch = trainer.current_epoch
        if isinstance(n, int) or (isinstance(n, float) and math.isfinite(n)):
            n = int(n)
            epoch_detail = (epoch * n + batch_idx + 1) / n
            completed = epoch + (1 if batch_idx + 1 >= n else 0)
        else:
            epoch_detail, completed = float(epoch), epoch
        step = Step(trainer, pl_module, trainer.global_step, completed, epoch_detail)
        if view.validation_follows:
            self.pending = step
        else:
            self.run(step)

    def validation_end(self, trainer: pl.Trainer) -> None:
        for name in read_lightning(trainer, "validation").epoch_keys:
            if name in trainer.callback_metrics:
                self.observation[name] = trainer.callback_metrics[name]
        self.flush()

    def run(self, step: Step) -> None:
        step.observation = self.observation
        self.observation = {}
        snapshots = []
        for ext in self.extensions:
            if ext.priority <= PRIORITY_SNAPSHOT:
                if ext.trigger(step):  # every snapshot trigger is evaluated before any snapshot is written
                    snapshots.append(ext)
            else:
                ext.run(step)
        for ext in snapshots:
            ext(step)


_DRIVERS: weakref.WeakKeyDictionary[Any, _Driver] = weakref.WeakKeyDictionary()


class Extension(Callback):
    """A Chainer extension as a Lightning callback: ``trigger`` decides when ``__call__(step)`` runs.

    Subclasses implement ``__call__``; ``run`` (called every iteration) may be overridden to observe every
    iteration (LogReport). ``initialize``/``finalize`` mirror Chainer's and run at train start and end.
    """

    priority: int = PRIORITY_READER

    # Lightning calls every hook on every callback, and each call costs 2-3 us (a profiler context named after the
    # callback) even when the hook does nothing; it skips an attribute that is not callable. The extensions run
    # from the leader's on_train_batch_end, so the other per-batch hooks are switched off here: 35 calls fewer a
    # step for seven extensions. A subclass that needs one of them defines it as usual (with no super() call:
    # Callback's own is empty).
    on_train_batch_start = on_before_backward = on_after_backward = None  # type: ignore[assignment]
    on_before_optimizer_step = on_before_zero_grad = None  # type: ignore[assignment]
    on_validation_batch_start = on_validation_batch_end = None  # type: ignore[assignment]
    on_test_batch_start = on_test_batch_end = on_predict_batch_start = on_predict_batch_end = None  # type: ignore[assignment]

    def __init__(
        self, trigger: Any = (1, "iteration"), name: str | None = None, *, call_before_training: bool = False
    ) -> None:
        from mnist_lightning.extensions.triggers import get_trigger

        self.trigger: Trigger = get_trigger(trigger)
        self.name = name
        #: Chainer's ``trainer.extend(..., call_before_training=True)``: also run once at iteration 0.
        self.call_before_training = call_before_training

    @property
    def state_key(self) -> str:
        """Unique per instance in a Trainer; cached, since Lightning asks for it at every hook call."""
        key = self.__dict__.get("_cached_state_key")
        if key is None:
            fields = self._state_key_fields()
            key = self.__class__.__qualname__ if fields is None else self._generate_state_key(**fields)
            self.__dict__["_cached_state_key"] = key
        return key

    def _state_key_fields(self) -> dict[str, Any] | None:
        """What tells two extensions of this class apart: ``name=`` here; ``None`` means the class name alone."""
        return None if self.name is None else {"name": self.name}

    def __call__(self, step: Step) -> None:
        """Do the extension's work at an iteration where its trigger fired."""

    def run(self, step: Step) -> None:
        """Called every iteration in priority order: evaluate the trigger, call the extension if it fires."""
        if self.trigger(step):
            self(step)

    def before_training(self, step: Step) -> None:
        """The iteration-0 call of an extension with ``call_before_training``: its work, whatever the trigger."""
        self(step)

    def initialize(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Called at the start of training (after a checkpoint's state was restored)."""

    def finalize(self, trainer: pl.Trainer) -> None:
        """Called when training ends, normally or by an exception."""

    # --- the trigger's state travels with the extension's -------------------------------------------------------

    def extension_state(self) -> dict[str, Any]:
        """The extension's own state besides its trigger (plain types and tensors)."""
        return {}

    def load_extension_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`extension_state` returned."""

    def state_dict(self) -> dict[str, Any]:
        state = {"extension": self.extension_state()}
        if hasattr(self.trigger, "state_dict"):
            state["trigger"] = self.trigger.state_dict()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if "trigger" in state_dict and hasattr(self.trigger, "load_state_dict"):
            self.trigger.load_state_dict(state_dict["trigger"])
        self.load_extension_state(state_dict.get("extension", {}))

    # --- Lightning hooks: the first Extension drives them all ---------------------------------------------------

    def _driver(self, trainer: pl.Trainer) -> _Driver | None:
        driver = _DRIVERS.get(trainer)
        return driver if driver is not None and driver.leader is self else None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if stage == "fit":
            driver = _DRIVERS.get(trainer)
            if driver is None or self not in driver.extensions or driver.leader is self:
                _DRIVERS[trainer] = _Driver(trainer)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        driver = self._driver(trainer)
        if driver is not None:
            for ext in driver.extensions:
                ext.initialize(trainer, pl_module)
            before = [ext for ext in driver.extensions if ext.call_before_training]
            if before and trainer.global_step == 0:  # a fresh start, not a resume
                step = Step(trainer, pl_module, iteration=0, epoch=0, epoch_detail=0.0)
                for ext in before:
                    ext.before_training(step)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        driver = self._driver(trainer)
        if driver is not None:
            driver.batch_end(trainer, pl_module, outputs, batch_idx)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        driver = self._driver(trainer)
        if driver is not None and not trainer.sanity_checking and trainer.state.fn == "fit":
            driver.validation_end(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        driver = self._driver(trainer)
        if driver is not None:
            driver.flush()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        driver = self._driver(trainer)
        if driver is not None:
            driver.flush()
            for ext in driver.extensions:
                ext.finalize(trainer)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        driver = self._driver(trainer)
        if driver is not None:
            for ext in driver.extensions:
                ext.on_error(trainer, exception)
            for ext in driver.extensions:
                ext.finalize(trainer)

    def on_error(self, trainer: pl.Trainer, exception: BaseException) -> None:
        """Called when training fails, before ``finalize`` (snapshot_on_error uses it)."""


class ElapsedTime:
    """Seconds of training so far, continued across resumes (Chainer's ``trainer.elapsed_time``)."""

    def __init__(self) -> None:
        self.offset = 0.0
        self._start: float | None = None

    def start(self) -> None:
        self._start = time.perf_counter()

    def __call__(self) -> float:
        return self.offset + (time.perf_counter() - self._start if self._start is not None else 0.0)

    def restore(self, seconds: float) -> None:
        self.offset = float(seconds)
        self._start = None
