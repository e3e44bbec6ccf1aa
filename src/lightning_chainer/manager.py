"""ExtensionsManager: Chainer's ``training.Trainer`` without its updater, as the one Lightning callback.

``trainer = ExtensionsManager((20, 'epoch'), out='result')``, then Chainer's ``trainer.extend(...)`` lines as
they are, then ``L.Trainer(callbacks=[trainer]).fit(...)``: Lightning's loop does the updates, the manager runs
the extensions once per iteration in Chainer's priority order (through the :class:`~lightning_chainer.driver.Driver`)
and passes every other Lightning hook on to the extensions that implement it (see ``hooks.py``).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from lightning.pytorch.callbacks import Callback

from lightning_chainer.driver import DRIVERS, Driver
from lightning_chainer.elapsed_time import ElapsedTime
from lightning_chainer.extension import CallableExtension, Extension, check_chainer_kwargs
from lightning_chainer.fit_setup import (
    lift_default_epoch_limit,
    preload_autoload,
    refuse_mixing,
    replace_progress_bar,
)
from lightning_chainer.hooks import CALLBACK_HOOKS, Forwarding
from lightning_chainer.step import PRIORITY_READER, Step
from lightning_chainer.triggers import get_trigger
from lightning_chainer.updater import Updater

if TYPE_CHECKING:
    import lightning.pytorch as pl

    from lightning_chainer.extensions.snapshot_extension import Snapshot

#: The hooks the manager has as methods: its own work (and a forward) happens in them.
OWN_HOOKS = frozenset(
    {
        "setup",
        "on_fit_start",
        "on_train_start",
        "on_train_batch_end",
        "on_validation_end",
        "on_train_epoch_end",
        "on_train_end",
        "on_exception",
        "on_save_checkpoint",
        "on_load_checkpoint",
    }
)


class ExtensionsManager(Callback):
    """Chainer's ``trainer``: ``extend``, ``get_extension``, ``out``, ``updater``, ``observation``, ``elapsed_time``.

    Pass it as ``L.Trainer(callbacks=[trainer])``, alone: an Extension also in ``callbacks`` is refused at setup.

    Args:
        stop_trigger: when training stops: ``(N, 'epoch')``, ``(N, 'iteration')``, a trigger (an
            ``EarlyStoppingTrigger``, say), or None for Lightning's ``max_epochs`` / ``max_steps`` alone. With a
            stop trigger and neither of those given, Lightning's default of 1000 epochs is lifted, so the stop
            trigger decides (an explicit ``max_epochs=1000`` reads the same; ``max_epochs=-1`` says it plainly).
        out: the folder every extension writes into unless given its own ``out``; relative to the working
            directory, as in Chainer.
    """

    def __init__(self, stop_trigger: Any = None, out: str | os.PathLike[str] = "result") -> None:
        if stop_trigger is not None and not callable(stop_trigger):
            if not (isinstance(stop_trigger, (tuple, list)) and len(stop_trigger) == 2):
                raise TypeError(
                    f"stop_trigger must be (N, 'epoch'), (N, 'iteration'), a trigger or None, got {stop_trigger!r}."
                )
        if not isinstance(out, (str, os.PathLike)):
            raise TypeError(f"out must be a folder name such as 'result', got {out!r}.")
        self.stop_trigger = get_trigger(stop_trigger) if stop_trigger is not None else None
        self.out = os.fspath(out)
        self.updater = Updater(self._where)
        self._extensions: dict[str, tuple[Any, Extension]] = {}  # name -> (as extended, as run)
        self._trainer: pl.Trainer | None = None
        self._driver: Driver | None = None
        self._forwarding = Forwarding([])
        self._elapsed = ElapsedTime()
        self._started = False  # elapsed_time counts
        self._running = False  # the extensions are initialized and not yet finalized
        self._autoload: tuple[Snapshot, str] | None = None

    # --- Chainer's trainer ---------------------------------------------------------------------------------------

    def extend(
        self,
        extension: Any,
        name: str | None = None,
        trigger: Any = None,
        priority: int | None = None,
        *,
        call_before_training: bool = False,
        **kwargs: Any,
    ) -> None:
        """Register an extension, as Chainer's ``Trainer.extend``.

        Args:
            extension: an Extension, or any callable ``f(trainer)`` (a ``make_extension`` function, say), which
                then receives this manager as Chainer's trainer.
            name: its name; None takes its ``name``, else its ``default_name``, else its ``__name__``. A name
                taken already gets Chainer's suffix ``_1``, ``_2``, ...
            trigger: when it runs; None takes its own trigger (every iteration for a callable without one).
            priority: its place in the iteration; None takes its own (``PRIORITY_READER`` for a callable).
            call_before_training: also run it once at iteration 0 of a fresh run.
            **kwargs: refused, as Chainer does.
        """
        check_chainer_kwargs(kwargs, "extend")
        if isinstance(extension, Callback) and not isinstance(extension, Extension):
            raise TypeError(
                f"{type(extension).__name__} is a Lightning callback, not an extension: pass it in "
                "L.Trainer(callbacks=[...]) next to the ExtensionsManager."
            )
        if not callable(extension):
            raise TypeError(f"an extension is called with the trainer; {extension!r} is not callable.")
        if name is None:
            name = getattr(extension, "name", None)
            if name is None:
                name = getattr(extension, "default_name", None)
                if name is None:
                    name = getattr(extension, "__name__", None)
                    if name is None:
                        raise TypeError("name is not given for the extension")
        if name == "training":
            raise ValueError('the name "training" is prohibited as an extension name')
        if isinstance(extension, Extension):
            run = extension
            if trigger is not None:
                run.trigger = get_trigger(trigger)
            if priority is not None:
                run.priority = priority
            run.call_before_training = run.call_before_training or call_before_training
        else:
            trigger = getattr(extension, "trigger", (1, "iteration")) if trigger is None else trigger
            priority = getattr(extension, "priority", PRIORITY_READER) if priority is None else priority
            run = CallableExtension(extension, self, trigger, priority, call_before_training)
        unique, ordinal = name, 0
        while unique in self._extensions:
            ordinal += 1
            unique = f"{name}_{ordinal}"
        try:
            extension.name = unique
        except AttributeError:  # a bound method or a builtin: the name stays on the wrapper
            pass
        run.name = unique
        self._extensions[unique] = (extension, run)

    def get_extension(self, name: str) -> Any:
        """The extension registered under ``name`` (as it was passed to :meth:`extend`).

        Args:
            name: its unique name.

        Raises:
            ValueError: no extension has that name (Chainer's error).
        """
        if name in self._extensions:
            return self._extensions[name][0]
        raise ValueError(f"extension {name} not found")

    @property
    def observation(self) -> dict[str, Any]:
        """The current iteration's observation (``main/loss``, ...), as extensions see it."""
        step = self._driver.step if self._driver is not None else None
        return step.observation if step is not None else {}

    @property
    def elapsed_time(self) -> float:
        """Seconds of training, continued across resumes (Chainer's ``trainer.elapsed_time``)."""
        if not self._started:
            raise RuntimeError("training has not been started yet")
        return self._elapsed()

    @property
    def is_before_training(self) -> bool:
        """Whether no update has happened yet (iteration 0)."""
        return self.updater.iteration == 0

    def get_training_length(self) -> tuple[int | float, str] | None:
        """The stop trigger's length (ProgressBar's total), or None when it has none."""
        length = getattr(self.stop_trigger, "get_training_length", None)
        return length() if length is not None else None

    def _where(self) -> tuple[pl.Trainer | None, Step | None]:
        return self._trainer, self._driver.step if self._driver is not None else None

    def _runs(self) -> list[Extension]:
        return [run for _, run in self._extensions.values()]

    # --- Lightning's hooks ---------------------------------------------------------------------------------------

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        refuse_mixing(trainer, self)
        self._trainer = trainer
        runs = self._runs()
        if stage == "fit":
            self._driver = DRIVERS[trainer] = Driver(runs, leader=self, stop_trigger=self.stop_trigger)
            self._driver.lookup = self._find
            replace_progress_bar(trainer, runs)
            if self.stop_trigger is not None:
                lift_default_epoch_limit(trainer)
        self._forwarding = Forwarding(runs)
        for hook in CALLBACK_HOOKS:
            if hook not in OWN_HOOKS:
                self.__dict__[hook] = self._forwarding.forwarder(hook, self)
        self._forwarding.call("setup", trainer, pl_module, stage=stage)
        if stage == "fit":
            self._autoload = preload_autoload(trainer, runs)

    def _find(self, reference: str, reader: Extension) -> Any:
        """The extension named ``reference`` (its unique name, else its class name), for ``reader``."""
        if reference in self._extensions:
            return self._extensions[reference][1]
        for _, run in self._extensions.values():
            if type(run).__name__ == reference:
                return run
        raise ValueError(
            f"{type(reader).__name__} reads the extension {reference!r}, which is not extended: "
            f"trainer.extend it before fit (extended: {', '.join(self._extensions) or 'none'})."
        )

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._autoload is not None:
            snapshot, path = self._autoload
            if trainer.ckpt_path is None:
                # As apply_autoload leaves it: the snapshot clears it at the end of fit, so test() scores the
                # trained weights.
                trainer.ckpt_path = snapshot._autoloaded = path
            self._autoload = None
        self._forwarding.call("on_fit_start", trainer, pl_module)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._forwarding.call("on_train_start", trainer, pl_module)
        if trainer.is_global_zero:
            os.makedirs(self.out, exist_ok=True)  # as Chainer's run(), for extensions that open files in it
        self._elapsed.start()
        self._started = True
        if self._driver is not None:
            self._running = True
            self._driver.start(trainer, pl_module)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._forwarding.call("on_train_batch_end", trainer, pl_module, outputs, batch, batch_idx)
        if self._driver is not None:
            self._driver.batch_end(trainer, pl_module, outputs, batch_idx)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._forwarding.call("on_validation_end", trainer, pl_module)
        if self._driver is not None and not trainer.sanity_checking and trainer.state.fn == "fit":
            self._driver.validation_end(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._forwarding.call("on_train_epoch_end", trainer, pl_module)
        if self._driver is not None:
            self._driver.flush()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._forwarding.call("on_train_end", trainer, pl_module)
        if self._driver is not None:
            self._running = False
            self._driver.end(trainer)
        self._elapsed.restore(self._elapsed())  # stopped, as Chainer's after run()

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self._forwarding.call("on_exception", trainer, pl_module, exception)
        if self._driver is not None and self._running:
            self._running = False
            self._driver.fail(trainer, exception)

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        self._forwarding.call("on_save_checkpoint", trainer, pl_module, checkpoint)

    def on_load_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        self._forwarding.call("on_load_checkpoint", trainer, pl_module, checkpoint)

    # --- state ---------------------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """One entry per extension by its unique name (its state and its trigger's), the stop trigger's, the time."""
        state: dict[str, Any] = {
            "extensions": {name: run.state_dict() for name, (_, run) in self._extensions.items()},
            "elapsed_time": self._elapsed(),
        }
        if hasattr(self.stop_trigger, "state_dict"):
            state["stop_trigger"] = self.stop_trigger.state_dict()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        for name, state in state_dict.get("extensions", {}).items():
            if name in self._extensions:
                self._extensions[name][1].load_state_dict(state)
        if "stop_trigger" in state_dict and hasattr(self.stop_trigger, "load_state_dict"):
            self.stop_trigger.load_state_dict(state_dict["stop_trigger"])
        if "elapsed_time" in state_dict:
            self._elapsed.restore(state_dict["elapsed_time"])
