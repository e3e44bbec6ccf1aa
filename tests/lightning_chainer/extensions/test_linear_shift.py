"""LinearShift sets, iteration by iteration and across a resume, the values real Chainer 7.8.1's LinearShift sets."""

from __future__ import annotations

import pytest
from shift_helpers import Case, ChainerRun, OurRun, assert_resumes_as_chainer, read, uninterrupted

from lightning_chainer.extensions import LinearShift

CASES = {
    "lr": Case(lambda: LinearShift("lr", (0.1, 0.4), (2, 5)), lambda E: E.LinearShift("lr", (0.1, 0.4), (2, 5))),
    "momentum, each epoch": Case(
        lambda: LinearShift("momentum", (0.5, 0.95), (0, 3), trigger=(1, "epoch")),
        lambda E: E.LinearShift("momentum", (0.5, 0.95), (0, 3)),
        attr="momentum",
        chainer_optimizer=("MomentumSGD", {"lr": 0.1, "momentum": 0.9}),
        trigger=(1, "epoch"),
    ),
    "RMSprop's alpha stays its alpha": Case(
        lambda: LinearShift("alpha", (0.99, 0.9), (1, 6)),
        lambda E: E.LinearShift("alpha", (0.99, 0.9), (1, 6)),
        attr="alpha",
        chainer_optimizer=("RMSprop", {"lr": 0.01, "alpha": 0.99}),
        torch_optimizer=("RMSprop", {"lr": 0.01, "alpha": 0.99}),
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_linear_shift_sets_chainers_value_at_every_iteration(case: Case) -> None:
    run = OurRun(case)
    ours = uninterrupted(run, range(1, case.iterations + 1))
    theirs = uninterrupted(ChainerRun(case), range(1, case.iterations + 1))
    assert ours == theirs
    assert len(set(ours)) > 2
    if case.attr != "lr":  # only attr moves
        assert read(run.optimizer, "lr") == case.torch_optimizer[1]["lr"]


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_linear_shift_resumed_in_the_middle_continues_as_chainers(case: Case) -> None:
    result = assert_resumes_as_chainer(case, at=3)
    assert result.ours_calls == result.chainer_calls


def test_linear_shift_has_chainers_trigger_and_priority() -> None:
    run = ChainerRun(CASES["lr"])
    ours = LinearShift("lr", (0.1, 0.4), (2, 5))
    assert (ours.trigger.period, ours.trigger.unit) == (run.trigger.period, run.trigger.unit) == (1, "iteration")
    assert ours.priority == run.extension.priority


@pytest.mark.parametrize(("value_range", "time_range"), [((0.1,), (2, 5)), ((0.1, 0.4), (2, 5, 8)), ((0.1, 0.4), 5)])
def test_linear_shift_refuses_ranges_that_are_not_pairs(value_range: object, time_range: object) -> None:
    with pytest.raises(ValueError, match="LinearShift's (value|time)_range must be a pair"):
        LinearShift("lr", value_range, time_range)  # type: ignore[arg-type]
