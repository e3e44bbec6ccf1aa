"""Chainer's ``chainer.training`` module shape: ``from lightning_chainer import training``.

A Chainer script's ``training.extensions.LogReport()``, ``training.triggers.MaxValueTrigger(...)``,
``@training.make_extension(...)`` and ``training.PRIORITY_WRITER`` read as they are;
``training.ExtensionsManager`` stands where ``training.Trainer`` did (without the updater, which is Lightning's
loop), and ``from lightning_chainer.training import extensions, triggers`` works too.
"""

from lightning_chainer import extensions, triggers
from lightning_chainer.extension import Extension, make_extension
from lightning_chainer.manager import ExtensionsManager
from lightning_chainer.step import PRIORITY_EDITOR, PRIORITY_READER, PRIORITY_WRITER
from lightning_chainer.triggers import get_trigger

__all__ = [
    "PRIORITY_EDITOR",
    "PRIORITY_READER",
    "PRIORITY_WRITER",
    "Extension",
    "ExtensionsManager",
    "extensions",
    "get_trigger",
    "make_extension",
    "triggers",
]
