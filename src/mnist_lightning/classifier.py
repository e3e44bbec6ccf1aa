"""Classifier: the LightningModule counterpart of ``chainer.links.Classifier``.

It wraps any predictor, computes softmax cross-entropy and accuracy, and logs them under Chainer's
observation names (``main/loss``, ``validation/main/accuracy``, ...), so TensorBoard and the
Chainer-style extensions see the names a Chainer user knows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from mnist_lightning.models import MNIST_CLASSES, MNIST_INPUT_SHAPE, as_input_shape, build_predictor


class ChainerAdam(torch.optim.Adam):
    """torch's Adam with Chainer's eps placement, for step-by-step parity with ``chainer.optimizers.Adam``.

    Chainer adds eps to sqrt(v) before the bias correction, torch after it; so before each step this sets
    torch's eps to ``eps / sqrt(1 - beta2**t)``. The step count lives in the param group, so it is checkpointed.
    """

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        for group in self.param_groups:
            group.setdefault("chainer_eps", group["eps"])
            group["chainer_t"] = group.get("chainer_t", 0) + 1
            group["eps"] = group["chainer_eps"] / math.sqrt(1.0 - group["betas"][1] ** group["chainer_t"])
        return super().step(closure)


#: Optimizer name -> (torch class, Chainer's default hyper-parameters in torch's terms, Chainer's class).
OPTIMIZERS: dict[str, tuple[type[torch.optim.Optimizer], dict[str, Any], str]] = {
    "adam": (torch.optim.Adam, {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8}, "Adam"),
    "chainer_adam": (ChainerAdam, {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8}, "Adam"),
    "sgd": (torch.optim.SGD, {"lr": 0.01}, "SGD"),
    "momentum_sgd": (torch.optim.SGD, {"lr": 0.01, "momentum": 0.9}, "MomentumSGD"),
    "adadelta": (torch.optim.Adadelta, {"lr": 1.0, "rho": 0.95, "eps": 1e-6}, "AdaDelta"),
    "adagrad": (torch.optim.Adagrad, {"lr": 1e-3, "eps": 1e-8}, "AdaGrad"),
    "rmsprop": (torch.optim.RMSprop, {"lr": 0.01, "alpha": 0.99, "eps": 1e-8}, "RMSprop"),
    "adamw": (torch.optim.AdamW, {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0}, "AdamW"),
}


def make_optimizer(name: str, params: Any, lr: float | None = None) -> torch.optim.Optimizer:
    """The optimizer called ``name`` with Chainer's defaults; ``lr`` (Chainer's lr, Adam's alpha) overrides."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}: choose one of {', '.join(OPTIMIZERS)}.")
    cls, defaults, _ = OPTIMIZERS[name]
    kwargs = dict(defaults)
    if lr is not None:
        kwargs["lr"] = lr
    return cls(params, **kwargs)


class Classifier(L.LightningModule):
    """Softmax cross-entropy classifier around ``predictor`` (a module, or a name in ``models.MODELS``).

    A predictor given by name is rebuilt from the checkpoint's hyper-parameters alone (name, ``n_units``,
    ``input_shape``, ``n_classes``); a checkpoint whose hyper-parameters lack the last two was made for MNIST and
    loads with its (1, 28, 28) and 10. A predictor given as a module must be passed again:
    ``Classifier.load_from_checkpoint(path, predictor=net)``.

    Args:
        predictor: the predictor module, or the registry name of one to build.
        n_units: the hidden width of a predictor built by name (for models that take one).
        optimizer: a key of :data:`OPTIMIZERS`.
        lr: the learning rate, or None for Chainer's default of the optimizer.
        input_shape: (C, H, W) of one example, for a predictor built by name.
        n_classes: the number of classes, for a predictor built by name.
    """

    def __init__(
        self,
        predictor: nn.Module | str | None = "lenet",
        n_units: int = 100,
        optimizer: str = "adam",
        lr: float | None = None,
        input_shape: Sequence[int] = MNIST_INPUT_SHAPE,
        n_classes: int = MNIST_CLASSES,
    ) -> None:
        super().__init__()
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {optimizer!r}: choose one of {', '.join(OPTIMIZERS)}.")
        # A list of ints, so the hyper-parameters stay plain types (weights-only checkpoints, hparams.yaml).
        input_shape = list(as_input_shape(input_shape))
        n_classes = int(n_classes)
        if isinstance(predictor, str):
            self.save_hyperparameters()
            predictor = build_predictor(predictor, n_units, input_shape=input_shape, n_classes=n_classes)
        elif isinstance(predictor, nn.Module):
            self.save_hyperparameters(ignore=["predictor"])
            self.hparams["predictor"] = None
        else:
            raise TypeError(
                "Classifier needs a predictor: a model name (such as 'lenet' or 'mlp') or an nn.Module; to load a "
                "checkpoint of a custom predictor use Classifier.load_from_checkpoint(path, predictor=YourNet())."
            )
        self.predictor = predictor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.predictor(x)

    def _loss_and_accuracy(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        x, t = batch
        y = self.predictor(x)
        loss = F.cross_entropy(y, t)
        accuracy = (y.detach().argmax(dim=1) == t).float().mean()
        return loss, accuracy

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        """Returns the loss and this step's observation; the Chainer-style extensions read the observation there.

        ``self.log`` costs about 0.3 ms of Python a call in Lightning 2.6, a tenth of a LeNet step on a CPU, and
        the logger only writes step values every ``log_every_n_steps``, so the values go to ``self.log`` (and
        TensorBoard) on exactly those steps.
        """
        loss, accuracy = self._loss_and_accuracy(batch)
        observation = {"main/loss": loss.detach(), "main/accuracy": accuracy}
        if self._logger_writes_this_step():
            self.log_dict(observation, on_step=True, on_epoch=False)
        return {"loss": loss, **observation}

    def _logger_writes_this_step(self) -> bool:
        """Lightning's rule for writing step values: every ``log_every_n_steps`` optimizer steps."""
        every = self.trainer.log_every_n_steps
        return every > 0 and ((self.global_step + 1) % every == 0 or self.trainer.fast_dev_run)

    def _evaluate(self, batch: tuple[torch.Tensor, torch.Tensor], prefix: str) -> torch.Tensor:
        loss, accuracy = self._loss_and_accuracy(batch)
        n = batch[1].shape[0]
        # Epoch means weighted by batch size and summed over ranks: the exact per-sample mean.
        self.log(f"{prefix}/main/loss", loss, on_step=False, on_epoch=True, batch_size=n, sync_dist=True)
        self.log(f"{prefix}/main/accuracy", accuracy, on_step=False, on_epoch=True, batch_size=n, sync_dist=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._evaluate(batch, "validation")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._evaluate(batch, "test")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return make_optimizer(self.hparams.optimizer, self.parameters(), self.hparams.lr)
