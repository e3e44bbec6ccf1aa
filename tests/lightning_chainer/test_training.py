"""``lightning_chainer.training`` has the shape of Chainer's ``chainer.training`` where a Chainer script reads it."""

from __future__ import annotations

import lightning_chainer
from lightning_chainer import training
from mnist_lightning.chainer_compat import import_chainer

#: The names of ``chainer.training`` a Chainer script's extension block uses.
CHAINER_NAMES = ("extensions", "triggers", "make_extension", "Extension", "get_trigger")
PRIORITIES = ("PRIORITY_WRITER", "PRIORITY_EDITOR", "PRIORITY_READER")


def test_a_chainer_scripts_names_of_chainer_training_are_here() -> None:
    chainer_training = import_chainer().training
    for name in (*CHAINER_NAMES, *PRIORITIES):
        assert hasattr(chainer_training, name) and hasattr(training, name), name
    assert [getattr(training, p) for p in PRIORITIES] == [getattr(chainer_training, p) for p in PRIORITIES]
    assert training.triggers.MaxValueTrigger is lightning_chainer.triggers.MaxValueTrigger
    assert training.extensions.LogReport is lightning_chainer.extensions.LogReport
    assert training.ExtensionsManager is lightning_chainer.ExtensionsManager


def test_extensions_and_triggers_import_from_it_as_from_chainer_training() -> None:
    from lightning_chainer.training import extensions, triggers

    assert extensions is lightning_chainer.extensions and triggers is lightning_chainer.triggers
    assert training.make_extension is lightning_chainer.make_extension
    assert set(training.__all__) >= {*CHAINER_NAMES, *PRIORITIES, "ExtensionsManager"}
