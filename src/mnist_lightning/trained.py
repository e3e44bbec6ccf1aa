"""A trained model for prediction: a snapshot or a model file -> the model in eval mode and how to feed it.

Two kinds of file hold a trained model (docs/predict.md lists what each must hold):

- a **snapshot** (``snapshot_iter_<iteration>``): the complete Lightning checkpoint the training command writes
  every epoch, with the Classifier's and the DataModule's hyper-parameters;
- a **model file**: the predictor's ``state_dict`` with the description of its model and data, the dict
  :func:`model_file_contents` returns, as ``snapshot_object`` writes it (``model_best``).

:func:`load_trained` reads either with ``torch.load(weights_only=True)``, rebuilds the model from the file alone and
returns it with its :class:`~mnist_lightning.pixels.Preprocessing`; anything else is refused in one sentence.
"""

from __future__ import annotations

import os
import stat
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from lightning_chainer.extensions import find_latest_snapshot
from mnist_lightning.checks import display
from mnist_lightning.classifier import OPTIMIZERS, Classifier
from mnist_lightning.datasets import DATASETS
from mnist_lightning.models import MNIST_CLASSES, MNIST_INPUT_SHAPE, MODELS
from mnist_lightning.pixels import Preprocessing
from mnist_lightning.resume import ResumeError, Snapshot, check_weights

#: The value of a model file's ``format`` key: what tells it from any other dict of tensors.
MODEL_FORMAT = "mnist_lightning.model/1"
SNAPSHOT, MODEL_FILE = "snapshot", "model file"
_PREFIX = "predictor."


class TrainedModelError(ValueError):
    """The file is not a snapshot or model file this project can predict with; the message is one sentence."""


@dataclass(frozen=True)
class TrainedModel:
    """A trained model ready to predict: the Classifier in eval mode, its preprocessing, and where it came from.

    Args:
        model: the Classifier, in eval mode, on the device asked for.
        preprocessing: the data set, input shape, class names and normalisation it was trained with.
        path: the file it was loaded from.
        kind: ``"snapshot"`` or ``"model file"``.
    """

    model: Classifier
    preprocessing: Preprocessing
    path: str
    kind: str

    @property
    def predictor(self) -> nn.Module:
        """The bare predictor (logits from inputs), e.g. for an export."""
        return self.model.predictor


def model_file_contents(model: Classifier, dataset: str, normalize: bool) -> dict[str, Any]:
    """What a model file holds: the predictor's weights with its model's and its data's description.

    ``torch.save`` it (``snapshot_object`` does, with a target whose ``state_dict()`` returns this dict) and
    :func:`load_trained` reads it back; every value is a plain type or a tensor, so ``weights_only`` loads it.

    Args:
        model: the trained Classifier, with a predictor built by name.
        dataset: the ``--dataset`` name it was trained on.
        normalize: whether it was trained on normalised pixels (``--normalize``).
    """
    return {
        "format": MODEL_FORMAT,
        "state_dict": dict(model.predictor.state_dict()),
        "hyper_parameters": dict(model.hparams),
        "datamodule_hyper_parameters": {"dataset": dataset, "normalize": bool(normalize)},
    }


def load_trained(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> TrainedModel:
    """The trained model in ``path`` (a snapshot or a model file), in eval mode, with its preprocessing.

    Everything comes from the file: the model and its size, the data set (hence the input shape and the class
    names) and whether the pixels were normalised. The file is read with ``torch.load(weights_only=True)``.

    Args:
        path: a ``snapshot_iter_<iteration>`` of the training command, or a model file
            (:func:`model_file_contents`).
        map_location: the device the model is put on.

    Raises:
        TrainedModelError: in one sentence, for a missing or unreadable path, a folder, a file of another kind
            (another module's checkpoint, bare weights, a Chainer ``.npz``, random bytes), or weights that do not
            fit the model the file describes.
    """
    where = display(os.fspath(path))
    contents = _read(os.fspath(path), where)
    kind, weights, hparams, data = _parts(contents, where)
    preprocessing = _preprocessing(hparams, data, where, required=kind == MODEL_FILE)
    model = _build(hparams, preprocessing, where)
    target = model if kind == SNAPSHOT else model.predictor
    try:
        check_weights(Snapshot(where, {"state_dict": weights}, hparams, data), target, flag=kind)
    except ResumeError as error:
        raise TrainedModelError(str(error)) from None
    target.load_state_dict(weights)
    return TrainedModel(model.eval().to(map_location), preprocessing, os.fspath(path), kind)


def _read(path: str, where: str) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU, or one sentence saying why the file is not readable."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise TrainedModelError(f"{where}: no such file.") from None
    except OSError as error:
        raise TrainedModelError(f"{where} cannot be looked up ({error.strerror}).") from None
    if stat.S_ISDIR(mode):
        try:
            latest = find_latest_snapshot(path)
        except OSError:
            latest = None
        hint = f", such as {display(latest)}" if latest else ""
        raise TrainedModelError(f"{where} is a folder: give a snapshot or model file{hint}.")
    if not stat.S_ISREG(mode):  # opening a FIFO would wait for a writer forever
        raise TrainedModelError(f"{where} is not a regular file.")
    if not os.access(path, os.R_OK):
        raise TrainedModelError(f"{where} is not readable (permission denied).")
    if _is_npz(path):
        raise TrainedModelError(
            f"{where} is a NumPy .npz (a Chainer snapshot or a weights file), not a snapshot or model file of "
            "this project: predict with a snapshot_iter_* of train.py."
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        raise TrainedModelError(
            f"{where} is not a snapshot or model file (torch.load with weights_only could not read it)."
        ) from None


def _is_npz(path: str) -> bool:
    """Whether ``path`` is a zip of ``.npy`` arrays (NumPy's ``savez``, Chainer's ``save_npz``)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return bool(names) and all(name.endswith(".npy") for name in names)


def _parts(contents: Any, where: str) -> tuple[str, dict[str, Any], dict[str, Any], dict[str, Any] | None]:
    """(kind, the weights to load, the model's hyper-parameters, the data's or None) of a loaded file."""
    if not isinstance(contents, Mapping):
        raise TrainedModelError(f"{where} holds a {type(contents).__name__}, not a snapshot or model file.")
    weights = contents.get("state_dict")
    if "pytorch-lightning_version" in contents and isinstance(weights, Mapping):
        kind = SNAPSHOT
    elif contents.get("format") == MODEL_FORMAT and isinstance(weights, Mapping):
        kind = MODEL_FILE
    elif contents and all(isinstance(value, torch.Tensor) for value in contents.values()):
        raise TrainedModelError(
            f"{where} holds bare weights (a state_dict) that do not say which model and data they belong to: "
            f"predict with a snapshot, or with a model file that holds format {MODEL_FORMAT!r} (docs/predict.md)."
        )
    else:
        raise TrainedModelError(f"{where} is neither a snapshot of train.py nor a model file (docs/predict.md).")
    hparams = contents.get("hyper_parameters")
    if not isinstance(hparams, Mapping) or "predictor" not in hparams:
        raise TrainedModelError(f"{where} is a {kind} of another module: its hyper-parameters name no predictor.")
    data = contents.get("datamodule_hyper_parameters")
    return kind, dict(weights), dict(hparams), dict(data) if isinstance(data, Mapping) else None


def _preprocessing(hparams: dict[str, Any], data: dict[str, Any] | None, where: str, required: bool) -> Preprocessing:
    """The data set and normalisation the file records, checked against the input shape and classes of its model.

    A snapshot's data hyper-parameters without ``dataset`` or ``normalize`` mean the defaults (MNIST, pixels in
    [0, 1]), as on resume; a model file must hold both.
    """
    if data is None:
        raise TrainedModelError(
            f"{where} holds no data module hyper-parameters, so the data set and the normalisation it was trained "
            "with are unknown."
        )
    if required and not {"dataset", "normalize"} <= set(data):
        raise TrainedModelError(f"{where} does not say its dataset and normalize (docs/predict.md).")
    dataset = data.get("dataset", "mnist")
    if dataset not in DATASETS:
        raise TrainedModelError(
            f"{where} was trained on dataset {dataset!r}, which is not one of {', '.join(DATASETS)}."
        )
    preprocessing = Preprocessing.of_dataset(dataset, bool(data.get("normalize", False)))
    # Hyper-parameters without these keys were written for MNIST, as Classifier reads them.
    shape = hparams.get("input_shape") or MNIST_INPUT_SHAPE
    shape = tuple(shape) if isinstance(shape, (list, tuple)) else shape
    classes = hparams.get("n_classes", MNIST_CLASSES)
    if shape != preprocessing.input_shape or classes != len(preprocessing.class_names):
        raise TrainedModelError(
            f"{where} holds a model for inputs {shape} and {classes} classes, but {dataset} has "
            f"{preprocessing.input_shape} and {len(preprocessing.class_names)}."
        )
    return preprocessing


def _build(hparams: dict[str, Any], preprocessing: Preprocessing, where: str) -> Classifier:
    """The Classifier the hyper-parameters describe, its weights still fresh."""
    name = hparams["predictor"]
    if name is None:
        raise TrainedModelError(
            f"{where} was trained with a predictor module of your own: load it with "
            "Classifier.load_from_checkpoint(path, predictor=YourNet())."
        )
    if not isinstance(name, str) or name not in MODELS:
        raise TrainedModelError(f"{where} holds a model {name!r}, which is not one of {', '.join(MODELS)}.")
    # The optimizer plays no part in predicting; an unknown one (a project of yours) is not a reason to refuse.
    optimizer = hparams.get("optimizer")
    try:
        return Classifier(
            name,
            n_units=int(hparams.get("n_units", 100)),
            optimizer=optimizer if isinstance(optimizer, str) and optimizer in OPTIMIZERS else "adam",
            lr=hparams.get("lr"),
            input_shape=preprocessing.input_shape,
            n_classes=len(preprocessing.class_names),
        )
    except (TypeError, ValueError, RuntimeError, MemoryError) as error:
        raise TrainedModelError(f"{where}: its hyper-parameters do not build a {name} ({error}).") from None
