"""Chainer's triggers: callables ``trigger(step) -> bool`` evaluated once per iteration, with savable state.

``EarlyStoppingTrigger`` is also a callback: put it in ``Trainer(callbacks=[...])`` and it sets
``trainer.should_stop`` when it fires (Chainer uses it as the Trainer's stop trigger; Lightning stops that way).
"""

from lightning_chainer.step import Trigger
from lightning_chainer.triggers._util import get_trigger
from lightning_chainer.triggers.early_stopping import EarlyStoppingTrigger
from lightning_chainer.triggers.interval import IntervalTrigger
from lightning_chainer.triggers.manual_schedule import ManualScheduleTrigger
from lightning_chainer.triggers.minmax_value import BestValueTrigger, MaxValueTrigger, MinValueTrigger
from lightning_chainer.triggers.once import OnceTrigger
from lightning_chainer.triggers.time import TimeTrigger

__all__ = [
    "BestValueTrigger",
    "EarlyStoppingTrigger",
    "IntervalTrigger",
    "ManualScheduleTrigger",
    "MaxValueTrigger",
    "MinValueTrigger",
    "OnceTrigger",
    "TimeTrigger",
    "Trigger",
    "get_trigger",
]
