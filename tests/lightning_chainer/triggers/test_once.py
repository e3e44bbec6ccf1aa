"""OnceTrigger fires where real Chainer 7.8.1's OnceTrigger fires, before and after a resume through its serializers."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from helpers import chainer_trainers, step_at

from lightning_chainer.triggers import OnceTrigger
from mnist_lightning.chainer_compat import import_chainer

ITERS_PER_EPOCH = 5
ITERATIONS = range(1, 13)


def chainer_module() -> Any:
    """Real Chainer 7.8.1's triggers and serializers."""
    import_chainer()
    from chainer import serializers
    from chainer.training import triggers

    return triggers, serializers


def chainer_run(call_on_resume: bool, resume_at: int | None, state: Any = "saved") -> list[tuple[int, bool, bool]]:
    """``(iteration, fired, finished)`` of Chainer's trigger over ``ITERATIONS``, rebuilt from its snapshot at
    ``resume_at`` (``state=None``: from a snapshot holding nothing for it)."""
    triggers, serializers = chainer_module()
    trigger = triggers.OnceTrigger(call_on_resume)
    seen = []
    for i, trainer in chainer_trainers(ITERATIONS, ITERS_PER_EPOCH):
        if i == resume_at:
            saved = serializers.DictionarySerializer()
            trigger.serialize(saved)
            trigger = triggers.OnceTrigger(call_on_resume)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                trigger.serialize(serializers.NpzDeserializer(saved.target if state == "saved" else {}))
        seen.append((i, bool(trigger(trainer)), trigger.finished))
    return seen


def our_run(call_on_resume: bool, resume_at: int | None, state: Any = "saved") -> list[tuple[int, bool, bool]]:
    """What :func:`chainer_run` records, for our trigger resumed through ``state_dict`` / ``load_state_dict``."""
    trigger = OnceTrigger(call_on_resume)
    seen = []
    for i in ITERATIONS:
        if i == resume_at:
            saved = trigger.state_dict()
            trigger = OnceTrigger(call_on_resume)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                trigger.load_state_dict(saved if state == "saved" else {})
        seen.append((i, trigger(step_at(i, ITERS_PER_EPOCH)), trigger.finished))
    return seen


@pytest.mark.parametrize("call_on_resume", [False, True])
@pytest.mark.parametrize("resume_at", [None, 1, 4, 9])
def test_once_trigger_fires_where_chainers_does_before_and_after_a_resume(
    call_on_resume: bool, resume_at: int | None
) -> None:
    ours = our_run(call_on_resume, resume_at)
    assert ours == chainer_run(call_on_resume, resume_at)
    again = call_on_resume and resume_at is not None and resume_at > 1
    assert [i for i, fire, _ in ours if fire] == ([1, resume_at] if again else [1])


@pytest.mark.parametrize("call_on_resume", [False, True])
def test_once_trigger_without_saved_state_takes_itself_as_fired_as_chainer(call_on_resume: bool) -> None:
    ours = our_run(call_on_resume, 1, state=None)
    assert ours == chainer_run(call_on_resume, 1, state=None)
    assert ours[0][1] == call_on_resume  # resumed before its first call, it misses that call unless call_on_resume
    with pytest.warns(UserWarning, match="taken as having fired already"):
        OnceTrigger().load_state_dict({})


def test_once_trigger_refuses_a_call_on_resume_that_is_not_a_bool() -> None:
    with pytest.raises(TypeError, match="call_on_resume must be True or False"):
        OnceTrigger("yes")  # type: ignore[arg-type]
