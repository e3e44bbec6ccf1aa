"""Which hooks count as an extension's own, and a forwarder that stops being called once they are switched off."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from lightning.pytorch.callbacks import Callback

from lightning_chainer.extensions import DumpGraph, FailOnNonNumber, LogReport, ProgressBar
from lightning_chainer.hooks import CALLBACK_HOOKS, Forwarding, implements


def test_every_hook_lightning_dispatches_to_callbacks_is_known() -> None:
    assert {"setup", "teardown", "on_before_backward", "on_save_checkpoint", "on_exception"} <= set(CALLBACK_HOOKS)
    assert all(callable(getattr(Callback, hook)) for hook in CALLBACK_HOOKS)


def test_own_hooks_are_told_from_callbacks_empty_ones_the_base_classes_and_switched_off_ones() -> None:
    assert implements(LogReport(), "setup")  # its own
    assert not implements(LogReport(), "on_train_start")  # the Extension base class's leading logic
    assert not implements(LogReport(), "on_fit_end")  # Callback's empty hook
    assert not implements(LogReport(), "on_before_backward")  # switched off by the base class (None)
    assert implements(FailOnNonNumber(), "on_train_batch_end")
    assert implements(ProgressBar(), "setup")  # Lightning's ProgressBar's, which keeps its trainer
    graph = DumpGraph("main/loss")
    assert implements(graph, "on_before_backward")
    graph.on_before_backward = None
    assert not implements(graph, "on_before_backward")


def test_a_forwarder_calls_the_hook_and_removes_itself_once_every_extension_switched_it_off() -> None:
    calls: list[Any] = []

    class Counting:
        def on_after_backward(self, *args: Any) -> None:
            calls.append(args)

    first, second = Counting(), Counting()
    owner = SimpleNamespace()
    forward = Forwarding([first, second, object()]).forwarder("on_after_backward", owner)
    assert forward is not None and Forwarding([object()]).forwarder("on_after_backward", owner) is None
    owner.on_after_backward = forward
    forward("trainer", "module")
    assert calls == [("trainer", "module")] * 2
    first.on_after_backward = second.on_after_backward = None
    forward("trainer", "module")
    assert owner.on_after_backward is None and len(calls) == 2
