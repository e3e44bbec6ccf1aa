"""ExponentialShift sets, iteration by iteration and across a resume, the values real Chainer 7.8.1's sets."""

from __future__ import annotations

import pytest
from shift_helpers import Case, ChainerRun, OurRun, assert_resumes_as_chainer, uninterrupted

from lightning_chainer.extensions import ExponentialShift

CASES = {
    "target": Case(
        lambda: ExponentialShift("lr", 0.5, target=0.02), lambda E: E.ExponentialShift("lr", 0.5, target=0.02)
    ),
    "growing to a target": Case(
        lambda: ExponentialShift("lr", 3.0, init=0.01, target=0.5), lambda E: E.ExponentialShift("lr", 3.0, 0.01, 0.5)
    ),
    "Adam's beta1, each epoch": Case(
        lambda: ExponentialShift("beta1", 0.9, target=0.5, trigger=(1, "epoch")),
        lambda E: E.ExponentialShift("beta1", 0.9, target=0.5),
        attr="beta1",
        chainer_optimizer=("Adam", {"alpha": 0.001}),
        torch_optimizer=("Adam", {"lr": 0.001}),
        trigger=(1, "epoch"),
        iterations=32,
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_exponential_shift_sets_chainers_value_at_every_iteration(case: Case) -> None:
    ours = uninterrupted(OurRun(case), range(1, case.iterations + 1))
    theirs = uninterrupted(ChainerRun(case), range(1, case.iterations + 1))
    assert ours == theirs
    assert len(set(ours)) > 2


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_exponential_shift_resumed_in_the_middle_continues_as_chainers(case: Case) -> None:
    result = assert_resumes_as_chainer(case, at=3)
    assert result.ours_calls == result.chainer_calls


def test_exponential_shift_keeps_its_first_value_across_a_resume_when_it_read_it_from_the_optimizer() -> None:
    """The restored optimizer holds the shifted value, so ``init`` travels in the state (Chainer's optimizer
    does not restore its attributes, so its fresh one gives ``init`` again)."""
    result = assert_resumes_as_chainer(CASES["target"], at=3)
    assert result.our_state["extension"]["init"] == result.chainer[0]


def test_exponential_shift_refuses_a_negative_rate_as_chainer_does() -> None:
    with pytest.raises(ValueError, match="ExponentialShift's rate must be at least 0"):
        ExponentialShift("lr", -0.5)
    with pytest.raises(ValueError):
        ChainerRun(Case(lambda: None, lambda E: E.ExponentialShift("lr", -0.5)))


def test_exponential_shift_has_chainers_trigger_and_priority() -> None:
    run = ChainerRun(CASES["target"])
    ours = ExponentialShift("lr", 0.5)
    assert (ours.trigger.period, ours.trigger.unit) == (run.trigger.period, run.trigger.unit) == (1, "iteration")
    assert ours.priority == run.extension.priority
