"""``get_trigger``: what Chainer accepts as a trigger, made callable."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lightning_chainer.triggers.interval import IntervalTrigger

if TYPE_CHECKING:
    from lightning_chainer.step import Step, Trigger


def _never(step: Step) -> bool:
    return False


def get_trigger(trigger: Any) -> Trigger:
    """A tuple ``(period, unit)`` becomes an IntervalTrigger, ``None`` never fires, a callable is used as given."""
    if trigger is None:
        return _never
    if callable(trigger):
        return trigger
    period, unit = trigger
    return IntervalTrigger(period, unit)
