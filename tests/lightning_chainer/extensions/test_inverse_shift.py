"""InverseShift sets, iteration by iteration and across a resume, the values real Chainer 7.8.1's InverseShift sets."""

from __future__ import annotations

import pytest
from shift_helpers import Case, ChainerRun, OurRun, assert_resumes_as_chainer, uninterrupted

from lightning_chainer.extensions import InverseShift

CASES = {
    "lr from the optimizer": Case(lambda: InverseShift("lr", 0.1, 0.75), lambda E: E.InverseShift("lr", 0.1, 0.75)),
    "target": Case(
        lambda: InverseShift("lr", 0.5, 1.0, target=0.03), lambda E: E.InverseShift("lr", 0.5, 1.0, target=0.03)
    ),
    "growing to a target": Case(
        lambda: InverseShift("lr", 0.2, -2.0, init=0.01, target=0.05),
        lambda E: E.InverseShift("lr", 0.2, -2.0, 0.01, 0.05),
    ),
    "Adam's alpha, each epoch": Case(
        lambda: InverseShift("alpha", 1.0, 0.5, trigger=(1, "epoch")),
        lambda E: E.InverseShift("alpha", 1.0, 0.5),
        attr="alpha",
        chainer_optimizer=("Adam", {"alpha": 0.001}),
        torch_optimizer=("Adam", {"lr": 0.001}),
        trigger=(1, "epoch"),
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_inverse_shift_sets_chainers_value_at_every_iteration(case: Case) -> None:
    ours = uninterrupted(OurRun(case), range(1, case.iterations + 1))
    theirs = uninterrupted(ChainerRun(case), range(1, case.iterations + 1))
    assert ours == theirs
    assert len(set(ours)) > 2


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_inverse_shift_resumed_in_the_middle_continues_as_chainers(case: Case) -> None:
    result = assert_resumes_as_chainer(case, at=7)
    assert result.ours_calls == result.chainer_calls


def test_inverse_shift_has_chainers_trigger_and_priority() -> None:
    run = ChainerRun(CASES["target"])
    ours = InverseShift("lr", 0.1, 0.75)
    assert (ours.trigger.period, ours.trigger.unit) == (run.trigger.period, run.trigger.unit) == (1, "iteration")
    assert ours.priority == run.extension.priority


def test_inverse_shift_refuses_a_negative_gamma_as_chainer_does() -> None:
    with pytest.raises(ValueError, match="InverseShift's gamma must be at least 0"):
        InverseShift("lr", -0.1, 0.75)
    with pytest.raises(ValueError):
        ChainerRun(Case(lambda: None, lambda E: E.InverseShift("lr", -0.1, 0.75)))
