"""Chainer's Trainer/Extensions design for any LightningModule: ``from lightning_chainer import extensions, triggers``.

Extensions are Lightning callbacks that run once per training iteration in Chainer's priority order, around one
observation dict (``main/loss``, ``validation/main/accuracy``, ...); triggers decide when. Nothing here knows a
dataset, a model or a command line.
"""

from lightning_chainer import extensions, triggers
from lightning_chainer.extension import Extension
from lightning_chainer.step import Step

__all__ = ["Extension", "Step", "extensions", "triggers"]
