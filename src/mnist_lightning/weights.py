"""Framework-neutral initial weights: a predictor's parameters in one ``.npz`` that PyTorch and Chainer both read.

Schema (version 1), written by :func:`write_arrays` and checked by :func:`read_arrays`:

- ``format``: the string ``mnist-lightning-weights/1``;
- ``model``: the predictor's registry name (``lenet``, ``mlp``, ...); ``n_units``: the hidden width it was built
  with (recorded for every model; it only matters through the shapes it decides, as for the MLP);
- ``input_shape``: (C, H, W) of one example (int64); ``n_classes``: the number of logits (int64). A file without
  them was made for MNIST: (1, 28, 28) and 10;
- ``layer{i}/W`` and ``layer{i}/b`` (float32) for the i-th layer with parameters, in forward order. The layers are
  read off the module (:func:`torch_layers`), so any registered model made of such layers has one; for MNIST:
  LeNet: conv1 (6,1,5,5), conv2 (16,6,5,5), fc (120,256), fc (64,120), fc (10,64);
  MLP: fc (n,784), fc (n,n), fc (10,n).

Both frameworks store a convolution's W as (out, in, kh, kw) and a linear layer's W as (out, in), and both flatten
a feature map in C order (NCHW), so the arrays are copied as they are, with no transposes.

The array functions need NumPy only (the Chainer script uses them); ``save_npz``/``load_npz`` add the torch side.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from torch import nn

FORMAT = "mnist-lightning-weights/1"
#: What a file without ``input_shape``/``n_classes`` was made for: MNIST.
DEFAULT_INPUT_SHAPE: tuple[int, int, int] = (1, 28, 28)
DEFAULT_CLASSES = 10

Layer = tuple[np.ndarray, np.ndarray]
Shapes = Sequence[tuple[tuple[int, ...], tuple[int, ...]]]


class WeightsError(ValueError):
    """A weights file that is missing, not in this schema, or made for another model; the message is one sentence."""


def _check_shapes(path: str | os.PathLike, model: str, layers: Sequence[Layer], shapes: Shapes) -> None:
    if len(layers) != len(shapes):
        raise WeightsError(f"{path}: {model} has {len(shapes)} layers with parameters, got {len(layers)}.")
    for i, ((w, b), (w_shape, b_shape)) in enumerate(zip(layers, shapes, strict=True)):
        for name, array, shape in (("W", w, tuple(w_shape)), ("b", b, tuple(b_shape))):
            if tuple(array.shape) != shape:
                raise WeightsError(
                    f"{path}: layer{i}/{name} has shape {tuple(array.shape)}, but {model} needs {shape}."
                )


def _schema_arrays(
    path: str | os.PathLike,
    model: str,
    n_units: int,
    layers: Sequence[Layer],
    input_shape: Sequence[int],
    n_classes: int,
    shapes: Shapes | None,
) -> dict[str, np.ndarray]:
    """The arrays of the file, by name, after checking ``layers`` against ``shapes`` when given."""
    if shapes is not None:
        _check_shapes(path, model, layers, shapes)
    arrays: dict[str, np.ndarray] = {
        "format": np.array(FORMAT),
        "model": np.array(model),
        "n_units": np.array(n_units, dtype=np.int64),
        "input_shape": np.array(tuple(input_shape), dtype=np.int64),
        "n_classes": np.array(n_classes, dtype=np.int64),
    }
    for i, (w, b) in enumerate(layers):
        arrays[f"layer{i}/W"] = np.asarray(w, dtype=np.float32)
        arrays[f"layer{i}/b"] = np.asarray(b, dtype=np.float32)
    return arrays


def write_arrays(
    path: str | os.PathLike,
    model: str,
    n_units: int,
    layers: Sequence[Layer],
    *,
    input_shape: Sequence[int] = DEFAULT_INPUT_SHAPE,
    n_classes: int = DEFAULT_CLASSES,
    shapes: Shapes | None = None,
) -> None:
    """Write ``layers`` to ``path`` atomically: a temp file, then os.replace.

    Args:
        path: the ``.npz`` to write; its folder is made when missing.
        model: the predictor's registry name.
        n_units: the hidden width the predictor was built with.
        layers: (W, b) of each layer with parameters, in forward order.
        input_shape: (C, H, W) of one example.
        n_classes: the number of logits.
        shapes: the (W shape, b shape) the model needs per layer; given, ``layers`` are checked against them.
    """
    arrays = _schema_arrays(path, model, n_units, layers, input_shape, n_classes, shapes)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every array of the file at ``path``, after checking that it is one of ours."""
    if not os.path.isfile(path):
        raise WeightsError(f"{path}: no such weights file.")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except Exception:
        raise WeightsError(f"{path} is not a NumPy .npz file.") from None
    if "format" not in arrays or str(arrays["format"]) != FORMAT:
        raise WeightsError(f"{path} is not an mnist-lightning weights file (no format {FORMAT!r} in it).")
    return arrays


def _file_layers(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> list[Layer]:
    """The file's (W, b) pairs ``layer0``, ``layer1``, ... up to the first index with neither array."""
    count = 0
    while f"layer{count}/W" in arrays or f"layer{count}/b" in arrays:
        count += 1
    keys = [(f"layer{i}/W", f"layer{i}/b") for i in range(count)]
    missing = [key for pair in keys for key in pair if key not in arrays]
    if missing:
        raise WeightsError(f"{path} lacks the arrays {', '.join(missing)}.")
    return [(arrays[w], arrays[b]) for w, b in keys]


def _fits(layers: Sequence[Layer], shapes: Shapes) -> bool:
    """Whether every layer has the shapes given for it, and there are as many layers as shapes."""
    return len(layers) == len(shapes) and all(
        (tuple(w.shape), tuple(b.shape)) == (tuple(ws), tuple(bs))
        for (w, b), (ws, bs) in zip(layers, shapes, strict=True)
    )


def read_arrays(
    path: str | os.PathLike,
    model: str,
    n_units: int,
    *,
    input_shape: Sequence[int] = DEFAULT_INPUT_SHAPE,
    n_classes: int = DEFAULT_CLASSES,
    shapes: Shapes | None = None,
) -> list[Layer]:
    """The (W, b) float32 arrays in ``path``, after checking that they were made for this model and these inputs.

    The schema, the model name, the input shape and the class count must match. With ``shapes``, every layer must
    have them, and a recorded ``n_units`` other than ``n_units`` is named as the reason when they do not; without
    ``shapes``, ``n_units`` itself must match.

    Args:
        path: the ``.npz`` to read.
        model: the predictor's registry name.
        n_units: the hidden width of the predictor to fill.
        input_shape: (C, H, W) of the predictor's examples.
        n_classes: the predictor's number of logits.
        shapes: the (W shape, b shape) of each layer of the predictor, in forward order.
    """
    arrays = _load(path)
    saved_model = str(arrays.get("model"))
    if saved_model != model:
        raise WeightsError(f"{path} holds weights of model {saved_model!r}, not {model!r}.")
    saved_shape = tuple(int(d) for d in np.atleast_1d(arrays.get("input_shape", DEFAULT_INPUT_SHAPE)))
    expected_shape = tuple(int(d) for d in input_shape)
    if saved_shape != expected_shape:
        raise WeightsError(f"{path} holds weights for inputs of shape {saved_shape}, not {expected_shape}.")
    saved_classes = int(arrays.get("n_classes", DEFAULT_CLASSES))
    if saved_classes != n_classes:
        raise WeightsError(f"{path} holds weights for {saved_classes} classes, not {n_classes}.")
    layers = _file_layers(path, arrays)
    fits = shapes is not None and _fits(layers, shapes)
    saved_units = int(arrays.get("n_units", -1))
    if saved_units != n_units and not fits:
        raise WeightsError(f"{path} holds weights of model {model!r} with {saved_units} units, not {n_units}.")
    if shapes is not None:
        _check_shapes(path, model, layers, shapes)
    return [(w.astype(np.float32), b.astype(np.float32)) for w, b in layers]


def torch_layers(predictor: nn.Module) -> list[nn.Module]:
    """The predictor's layers with parameters, in registration (= forward) order: the schema's layer order.

    A layer is a module that holds a ``weight`` and a ``bias`` parameter itself (Conv2d, Linear, ...). A predictor
    with a parameter outside such layers (a layer without bias, a bare ``nn.Parameter``) has no schema: WeightsError.

    Args:
        predictor: the module whose layers are listed.
    """
    from torch import nn

    layers = [
        m
        for m in predictor.modules()
        if isinstance(getattr(m, "weight", None), nn.Parameter) and isinstance(getattr(m, "bias", None), nn.Parameter)
    ]
    covered = {id(p) for layer in layers for p in (layer.weight, layer.bias)}
    stray = [name for name, p in predictor.named_parameters() if id(p) not in covered]
    if stray:
        raise WeightsError(
            f"the predictor's parameters {', '.join(stray[:3])} are not the weight and bias of one layer, "
            "so the weights file cannot hold them."
        )
    return layers


def layer_shapes(predictor: nn.Module) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """The (W shape, b shape) of each of the predictor's layers, in the schema's order.

    Args:
        predictor: the module whose layers are measured.
    """
    return [(tuple(layer.weight.shape), tuple(layer.bias.shape)) for layer in torch_layers(predictor)]


def save_npz(
    predictor: nn.Module,
    path: str | os.PathLike,
    model: str,
    n_units: int,
    *,
    input_shape: Sequence[int] = DEFAULT_INPUT_SHAPE,
    n_classes: int = DEFAULT_CLASSES,
) -> None:
    """Write a torch predictor's parameters to ``path`` in the schema above (what ``--export-init`` calls).

    The file is written as the extensions write theirs: a temp file beside it, fsync, then ``os.replace``.

    Args:
        predictor: the module whose layers (:func:`torch_layers`) are saved.
        path: the ``.npz`` to write; its folder is made when missing.
        model: the predictor's registry name, recorded in the file.
        n_units: the hidden width it was built with, recorded in the file.
        input_shape: (C, H, W) of its examples, recorded in the file.
        n_classes: its number of logits, recorded in the file.

    Raises:
        WriteError: the file could not be written; the temp file is removed and an existing file is kept.
    """
    # The extensions' writer imports torch and Lightning; the NumPy-only side above must not.
    from lightning_chainer.files import atomic_write

    layers = [
        (layer.weight.detach().cpu().numpy(), layer.bias.detach().cpu().numpy()) for layer in torch_layers(predictor)
    ]
    buffer = io.BytesIO()
    np.savez(buffer, **_schema_arrays(path, model, n_units, layers, input_shape, n_classes, None))
    atomic_write(path, buffer.getbuffer())


def load_npz(
    predictor: nn.Module,
    path: str | os.PathLike,
    model: str,
    n_units: int,
    *,
    input_shape: Sequence[int] = DEFAULT_INPUT_SHAPE,
    n_classes: int = DEFAULT_CLASSES,
) -> None:
    """Copy the weights in ``path`` into a torch predictor in place (what ``--init-from`` calls).

    Args:
        predictor: the module to fill; its layers' shapes are what the file must hold.
        path: the ``.npz`` to read.
        model: the predictor's registry name.
        n_units: the hidden width it was built with.
        input_shape: (C, H, W) of its examples.
        n_classes: its number of logits.

    Raises:
        WeightsError: before any parameter changes, when the file does not fit the predictor.
    """
    import torch

    layers = torch_layers(predictor)
    shapes = [(tuple(layer.weight.shape), tuple(layer.bias.shape)) for layer in layers]
    arrays = read_arrays(path, model, n_units, input_shape=input_shape, n_classes=n_classes, shapes=shapes)
    with torch.no_grad():
        for layer, (w, b) in zip(layers, arrays, strict=True):
            layer.weight.copy_(torch.from_numpy(w))
            layer.bias.copy_(torch.from_numpy(b))
