"""Classifier: the LightningModule counterpart of ``chainer.links.Classifier``.

It wraps any predictor, computes softmax cross-entropy and accuracy, and reports them under Chainer's
observation names (``main/loss``, ``validation/main/accuracy``, ...), so the Chainer-style extensions, and
TensorBoard through them, see the names a Chainer user knows.
"""

from __future__ import annotations

import copy
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


#: Where a checkpoint holds Lightning's count of the optimizer steps (``trainer.global_step``): by hand, automatic.
MANUAL_PROGRESS = "epoch_loop.manual_optimization.optim_step_progress"
AUTOMATIC_PROGRESS = "epoch_loop.automatic_optimization.optim_progress"


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

    @property
    def automatic_optimization(self) -> bool:
        """False, so that ``training_step`` makes the update itself, unless the Trainer clips or accumulates.

        Lightning's automatic optimization wraps each step in a closure and a dozen hooks, about 0.7 ms a step
        on this project's CPU (docs/performance.md). The Trainer's ``gradient_clip_val`` and
        ``accumulate_grad_batches`` exist only there, so a Trainer given either gets it.
        """
        trainer = self._trainer
        if trainer is None:
            return False
        return bool(trainer.gradient_clip_val) or trainer.accumulate_grad_batches > 1

    @automatic_optimization.setter
    def automatic_optimization(self, value: bool) -> None:
        raise AttributeError("Classifier chooses its optimization from the Trainer's clipping and accumulation.")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.predictor(x)

    def _loss_and_accuracy(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        x, t = batch
        y = self.predictor(x)
        loss = F.cross_entropy(y, t)
        accuracy = (y.detach().argmax(dim=1) == t).float().mean()
        return loss, accuracy

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        """One update, as Chainer's StandardUpdater: forward, zero the gradients, backward, optimizer step.

        ``manual_backward`` goes through Lightning's precision plugin (loss scaling of ``16-mixed``) and strategy
        (DDP's gradient sync), and ``optimizer.step()`` through Lightning's optimizer wrapper, which unscales and
        counts the step (``trainer.global_step``). Under automatic optimization (a Trainer that clips or
        accumulates) Lightning makes the update from the returned loss instead.

        Returns the loss and this step's observation; the Chainer-style extensions read the observation there.
        No ``self.log``: it costs about 0.3 ms of Python a call in Lightning 2.6, a tenth of a LeNet step on a
        CPU, and TensorBoard gets the LogReport's means (TensorBoardReport), not single-batch samples.
        """
        loss, accuracy = self._loss_and_accuracy(batch)
        if self.automatic_optimization:
            return {"loss": loss, "main/loss": loss.detach(), "main/accuracy": accuracy}
        optimizer = self.optimizers()
        optimizer.zero_grad()
        self.manual_backward(loss)
        optimizer.step()
        loss = loss.detach()
        return {"loss": loss, "main/loss": loss, "main/accuracy": accuracy}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Let a checkpoint written under the other kind of optimization resume at its step count.

        Lightning reads ``global_step`` from the progress of the loop in use: the manual one's when the module
        optimizes by hand, the automatic one's otherwise. A checkpoint written under the other kind (one from
        before this module optimized by hand, or one of a run that clipped) holds the count in the other loop's
        progress only; it is copied over when the loop in use has counted nothing.
        """
        loops = checkpoint.get("loops", {}).get("fit_loop")
        if not isinstance(loops, dict) or AUTOMATIC_PROGRESS not in loops or MANUAL_PROGRESS not in loops:
            return
        automatic, manual = loops[AUTOMATIC_PROGRESS]["optimizer"], loops[MANUAL_PROGRESS]
        if self.automatic_optimization:
            if automatic["step"]["total"]["completed"] == 0 and manual["total"]["completed"] > 0:
                automatic["step"] = copy.deepcopy(manual)
        elif manual["total"]["completed"] == 0 and automatic["step"]["total"]["completed"] > 0:
            loops[MANUAL_PROGRESS] = copy.deepcopy(automatic["step"])

    def _evaluate(self, batch: tuple[torch.Tensor, torch.Tensor], prefix: str) -> torch.Tensor:
        loss, accuracy = self._loss_and_accuracy(batch)
        n = batch[1].shape[0]
        # Epoch means weighted by batch size and summed over ranks: the exact per-sample mean. Validation values
        # stay off Lightning's logger, which would write them at its 0-based step: TensorBoard gets the log's
        # entries (TensorBoardReport). Test values go to it, so that trainer.test returns them.
        options = dict(on_step=False, on_epoch=True, batch_size=n, sync_dist=True, logger=prefix != "validation")
        self.log(f"{prefix}/main/loss", loss, **options)
        self.log(f"{prefix}/main/accuracy", accuracy, **options)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._evaluate(batch, "validation")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._evaluate(batch, "test")

    def predict_step(
        self, batch: torch.Tensor | Sequence[torch.Tensor], batch_idx: int, dataloader_idx: int = 0
    ) -> dict[str, torch.Tensor]:
        """The classes and softmax probabilities of a batch of inputs, or of ``(inputs, labels)``.

        ``predictions`` is the argmax of the logits, as the accuracy of ``test_step`` counts it, so the share of
        predictions equal to the labels is the test accuracy.

        Args:
            batch: float inputs (N, C, H, W) as the data module serves them, or a sequence whose first item they
                are and whose second (when there is one) holds the labels.
            batch_idx: the batch's index in the loader.
            dataloader_idx: the loader's index, when several are given.

        Returns:
            ``predictions`` (N,) int64, ``probabilities`` (N, classes) float, and ``labels`` when the batch has them.
        """
        x = batch if isinstance(batch, torch.Tensor) else batch[0]
        logits = self.predictor(x)
        outputs = {"predictions": logits.argmax(dim=1), "probabilities": logits.softmax(dim=1)}
        if not isinstance(batch, torch.Tensor) and len(batch) > 1:
            outputs["labels"] = batch[1]
        return outputs

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return make_optimizer(self.hparams.optimizer, self.parameters(), self.hparams.lr)
