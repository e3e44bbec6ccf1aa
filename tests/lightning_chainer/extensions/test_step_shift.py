"""StepShift sets, iteration by iteration and across a resume, the values real Chainer 7.8.1's StepShift sets."""

from __future__ import annotations

import pytest
from shift_helpers import Case, ChainerRun, OurRun, assert_resumes_as_chainer, uninterrupted

from lightning_chainer.extensions import StepShift

CASES = {
    "lr from the optimizer": Case(lambda: StepShift("lr", 0.5, 3), lambda E: E.StepShift("lr", 0.5, 3)),
    "target": Case(lambda: StepShift("lr", 0.5, 2, target=0.02), lambda E: E.StepShift("lr", 0.5, 2, target=0.02)),
    "growing to a target": Case(
        lambda: StepShift("lr", 3.0, 2, init=0.01, target=0.5), lambda E: E.StepShift("lr", 3.0, 2, 0.01, 0.5)
    ),
    "Adam's alpha, each epoch": Case(
        lambda: StepShift("alpha", 0.1, 2, trigger=(1, "epoch")),
        lambda E: E.StepShift("alpha", 0.1, 2),
        attr="alpha",
        chainer_optimizer=("Adam", {"alpha": 0.001}),
        torch_optimizer=("Adam", {"lr": 0.001}),
        trigger=(1, "epoch"),
        iterations=40,
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_step_shift_sets_chainers_value_at_every_iteration(case: Case) -> None:
    ours = uninterrupted(OurRun(case), range(1, case.iterations + 1))
    theirs = uninterrupted(ChainerRun(case), range(1, case.iterations + 1))
    assert ours == theirs
    assert len(set(ours)) > 2  # the schedule moved


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_step_shift_resumed_in_the_middle_continues_as_chainers(case: Case) -> None:
    result = assert_resumes_as_chainer(case, at=case.iterations // 2 - 1)
    assert result.ours_calls == result.chainer_calls


def test_step_shift_has_chainers_trigger_and_priority() -> None:
    run = ChainerRun(CASES["target"])
    ours = StepShift("lr", 0.5, 2)
    assert (ours.trigger.period, ours.trigger.unit) == (run.trigger.period, run.trigger.unit) == (1, "iteration")
    assert ours.priority == run.extension.priority


@pytest.mark.parametrize("step", [0, -2, 1.5, True])
def test_step_shift_refuses_a_step_that_is_not_a_positive_int(step: object) -> None:
    with pytest.raises(ValueError, match="StepShift's step must be a positive int"):
        StepShift("lr", 0.5, step)  # type: ignore[arg-type]
