"""Same start, same step: torch and real Chainer 7.8.1 agree on loss, gradients and optimizer updates.

Both predictors start from one framework-neutral ``.npz`` (``mnist_lightning.weights``) and see the same batch.

Chainer's Adam divides by ``sqrt(v) + eps`` with the bias corrections folded into ``alpha_t``; torch divides by
``sqrt(v_hat) + eps``. Chainer's update is torch's with ``eps / sqrt(1 - beta2**t)`` in place of ``eps``
(3.2e-7 instead of 1e-8 at t=1), which changes the step of every element whose gradient is below about 1e-5.
``chainer_eps`` applies that rescaling to torch's Adam before each step; the tests show that torch matches Chainer
with it and does not without it.

Adaptive optimizers divide by the gradient's own size, so float32 rounding noise in a near-zero gradient element
(about 1e-6 of the largest one) turns into a visible difference in that element's step. The one-step tests therefore
feed both optimizers Chainer's own gradients (float32, element by element to 1e-5), and the end-to-end step
(forward, backward, update) is checked in float64, where rounding noise is far below 1e-5.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from conftest import load_script

from mnist_lightning.chainer_compat import import_chainer
from mnist_lightning.classifier import OPTIMIZERS, make_optimizer
from mnist_lightning.models import build_predictor
from mnist_lightning.weights import save_npz, torch_layers

try:
    import_chainer()
except ImportError as error:
    if os.environ.get("CI") == "true":
        raise
    pytest.skip(str(error), allow_module_level=True)

N_UNITS = 50
RTOL = 1e-5


tc = load_script("train_chainer")
chainer = tc.chainer


def batch(n: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A batch shaped and scaled like MNIST's: uint8 pixels / 255 as float32 (n, 1, 28, 28), int labels."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 1, 28, 28)).astype(np.float32) / np.float32(255.0)
    return x, rng.integers(0, 10, n)


def twins(model: str, tmp_path: Path, dtype: type = np.float32) -> tuple[torch.nn.Module, object]:
    """A torch predictor and a Chainer predictor holding the same weights, passed through the .npz file."""
    torch.manual_seed(1)
    net = build_predictor(model, N_UNITS)
    path = tmp_path / f"{model}.npz"
    save_npz(net, path, model, N_UNITS)
    with chainer.using_config("dtype", dtype):
        link = tc.build_predictor(model, N_UNITS)
    tc.load_weights(link, path, model, N_UNITS)
    if dtype == np.float64:
        net = net.double()
    return net, link


def pairs(net: torch.nn.Module, link: object) -> list[tuple[torch.Tensor, object]]:
    """(torch parameter, Chainer parameter) in the same order: W then b of each layer."""
    return [
        (p, q)
        for layer, chain_link in zip(torch_layers(net), link.layers(), strict=True)
        for p, q in ((layer.weight, chain_link.W), (layer.bias, chain_link.b))
    ]


def forward_backward(net: torch.nn.Module, link: object, x: np.ndarray, t: np.ndarray) -> tuple[float, float]:
    """Softmax cross-entropy loss of both predictors on (x, t), gradients left in the parameters."""
    for p in net.parameters():
        p.grad = None
    loss = TF.cross_entropy(net(torch.from_numpy(x)), torch.from_numpy(t))
    loss.backward()
    link.cleargrads()
    chainer_loss = chainer.functions.softmax_cross_entropy(link(x), t.astype(np.int32))
    chainer_loss.backward()
    return loss.item(), float(chainer_loss.array)


def assert_close_to_max(actual: np.ndarray, expected: np.ndarray, rtol: float, what: str) -> None:
    """max |actual - expected| <= rtol * max |expected|: relative to the tensor's scale, for gradients."""
    scale = float(np.abs(expected).max())
    error = float(np.abs(actual - expected).max())
    assert error <= rtol * scale, f"{what}: max difference {error:.3g} exceeds {rtol} x {scale:.3g}"


def step_error(actual: np.ndarray, expected: np.ndarray, before: np.ndarray) -> float:
    """Largest elementwise difference after an update, relative to max(|before|, |after|) of that element.

    ``before - step`` in float32 is exact only to the larger operand's precision, so an element that the step
    brings near zero is compared at the scale it came from.
    """
    scale = np.maximum(np.abs(before), np.abs(expected))
    return float((np.abs(actual - expected) / np.where(scale > 0, scale, 1.0)).max())


def chainer_eps(optimizer: torch.optim.Optimizer, eps: float, beta2: float, t: int) -> None:
    """Give torch's Adam Chainer's eps placement for step ``t`` (1-based): eps / sqrt(1 - beta2**t)."""
    for group in optimizer.param_groups:
        group["eps"] = eps / math.sqrt(1.0 - beta2**t)


def chainer_optimizer(name: str, link: object) -> object:
    """Chainer's optimizer for our name, set up on ``link``, with the script's default hyper-parameters."""
    optimizer = tc.make_optimizer(name)
    optimizer.setup(link)
    return optimizer


@pytest.mark.parametrize("model", ["lenet", "mlp"])
def test_same_loss_and_gradients(model: str, tmp_path: Path) -> None:
    net, link = twins(model, tmp_path)
    x, t = batch()
    loss, chainer_loss = forward_backward(net, link, x, t)
    assert loss == pytest.approx(chainer_loss, rel=RTOL)
    for p, q in pairs(net, link):
        assert p.grad is not None and q.grad is not None
        assert_close_to_max(p.grad.numpy(), q.grad, RTOL, f"gradient of {tuple(p.shape)}")


@pytest.mark.parametrize("model", ["lenet", "mlp"])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_same_update_from_the_same_gradients(model: str, name: str, tmp_path: Path) -> None:
    """Three steps of each optimizer from equal parameters and state on Chainer's gradients agree (float32).

    Before each step torch's parameters are set to Chainer's, so each step starts from the same point; the
    optimizers' state (moments, accumulators) is never copied and must evolve the same on its own.
    """
    net, link = twins(model, tmp_path)
    optimizer = make_optimizer(name, net.parameters())
    chainer_opt = chainer_optimizer(name, link)
    x, t = batch()
    for step in range(1, 4):
        forward_backward(net, link, x, t)
        with torch.no_grad():
            for p, q in pairs(net, link):
                p.copy_(torch.from_numpy(q.array))
                p.grad = torch.from_numpy(q.grad.copy())
        before = [q.array.copy() for _, q in pairs(net, link)]
        if name in ("adam", "adamw"):
            chainer_eps(optimizer, 1e-8, 0.999, step)
        optimizer.step()
        chainer_opt.update()
        for (p, q), b in zip(pairs(net, link), before, strict=True):
            error = step_error(p.detach().numpy(), q.array, b)
            assert error <= RTOL, f"{name} step {step}, {tuple(p.shape)}: relative difference {error:.3g}"


@pytest.mark.parametrize("model", ["lenet", "mlp"])
def test_torch_adam_without_the_eps_rescaling_differs_from_chainer(model: str, tmp_path: Path) -> None:
    """Stock torch Adam (our ``make_optimizer('adam')``) takes a different first step for small gradients."""
    net, link = twins(model, tmp_path)
    optimizer = make_optimizer("adam", net.parameters())
    chainer_opt = chainer_optimizer("adam", link)
    forward_backward(net, link, *batch())
    for p, q in pairs(net, link):
        p.grad = torch.from_numpy(q.grad.copy())
    before = [q.array.copy() for _, q in pairs(net, link)]
    optimizer.step()
    chainer_opt.update()
    worst = max(step_error(p.detach().numpy(), q.array, b) for (p, q), b in zip(pairs(net, link), before, strict=True))
    assert worst > 100 * RTOL


@pytest.mark.parametrize("model", ["lenet", "mlp"])
@pytest.mark.parametrize("name", ["adam", "chainer_adam", "momentum_sgd", "adagrad", "rmsprop", "adadelta"])
def test_one_training_step_end_to_end_in_float64(model: str, name: str, tmp_path: Path) -> None:
    """Forward, backward and one update in each framework on its own: same loss, gradients and parameters."""
    net, link = twins(model, tmp_path, dtype=np.float64)
    optimizer = make_optimizer(name, net.parameters())
    chainer_opt = chainer_optimizer(name, link)
    x, t = batch()
    x = x.astype(np.float64)
    loss, chainer_loss = forward_backward(net, link, x, t)
    assert loss == pytest.approx(chainer_loss, rel=1e-12)
    for p, q in pairs(net, link):
        assert q.array.dtype == np.float64
        assert_close_to_max(p.grad.numpy(), q.grad, 1e-10, f"gradient of {tuple(p.shape)}")
    before = [q.array.copy() for _, q in pairs(net, link)]
    if name == "adam":
        chainer_eps(optimizer, 1e-8, 0.999, 1)
    optimizer.step()
    chainer_opt.update()
    for (p, q), b in zip(pairs(net, link), before, strict=True):
        error = step_error(p.detach().numpy(), q.array, b)
        assert error <= RTOL, f"{name}, {tuple(p.shape)}: relative difference {error:.3g}"


#: Chainer hyper-parameter -> the torch keyword holding the same value, per optimizer name.
SAME_HYPERPARAMETERS = {
    "adam": {"alpha": "lr", "eps": "eps"},
    "chainer_adam": {"alpha": "lr", "eps": "eps"},
    "sgd": {"lr": "lr"},
    "momentum_sgd": {"lr": "lr", "momentum": "momentum"},
    "adadelta": {"rho": "rho", "eps": "eps"},
    "adagrad": {"lr": "lr", "eps": "eps"},
    "rmsprop": {"lr": "lr", "alpha": "alpha", "eps": "eps"},
    "adamw": {"alpha": "lr", "eps": "eps", "weight_decay_rate": "weight_decay"},
}


def test_chainer_optimizers_use_the_torch_defaults() -> None:
    """The script maps every optimizer name to the Chainer class and hyper-parameters that torch's side mirrors."""
    assert set(tc.OPTIMIZERS) == set(OPTIMIZERS) == set(SAME_HYPERPARAMETERS)
    for name, (_, defaults, chainer_class) in OPTIMIZERS.items():
        optimizer = tc.make_optimizer(name)
        assert type(optimizer).__name__ == chainer_class
        for chainer_key, torch_key in SAME_HYPERPARAMETERS[name].items():
            assert getattr(optimizer.hyperparam, chainer_key) == pytest.approx(defaults[torch_key]), (name, chainer_key)
        if "betas" in defaults:
            assert (optimizer.hyperparam.beta1, optimizer.hyperparam.beta2) == pytest.approx(defaults["betas"])
    # Chainer's AdaDelta has no learning rate: torch's lr must be 1 for the same update.
    assert OPTIMIZERS["adadelta"][1]["lr"] == 1.0


def test_lr_overrides_chainer_learning_rate_and_adadelta_refuses_it() -> None:
    assert tc.make_optimizer("adam", 0.01).hyperparam.alpha == pytest.approx(0.01)
    assert tc.make_optimizer("momentum_sgd", 0.5).hyperparam.lr == pytest.approx(0.5)
    with pytest.raises(tc.UsageError, match="no learning rate"):
        tc.make_optimizer("adadelta", 0.5)
