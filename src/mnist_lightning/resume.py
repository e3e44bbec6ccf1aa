"""Checks of a snapshot before a run resumes from it: is it one of ours, and do the flags agree with it?

Everything here reads the checkpoint file once, before any folder is made or any step is trained, so a snapshot
that cannot be resumed ends the run in one sentence rather than in a traceback an epoch later.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from typing import Any

import torch
from lightning.pytorch.callbacks import Callback
from torch import nn


class ResumeError(ValueError):
    """The snapshot cannot be resumed with these flags; the message is one sentence for the user."""


@dataclass
class Snapshot:
    """What a resume needs to know of a checkpoint file."""

    path: str
    checkpoint: dict[str, Any]
    hparams: dict[str, Any]
    data_hparams: dict[str, Any]

    @property
    def epochs_done(self) -> int:
        """Completed epochs: an epoch whose last batch was trained counts, though Lightning closes it after the save."""
        loop = self.checkpoint.get("loops", {}).get("fit_loop", {})
        completed = int(loop.get("epoch_progress", {}).get("current", {}).get("completed", 0))
        last_batch = bool(loop.get("epoch_loop.batch_progress", {}).get("is_last_batch", False))
        return completed + (1 if last_batch else 0)

    @property
    def learning_rate(self) -> float | None:
        """The first param group's learning rate in the optimizer state, or None when there is none."""
        states = self.checkpoint.get("optimizer_states") or [{}]
        groups = states[0].get("param_groups") if isinstance(states[0], dict) else None
        return float(groups[0]["lr"]) if groups and "lr" in groups[0] else None


def read_snapshot(path: str, flag: str = "--resume") -> Snapshot:
    """Load ``path`` (weights only) and check that it is a complete Lightning checkpoint of a LightningModule.

    Args:
        path: the checkpoint file.
        flag: how the message names where the path came from (``--resume``, ``--autoload picked``).
    """
    where = f"{flag} {path}"
    if not os.path.exists(path):
        raise ResumeError(f"{where}: no such file.")
    if not os.path.isfile(path):
        raise ResumeError(f"{where} is not a regular file.")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except PermissionError:
        raise ResumeError(f"{where} is not readable (permission denied).") from None
    except Exception:
        raise ResumeError(f"{where}: not a Lightning checkpoint (torch.load could not read it).") from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        raise ResumeError(f"{where}: not a Lightning checkpoint (it holds no state_dict).")
    missing = [k for k in ("pytorch-lightning_version", "loops", "optimizer_states") if k not in checkpoint]
    if missing:
        raise ResumeError(f"{where}: not a complete Lightning checkpoint (it has no {', '.join(missing)}).")
    hparams = checkpoint.get("hyper_parameters", {})
    data_hparams = checkpoint.get("datamodule_hyper_parameters", {})
    if not isinstance(hparams, dict) or not isinstance(data_hparams, dict):
        raise ResumeError(f"{where}: its hyper-parameters are not a dict, so it was not written by this template.")
    return Snapshot(path, checkpoint, dict(hparams), dict(data_hparams))


def check_weights(snapshot: Snapshot, model: nn.Module, flag: str = "--resume") -> None:
    """Refuse a snapshot whose weights do not fit ``model`` (missing or extra keys, other shapes)."""
    saved = snapshot.checkpoint["state_dict"]
    expected = model.state_dict()
    where = f"{flag} {snapshot.path}"
    missing = [k for k in expected if k not in saved]
    extra = [k for k in saved if k not in expected]
    if missing or extra:
        keys = ", ".join((missing or extra)[:3])
        which = "lacks the weights" if missing else "holds weights the model does not have"
        raise ResumeError(f"{where} {which} {keys}: it is a checkpoint of another model.")
    for key, tensor in expected.items():
        value = saved[key]
        if not isinstance(value, torch.Tensor) or value.shape != tensor.shape:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ResumeError(f"{where} holds {key} of shape {shape}, the model expects {tuple(tensor.shape)}.")


def check_flags(snapshot: Snapshot, args: argparse.Namespace, flag: str = "--resume") -> None:
    """Refuse flags that would change what the snapshot's training means (model, optimizer, data, split, batch)."""
    where = f"{flag} {snapshot.path}"
    hparams, data = snapshot.hparams, snapshot.data_hparams
    model = hparams.get("predictor")
    if model != args.model:
        raise ResumeError(f"{where} is a snapshot of model {model!r}, not --model {args.model}.")
    if args.model == "mlp" and hparams.get("n_units") != args.unit:
        raise ResumeError(
            f"{where} is a snapshot of an MLP with {hparams.get('n_units')} units, not --unit {args.unit}."
        )
    if hparams.get("optimizer", args.optimizer) != args.optimizer:
        raise ResumeError(
            f"{where} was trained with --optimizer {hparams['optimizer']}, whose state cannot continue as "
            f"{args.optimizer}: resume with --optimizer {hparams['optimizer']}."
        )
    if data.get("seed", args.seed) != args.seed:
        raise ResumeError(
            f"{where} was trained with --seed {data['seed']}, and another seed moves training images into the "
            f"validation set: resume with --seed {data['seed']}."
        )
    if data.get("batch_size", args.batchsize) != args.batchsize:
        raise ResumeError(
            f"{where} was trained with -b {data['batch_size']}, and another batch size changes what an iteration "
            f"and an epoch are: resume with -b {data['batch_size']}."
        )
    # Hyper-parameters without these keys mean the defaults: MNIST, validated on the seeded split.
    dataset = data.get("dataset", "mnist")
    if dataset != args.dataset:
        raise ResumeError(
            f"{where} was trained on --dataset {dataset}, and its weights mean nothing for {args.dataset}: "
            f"resume with --dataset {dataset}."
        )
    validation = data.get("validation", "split")
    if validation != args.validation:
        raise ResumeError(
            f"{where} was trained with --validation {validation}, and another choice changes which images train "
            f"and which validate: resume with --validation {validation}."
        )
    normalized = bool(data.get("normalize", False))
    if normalized != args.normalize:
        trained = "normalised pixels" if normalized else "pixels in [0, 1]"
        raise ResumeError(f"{where} was trained on {trained}: {'add' if normalized else 'drop'} --normalize.")
    if snapshot.epochs_done >= args.epoch:
        raise ResumeError(
            f"nothing left to train: {snapshot.path} already holds {snapshot.epochs_done} epochs and -e is "
            f"{args.epoch}; give a larger -e to train on."
        )


class SetLearningRate(Callback):
    """After a resume restored the optimizer, set every param group's learning rate to ``lr`` (``--lr`` on resume).

    Args:
        lr: the learning rate to train on with.
    """

    def __init__(self, lr: float) -> None:
        self.lr = lr

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        for optimizer in trainer.optimizers:
            for group in optimizer.param_groups:
                group["lr"] = self.lr
