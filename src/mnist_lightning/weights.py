"""Framework-neutral initial weights: a predictor's parameters in one ``.npz`` that PyTorch and Chainer both read.

Schema (version 1), written by :func:`write_arrays` and checked by :func:`read_arrays`:

- ``format``: the string ``mnist-lightning-weights/1``;
- ``model``: ``lenet`` or ``mlp``; ``n_units``: the MLP's hidden width (recorded for LeNet too, checked only for
  the MLP, whose shapes depend on it);
- ``layer{i}/W`` and ``layer{i}/b`` (float32) for the i-th layer with parameters, in forward order:
  LeNet: conv1 (6,1,5,5), conv2 (16,6,5,5), fc (120,256), fc (64,120), fc (10,64);
  MLP: fc (n,784), fc (n,n), fc (10,n).

Both frameworks store a convolution's W as (out, in, kh, kw) and a linear layer's W as (out, in), and both flatten
LeNet's (N, 16, 4, 4) feature map in C order (NCHW), so the arrays are copied as they are, with no transposes.

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
MODELS = ("lenet", "mlp")

Layer = tuple[np.ndarray, np.ndarray]


class WeightsError(ValueError):
    """A weights file that is missing, not in this schema, or made for another model; the message is one sentence."""


def layer_shapes(model: str, n_units: int) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """The (W shape, b shape) of each layer of ``model`` in the schema's order."""
    if model == "lenet":
        return [
            ((6, 1, 5, 5), (6,)),
            ((16, 6, 5, 5), (16,)),
            ((120, 256), (120,)),
            ((64, 120), (64,)),
            ((10, 64), (10,)),
        ]
    if model == "mlp":
        return [((n_units, 784), (n_units,)), ((n_units, n_units), (n_units,)), ((10, n_units), (10,))]
    raise WeightsError(f"unknown model {model!r}: choose one of {', '.join(MODELS)}.")


def _check_shapes(path: str | os.PathLike, model: str, n_units: int, layers: Sequence[Layer]) -> None:
    expected = layer_shapes(model, n_units)
    if len(layers) != len(expected):
        raise WeightsError(f"{path}: {model} has {len(expected)} layers with parameters, got {len(layers)}.")
    for i, ((w, b), (w_shape, b_shape)) in enumerate(zip(layers, expected, strict=True)):
        for name, array, shape in (("W", w, w_shape), ("b", b, b_shape)):
            if tuple(array.shape) != shape:
                raise WeightsError(
                    f"{path}: layer{i}/{name} has shape {tuple(array.shape)}, but {model} needs {shape}."
                )


def _schema_arrays(path: str | os.PathLike, model: str, n_units: int, layers: Sequence[Layer]) -> dict[str, np.ndarray]:
    """The arrays of the file, by name, after checking ``layers`` against the model's shapes."""
    _check_shapes(path, model, n_units, layers)
    arrays: dict[str, np.ndarray] = {
        "format": np.array(FORMAT),
        "model": np.array(model),
        "n_units": np.array(n_units, dtype=np.int64),
    }
    for i, (w, b) in enumerate(layers):
        arrays[f"layer{i}/W"] = np.asarray(w, dtype=np.float32)
        arrays[f"layer{i}/b"] = np.asarray(b, dtype=np.float32)
    return arrays


def write_arrays(path: str | os.PathLike, model: str, n_units: int, layers: Sequence[Layer]) -> None:
    """Write ``layers`` ((W, b) per layer, schema order) to ``path`` atomically: a temp file, then os.replace."""
    arrays = _schema_arrays(path, model, n_units, layers)
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


def read_arrays(path: str | os.PathLike, model: str, n_units: int) -> list[Layer]:
    """The (W, b) float32 arrays in ``path``, after checking the schema, the model name, n_units and every shape."""
    if not os.path.isfile(path):
        raise WeightsError(f"{path}: no such weights file.")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except Exception:
        raise WeightsError(f"{path} is not a NumPy .npz file.") from None
    if "format" not in arrays or str(arrays["format"]) != FORMAT:
        raise WeightsError(f"{path} is not an mnist-lightning weights file (no format {FORMAT!r} in it).")
    saved_model = str(arrays.get("model"))
    if saved_model != model:
        raise WeightsError(f"{path} holds weights of model {saved_model!r}, not {model!r}.")
    saved_units = int(arrays.get("n_units", -1))
    if model == "mlp" and saved_units != n_units:
        raise WeightsError(f"{path} holds weights of an MLP with {saved_units} units, not {n_units}.")
    n_layers = len(layer_shapes(model, n_units))
    missing = [k for i in range(n_layers) for k in (f"layer{i}/W", f"layer{i}/b") if k not in arrays]
    if missing:
        raise WeightsError(f"{path} lacks the arrays {', '.join(missing)}.")
    layers = [(arrays[f"layer{i}/W"], arrays[f"layer{i}/b"]) for i in range(n_layers)]
    _check_shapes(path, model, n_units, layers)
    return [(w.astype(np.float32), b.astype(np.float32)) for w, b in layers]


def torch_layers(predictor: nn.Module) -> list[nn.Module]:
    """The predictor's Conv2d and Linear modules in registration (= forward) order: the schema's layer order."""
    from torch import nn

    return [m for m in predictor.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def save_npz(predictor: nn.Module, path: str | os.PathLike, model: str, n_units: int) -> None:
    """Write a torch predictor's parameters to ``path`` in the schema above (what ``--export-init`` calls).

    The file is written as the extensions write theirs: a temp file beside it, fsync, then ``os.replace``.

    Args:
        predictor: the LeNet or MLP whose Conv2d and Linear layers are saved.
        path: the ``.npz`` to write; its folder is made when missing.
        model: ``lenet`` or ``mlp``, recorded in the file.
        n_units: the MLP's hidden width, recorded in the file.

    Raises:
        WriteError: the file could not be written; the temp file is removed and an existing file is kept.
    """
    # The extensions' writer imports torch and Lightning; the NumPy-only side above must not.
    from lightning_chainer.files import atomic_write

    layers = [
        (layer.weight.detach().cpu().numpy(), layer.bias.detach().cpu().numpy()) for layer in torch_layers(predictor)
    ]
    buffer = io.BytesIO()
    np.savez(buffer, **_schema_arrays(path, model, n_units, layers))
    atomic_write(path, buffer.getbuffer())


def load_npz(predictor: nn.Module, path: str | os.PathLike, model: str, n_units: int) -> None:
    """Copy the weights in ``path`` into a torch predictor in place (what ``--init-from`` calls).

    Raises WeightsError, before changing any parameter, when the file does not fit the predictor.
    """
    import torch

    layers = torch_layers(predictor)
    arrays = read_arrays(path, model, n_units)
    if len(layers) != len(arrays):
        raise WeightsError(f"{path}: the predictor has {len(layers)} layers with parameters, the file {len(arrays)}.")
    for layer, (w, b) in zip(layers, arrays, strict=True):
        if tuple(layer.weight.shape) != w.shape or tuple(layer.bias.shape) != b.shape:
            raise WeightsError(f"{path}: shapes {w.shape} and {b.shape} do not fit the predictor's {layer}.")
    with torch.no_grad():
        for layer, (w, b) in zip(layers, arrays, strict=True):
            layer.weight.copy_(torch.from_numpy(w))
            layer.bias.copy_(torch.from_numpy(b))
