"""WarmupShift sets, iteration by iteration and across a resume, the values real Chainer 7.8.1's WarmupShift sets."""

from __future__ import annotations

import pytest
from shift_helpers import Case, ChainerRun, OurRun, assert_resumes_as_chainer, uninterrupted

from lightning_chainer.extensions import WarmupShift

CASES = {
    "given start": Case(lambda: WarmupShift("lr", 0.01, 7, 0.3), lambda E: E.WarmupShift("lr", 0.01, 7, 0.3)),
    "start from the optimizer": Case(
        lambda: WarmupShift("lr", None, 5, 0.5), lambda E: E.WarmupShift("lr", None, 5, 0.5)
    ),
    "momentum, each epoch": Case(
        lambda: WarmupShift("momentum", 0.5, 3, 0.9, trigger=(1, "epoch")),
        lambda E: E.WarmupShift("momentum", 0.5, 3, 0.9),
        attr="momentum",
        chainer_optimizer=("MomentumSGD", {"lr": 0.1, "momentum": 0.9}),
        trigger=(1, "epoch"),
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_warmup_shift_sets_chainers_value_at_every_iteration(case: Case) -> None:
    ours = uninterrupted(OurRun(case), range(1, case.iterations + 1))
    theirs = uninterrupted(ChainerRun(case), range(1, case.iterations + 1))
    assert ours == theirs
    assert len(set(ours)) > 2


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_warmup_shift_resumed_within_the_warm_up_continues_as_chainers(case: Case) -> None:
    result = assert_resumes_as_chainer(case, at=2)
    if case.trigger is None:  # Chainer sets warmup_start on a resume, until its next call
        assert result.ours_calls == result.chainer_calls


def test_warmup_shift_resumed_after_the_warm_up_keeps_init_where_chainer_goes_back_to_warmup_start() -> None:
    case = CASES["given start"]
    result = assert_resumes_as_chainer(case, at=10)
    assert set(result.chainer_calls) == {0.01}  # Chainer's resumed run never leaves warmup_start again
    assert set(result.ours_calls) == {result.chainer[-1]}


def test_warmup_shift_sets_nothing_after_the_warm_up_as_chainer() -> None:
    """Past ``warmup_iter`` another shift (here a hand) owns the value, in both frameworks."""
    case = CASES["given start"]
    ours, chainer = OurRun(case), ChainerRun(case)
    assert [ours.iterate(i) for i in range(1, 9)] == [chainer.iterate(i) for i in range(1, 9)]
    for group in ours.optimizer.param_groups:
        group["lr"] = 0.123
    chainer.optimizer.lr = 0.123
    assert [ours.iterate(i) for i in range(9, 12)] == [chainer.iterate(i) for i in range(9, 12)] == [0.123] * 3


def test_warmup_shift_has_chainers_trigger_and_priority() -> None:
    run = ChainerRun(CASES["given start"])
    ours = WarmupShift("lr", 0.01, 7, 0.3)
    assert (ours.trigger.period, ours.trigger.unit) == (run.trigger.period, run.trigger.unit) == (1, "iteration")
    assert ours.priority == run.extension.priority


@pytest.mark.parametrize("warmup_iter", [0, -1, 2.5, True])
def test_warmup_shift_refuses_a_warmup_iter_that_is_not_a_positive_int(warmup_iter: object) -> None:
    with pytest.raises(ValueError, match="WarmupShift's warmup_iter must be a positive int"):
        WarmupShift("lr", 0.01, warmup_iter, 0.3)  # type: ignore[arg-type]


def test_warmup_shift_refuses_an_init_that_is_not_a_number() -> None:
    with pytest.raises(TypeError, match="WarmupShift's init is the value after the warm-up"):
        WarmupShift("lr", 0.01, 5, None)  # type: ignore[arg-type]
