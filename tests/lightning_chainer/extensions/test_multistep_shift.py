"""MultistepShift sets, iteration by iteration and across a resume, the values real Chainer 7.8.1's sets."""

from __future__ import annotations

import pytest
from shift_helpers import Case, ChainerRun, OurRun, assert_resumes_as_chainer, resume, uninterrupted

from lightning_chainer.extensions import MultistepShift

CASES = {
    "given init": Case(
        lambda: MultistepShift("lr", 0.1, (3, 7, 10), 0.5), lambda E: E.MultistepShift("lr", 0.1, (3, 7, 10), 0.5)
    ),
    "init from the optimizer": Case(
        lambda: MultistepShift("lr", 0.5, [2, 5], None), lambda E: E.MultistepShift("lr", 0.5, [2, 5], None)
    ),
    "momentum, each epoch": Case(
        lambda: MultistepShift("momentum", 0.5, [1, 3], 0.9, trigger=(1, "epoch")),
        lambda E: E.MultistepShift("momentum", 0.5, [1, 3], 0.9),
        attr="momentum",
        chainer_optimizer=("MomentumSGD", {"lr": 0.1, "momentum": 0.9}),
        trigger=(1, "epoch"),
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_multistep_shift_sets_chainers_value_at_every_iteration(case: Case) -> None:
    ours = uninterrupted(OurRun(case), range(1, case.iterations + 1))
    theirs = uninterrupted(ChainerRun(case), range(1, case.iterations + 1))
    assert ours == theirs
    assert len(set(ours)) > 2


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_multistep_shift_resumed_in_the_middle_continues_as_chainers(case: Case) -> None:
    result = assert_resumes_as_chainer(case, at=8)
    assert result.chainer_state["extension/_current_step"] > 0  # resumed between two steps
    if case.trigger is None:  # Chainer's own resume is right from its first call on (the next test)
        assert result.ours_calls == result.chainer_calls


def test_multistep_shift_resumed_keeps_the_shifted_value_where_chainer_sets_init_until_its_next_call() -> None:
    """Chainer's resumed MultistepShift trains the first iteration after a resume with ``init``; ours does not."""
    case = CASES["given init"]
    result = resume(case, 8)
    assert result.chainer_restart == 0.5
    assert result.ours_restart == result.chainer[8] != 0.5  # the uninterrupted run's value after two steps


def test_multistep_shift_has_chainers_trigger_and_priority() -> None:
    run = ChainerRun(CASES["given init"])
    ours = MultistepShift("lr", 0.1, (3,), 0.5)
    assert (ours.trigger.period, ours.trigger.unit) == (run.trigger.period, run.trigger.unit) == (1, "iteration")
    assert ours.priority == run.extension.priority


@pytest.mark.parametrize("step_value", [(5, 3), (3, 3), "35", 4, (1.5, 3)])
def test_multistep_shift_refuses_step_values_that_are_not_increasing_ints(step_value: object) -> None:
    with pytest.raises(ValueError, match="MultistepShift's step_value must be increasing ints"):
        MultistepShift("lr", 0.1, step_value, 0.5)  # type: ignore[arg-type]
