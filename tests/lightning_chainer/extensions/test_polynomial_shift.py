"""PolynomialShift sets, iteration by iteration and across a resume, the values real Chainer 7.8.1's sets."""

from __future__ import annotations

import pytest
from shift_helpers import Case, ChainerRun, OurRun, assert_resumes_as_chainer, uninterrupted

from lightning_chainer.extensions import PolynomialShift

CASES = {
    "to zero and past it": Case(
        lambda: PolynomialShift("lr", 0.9, 10), lambda E: E.PolynomialShift("lr", 0.9, 10), iterations=14
    ),
    "target, given init": Case(
        lambda: PolynomialShift("lr", 2.0, 12, init=0.2, target=0.05),
        lambda E: E.PolynomialShift("lr", 2.0, 12, 0.2, 0.05),
        iterations=11,
    ),
    "rate 0 keeps init": Case(
        lambda: PolynomialShift("lr", 0.0, 4, init=0.3), lambda E: E.PolynomialShift("lr", 0.0, 4, 0.3), iterations=8
    ),
    "momentum, each epoch": Case(
        lambda: PolynomialShift("momentum", 1.0, 3, trigger=(1, "epoch")),
        lambda E: E.PolynomialShift("momentum", 1.0, 3),
        attr="momentum",
        chainer_optimizer=("MomentumSGD", {"lr": 0.1, "momentum": 0.9}),
        trigger=(1, "epoch"),
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_polynomial_shift_sets_chainers_value_at_every_iteration(case: Case) -> None:
    ours = uninterrupted(OurRun(case), range(1, case.iterations + 1))
    theirs = uninterrupted(ChainerRun(case), range(1, case.iterations + 1))
    assert ours == theirs
    assert len(set(ours)) > 2 or case is CASES["rate 0 keeps init"]


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_polynomial_shift_resumed_in_the_middle_continues_as_chainers(case: Case) -> None:
    result = assert_resumes_as_chainer(case, at=5)
    assert result.ours_calls == result.chainer_calls


def test_polynomial_shift_with_a_target_sets_the_target_at_max_count_where_chainer_divides_by_zero() -> None:
    case = Case(
        lambda: PolynomialShift("lr", 2.0, 6, target=0.01), lambda E: E.PolynomialShift("lr", 2.0, 6, None, 0.01)
    )
    ours, chainer = OurRun(case), ChainerRun(case)
    before = [(ours.iterate(i), chainer.iterate(i)) for i in range(1, 6)]
    assert [a for a, _ in before] == [b for _, b in before]
    with pytest.raises(ZeroDivisionError):
        chainer.iterate(6)
    assert ours.iterate(6) == ours.iterate(7) == 0.01


def test_polynomial_shift_has_chainers_trigger_and_priority() -> None:
    run = ChainerRun(CASES["to zero and past it"])
    ours = PolynomialShift("lr", 0.9, 10)
    assert (ours.trigger.period, ours.trigger.unit) == (run.trigger.period, run.trigger.unit) == (1, "iteration")
    assert ours.priority == run.extension.priority


@pytest.mark.parametrize("max_count", [0, -3, 2.5, True])
def test_polynomial_shift_refuses_a_max_count_that_is_not_a_positive_int(max_count: object) -> None:
    with pytest.raises(ValueError, match="PolynomialShift's max_count must be a positive int"):
        PolynomialShift("lr", 0.9, max_count)  # type: ignore[arg-type]


def test_polynomial_shift_refuses_a_negative_rate_which_divides_by_zero_at_max_count() -> None:
    with pytest.raises(ValueError, match="PolynomialShift's rate must be at least 0"):
        PolynomialShift("lr", -1.0, 4)
    case = Case(lambda: None, lambda E: E.PolynomialShift("lr", -1.0, 4))
    chainer = ChainerRun(case)
    for i in range(1, 4):
        chainer.iterate(i)
    with pytest.raises(ZeroDivisionError):
        chainer.iterate(4)
