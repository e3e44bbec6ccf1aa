"""ExponentialShift and LinearShift, the HyperparameterShifts, set the values real Chainer 7.8.1's shifts set."""

from __future__ import annotations

import pytest
import torch

from lightning_chainer.extensions import ExponentialShift, LinearShift
from mnist_lightning.chainer_compat import import_chainer


@pytest.fixture(scope="module")
def E():
    """Real Chainer 7.8.1's ``chainer.training.extensions``."""
    import_chainer()
    from chainer.training import extensions

    return extensions


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (lambda: ExponentialShift("lr", 0.5, target=0.02), lambda E: E.ExponentialShift("lr", 0.5, target=0.02)),
        (
            lambda: ExponentialShift("lr", 3.0, init=0.01, target=0.5),
            lambda E: E.ExponentialShift("lr", 3.0, 0.01, 0.5),
        ),
        (lambda: LinearShift("lr", (0.1, 0.4), (2, 5)), lambda E: E.LinearShift("lr", (0.1, 0.4), (2, 5))),
    ],
)
def test_hyperparameter_shifts_set_chainers_values(ours, theirs, E) -> None:
    """Each trigger of our shift sets the learning rate real Chainer's shift sets, from the same start (0.1)."""
    from types import SimpleNamespace

    chainer_optimizer = SimpleNamespace(lr=0.1)
    chainer_trainer = SimpleNamespace(updater=SimpleNamespace(get_optimizer=lambda name: chainer_optimizer))
    torch_optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    lightning_trainer = SimpleNamespace(optimizers=[torch_optimizer])
    shift, reference = ours(), theirs(E)
    reference.initialize(chainer_trainer)
    shift.initialize(lightning_trainer, None)
    values = [(torch_optimizer.param_groups[0]["lr"], chainer_optimizer.lr)]
    for _ in range(7):
        reference(chainer_trainer)
        shift(SimpleNamespace(trainer=lightning_trainer))
        values.append((torch_optimizer.param_groups[0]["lr"], chainer_optimizer.lr))
    assert [ours_ for ours_, _ in values] == [theirs_ for _, theirs_ in values]
    assert len({ours_ for ours_, _ in values}) > 2  # the schedule moved
