"""The extension base class, Chainer's ``make_extension``, and the wrapper that runs a function as an extension.

An :class:`Extension` is a Lightning callback with Chainer's trigger and priority. Under an
:class:`~lightning_chainer.manager.ExtensionsManager` (Chainer's ``trainer.extend``) the manager runs it; without
one, the first Extension in ``trainer.callbacks`` runs them all.
"""

from __future__ import annotations

from collections.abc import Callable
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
    # Callback's own is empty); an ExtensionsManager forwards it.
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
    def default_name(self) -> str:
        """The name ``trainer.extend`` gives when none is given and ``name`` is None: the class name, as Chainer."""
        return type(self).__name__

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

    # --- Lightning hooks: without an ExtensionsManager, the first Extension drives them all -----------------------

    def _driver(self, trainer: pl.Trainer) -> Driver | None:
        driver = DRIVERS.get(trainer)
        return driver if driver is not None and driver.leader is self else None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        found = [cb for cb in trainer.callbacks if isinstance(cb, Extension)]
        if found and found[0] is self:
            driver = DRIVERS[trainer] = Driver(found, leader=self)
            driver.start(trainer, pl_module)

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
            driver.end(trainer)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        driver = self._driver(trainer)
        if driver is not None:
            driver.fail(trainer, exception)

    def on_error(self, trainer: pl.Trainer, exception: BaseException) -> None:
        """Called when training fails, before ``finalize`` (snapshot_on_error uses it)."""


class CallableExtension(Extension):
    """A Chainer extension that is not an :class:`Extension`: a function, a ``make_extension`` one, any callable.

    Chainer calls it with its trainer, ``initialize(trainer)`` at the start, ``on_error(trainer, exception,
    traceback)`` when training fails and ``finalize()`` at the end, each when the callable has it; the
    ExtensionsManager wraps it in this so that it does the same with the manager as the trainer. A callable with
    ``state_dict`` / ``load_state_dict`` has its state saved in snapshots.

    Args:
        function: the callable, ``function(trainer)``.
        trainer: what the callable receives as Chainer's trainer (the ExtensionsManager).
        trigger: when it runs, in anything :func:`~lightning_chainer.triggers.get_trigger` takes.
        priority: its place in the iteration (``PRIORITY_WRITER``, ...).
        call_before_training: also call it once at iteration 0 of a fresh run.
    """

    def __init__(
        self, function: Callable[[Any], Any], trainer: Any, trigger: Any, priority: int, call_before_training: bool
    ) -> None:
        super().__init__(trigger, call_before_training=call_before_training)
        self.function = function
        self.manager = trainer
        self.priority = priority

    @property
    def default_name(self) -> str:
        return getattr(self.function, "__name__", type(self.function).__name__)

    def __call__(self, step: Step) -> None:
        self.function(self.manager)

    def initialize(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        initializer = getattr(self.function, "initialize", None)
        if initializer:
            initializer(self.manager)

    def on_error(self, trainer: pl.Trainer, exception: BaseException) -> None:
        handler = getattr(self.function, "on_error", None)
        if handler:
            handler(self.manager, exception, exception.__traceback__)

    def finalize(self, trainer: pl.Trainer) -> None:
        finalizer = getattr(self.function, "finalize", None)
        if finalizer:
            finalizer()

    def extension_state(self) -> dict[str, Any]:
        state_dict = getattr(self.function, "state_dict", None)
        return dict(state_dict()) if callable(state_dict) else {}

    def load_extension_state(self, state: dict[str, Any]) -> None:
        load_state_dict = getattr(self.function, "load_state_dict", None)
        if state and callable(load_state_dict):
            load_state_dict(state)


_INVOKE_BEFORE_TRAINING = "invoke_before_training has been removed since Chainer v2.0.0. Use initializer= instead."


def check_chainer_kwargs(kwargs: dict[str, Any], function: str) -> None:
    """Chainer's refusal of keyword arguments it does not take (``invoke_before_training`` by its own sentence).

    Args:
        kwargs: the extra keyword arguments a call received.
        function: the function's name, for the message.

    Raises:
        ValueError: ``invoke_before_training`` was given.
        TypeError: any other keyword was given.
    """
    if "invoke_before_training" in kwargs:
        raise ValueError(_INVOKE_BEFORE_TRAINING)
    if kwargs:
        names = ", ".join(repr(name) for name in sorted(kwargs))
        raise TypeError(f"{function}() got unexpected keyword argument(s) {names}")


def make_extension(
    trigger: Any = None,
    default_name: str | None = None,
    priority: int | None = None,
    finalizer: Callable[[], Any] | None = None,
    initializer: Callable[[Any], Any] | None = None,
    on_error: Callable[[Any, BaseException, Any], Any] | None = None,
    **kwargs: Any,
) -> Callable[[Callable[[Any], Any]], Callable[[Any], Any]]:
    """Chainer's decorator that makes a function ``f(trainer)`` an extension, by setting its attributes.

    ``trainer.extend(f)`` on an :class:`~lightning_chainer.manager.ExtensionsManager` then runs it with the
    manager as Chainer's ``trainer`` (``trainer.updater.iteration``, ``trainer.out``, ``trainer.observation``).

    Args:
        trigger: its default trigger; None means every iteration.
        default_name: its default name; None means the function's ``__name__``.
        priority: its default priority; None means ``PRIORITY_READER``.
        finalizer: called with no argument when training ends.
        initializer: called with the trainer when training starts.
        on_error: called with the trainer, the exception and its traceback when training fails.
        **kwargs: refused, as Chainer does (``invoke_before_training`` with Chainer's sentence).
    """
    check_chainer_kwargs(kwargs, "make_extension")
    trigger = (1, "iteration") if trigger is None else trigger
    priority = PRIORITY_READER if priority is None else priority

    def decorator(ext: Callable[[Any], Any]) -> Callable[[Any], Any]:
        ext.trigger = trigger  # type: ignore[attr-defined]
        ext.default_name = default_name or ext.__name__  # type: ignore[attr-defined]
        ext.priority = priority  # type: ignore[attr-defined]
        ext.finalize = finalizer  # type: ignore[attr-defined]
        ext.on_error = on_error  # type: ignore[attr-defined]
        ext.initialize = initializer  # type: ignore[attr-defined]
        return ext

    return decorator
