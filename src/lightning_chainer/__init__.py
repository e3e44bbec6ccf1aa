"""Chainer's Trainer/Extensions design for any LightningModule: ``from lightning_chainer import extensions, triggers``.

Extensions are Lightning callbacks that run once per training iteration in Chainer's priority order, around one
observation dict (``main/loss``, ``validation/main/accuracy``, ...); triggers decide when. ``ExtensionsManager``
is Chainer's ``trainer`` (``trainer.extend(...)``) as one Lightning callback, ``training`` is Chainer's
``chainer.training`` module shape, and ``quiet_console()`` keeps Lightning's chatter out of the PrintReport table.
Nothing here knows a dataset, a model or a command line.
"""

from lightning_chainer import extensions, training, triggers
from lightning_chainer.console import quiet_console
from lightning_chainer.extension import Extension, make_extension
from lightning_chainer.manager import ExtensionsManager
from lightning_chainer.step import Step

__all__ = [
    "Extension",
    "ExtensionsManager",
    "Step",
    "extensions",
    "make_extension",
    "quiet_console",
    "training",
    "triggers",
]
