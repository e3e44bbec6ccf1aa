"""The extension base class: a Chainer extension as a Lightning callback, with its trigger and priority."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lightning.pytorch.callbacks import Callback

from lightning_chainer.driver import DRIVERS, Driver
from lightning_chainer.step import PRIORITY_READER, Step

if TYPE_CHECKING:
    import lightning.pytorch as pl

    from lightning_chainer.step import Trigger


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
        from lightning_chainer.triggers._util import get_trigger

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

    def _driver(self, trainer: pl.Trainer) -> Driver | None:
        driver = DRIVERS.get(trainer)
        return driver if driver is not None and driver.leader is self else None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if stage == "fit":
            driver = DRIVERS.get(trainer)
            if driver is None or self not in driver.extensions or driver.leader is self:
                DRIVERS[trainer] = Driver([cb for cb in trainer.callbacks if isinstance(cb, Extension)])

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
