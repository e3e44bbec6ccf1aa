"""HyperparameterShift, the base of the shifts: which optimizer and which param-group key it sets, Chainer's
attribute names, and the arguments it refuses."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from helpers import step_at

from lightning_chainer.extensions import ExponentialShift, HyperparameterShift, LinearShift, StepShift
from lightning_chainer.extensions.hyperparameter_shift import ALIASES, param_group_key


def sgd(lr: float = 0.1) -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr, momentum=0.9)


def trainer(*optimizers: torch.optim.Optimizer) -> SimpleNamespace:
    return SimpleNamespace(optimizers=list(optimizers))


def test_optimizer_none_is_the_modules_first_optimizer_and_an_int_picks_another() -> None:
    first, second = sgd(0.1), sgd(0.2)
    default, other = ExponentialShift("lr", 0.5), ExponentialShift("lr", 0.5, optimizer=1)
    for shift in (default, other):
        shift.initialize(trainer(first, second), None)
        shift.run(step_at(1, 4))
    default.run(step_at(2, 4))
    assert (first.param_groups[0]["lr"], second.param_groups[0]["lr"]) == (0.1 * 0.5**2, 0.2 * 0.5)
    assert default.state_key != other.state_key


def test_an_optimizer_given_is_used_whatever_the_trainer_trains() -> None:
    mine, trained = sgd(0.3), sgd(0.1)
    shift = StepShift("lr", 0.1, 1, optimizer=mine)
    shift.initialize(trainer(trained), None)
    shift.run(step_at(1, 4))
    assert (mine.param_groups[0]["lr"], trained.param_groups[0]["lr"]) == (pytest.approx(0.03), 0.1)


def test_chainers_adam_names_set_torchs_adam_keys_in_every_param_group() -> None:
    groups = [{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr} for lr in (0.001, 0.002)]
    adam = torch.optim.Adam(groups, betas=(0.9, 0.999))
    shifts = [LinearShift("alpha", (0.01, 0.02), (0, 1)), LinearShift("beta1", (0.5, 0.8), (0, 1))]
    shifts.append(LinearShift("beta2", (0.9, 0.99), (0, 1)))
    for shift in shifts:
        shift.initialize(trainer(adam), None)
    assert [(g["lr"], g["betas"]) for g in adam.param_groups] == [(0.01, (0.5, 0.9))] * 2
    for shift in shifts:
        shift.run(step_at(1, 4))
    assert [(g["lr"], g["betas"]) for g in adam.param_groups] == [(0.02, (0.8, 0.99))] * 2


def test_an_alias_gives_way_to_a_key_of_the_chainer_name() -> None:
    rmsprop = torch.optim.RMSprop([torch.nn.Parameter(torch.zeros(1))], lr=0.01, alpha=0.99)
    assert param_group_key("LinearShift", "alpha", rmsprop) == ("alpha", None)
    assert param_group_key("LinearShift", "alpha", torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))])) == (
        "lr",
        None,
    )
    assert set(ALIASES) == {"alpha", "beta1", "beta2"}


def test_a_tensor_learning_rate_stays_the_same_tensor() -> None:
    lr = torch.tensor(0.01)
    adam = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=lr, foreach=False)
    shift = ExponentialShift("lr", 0.5)
    shift.initialize(trainer(adam), None)
    shift.run(step_at(1, 4))
    assert adam.param_groups[0]["lr"] is lr and lr.item() == pytest.approx(0.005)


def test_an_unknown_name_is_refused_at_construction_when_the_optimizer_is_given_and_at_train_start_otherwise() -> None:
    with pytest.raises(ValueError, match=r"ExponentialShift: SGD has no hyper-parameter 'beta1'; use one of lr, "):
        ExponentialShift("beta1", 0.5, optimizer=sgd())
    shift = ExponentialShift("alpha", 0.5)
    with pytest.raises(ValueError, match=r"SGD has no hyper-parameter 'alpha'; use one of lr, momentum"):
        shift.initialize(trainer(sgd()), None)


@pytest.mark.parametrize("optimizer", ["main", -1, True, 1.0])
def test_an_optimizer_that_is_no_index_nor_optimizer_is_refused(optimizer: object) -> None:
    with pytest.raises(TypeError, match="ExponentialShift's optimizer must be None .* not"):
        ExponentialShift("lr", 0.5, optimizer=optimizer)  # type: ignore[arg-type]


def test_an_index_past_the_modules_optimizers_is_refused_at_train_start() -> None:
    shift = LinearShift("lr", (0.1, 0.2), (0, 4), optimizer=2)
    with pytest.raises(ValueError, match=r"LinearShift: optimizer=2, but the module has 1 optimizer\(s\); use an"):
        shift.initialize(trainer(sgd()), None)


@pytest.mark.parametrize("attr", [None, "", 3])
def test_an_attr_that_is_no_name_is_refused(attr: object) -> None:
    with pytest.raises(TypeError, match="StepShift's attr must name a hyper-parameter"):
        StepShift(attr, 0.5, 2)  # type: ignore[arg-type]


def test_a_shift_of_your_own_defines_value() -> None:
    class Halving(HyperparameterShift):
        def value(self) -> float:
            return 0.8 / 2**self._t

    optimizer = sgd()
    shift = Halving("lr")
    shift.initialize(trainer(optimizer), None)
    seen = [optimizer.param_groups[0]["lr"]]
    for i in range(1, 4):
        shift.run(step_at(i, 4))
        seen.append(optimizer.param_groups[0]["lr"])
    assert seen == [0.8, 0.4, 0.2, 0.1]
    assert shift.state_dict()["extension"] == {"_t": 3, "_last_value": 0.1}
