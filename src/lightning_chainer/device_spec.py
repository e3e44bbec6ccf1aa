"""Chainer's device specifiers (``-1``, ``0``, ``'@numpy'``, ``'@cupy:0'``) and torch's, as one torch device.

Chainer scripts pass ``--device`` straight to ``Evaluator(device=...)`` and the updater: an int (negative for
the CPU), its string (``'-1'``), ``'@numpy'``, ``'@intel64'``, ``'@cupy:N'`` or a ChainerX name (``'native'``,
``'native:0'``, ``'cuda:0'``). Torch's ``'cpu'``, ``'cuda:0'`` and :class:`torch.device` mean what they mean in
torch. A specifier that names no device of this machine is refused in one sentence when it is parsed.
"""

from __future__ import annotations

from typing import Any

import torch

_FORMS = "-1 or '@numpy' (the CPU), 0 or '@cupy:0' (GPU 0), 'cuda:0', 'cpu' or a torch.device"


def torch_device(spec: Any, owner: str = "torch_device") -> torch.device:
    """The torch device Chainer's (or torch's) device specifier ``spec`` names.

    Args:
        spec: an int, a string of Chainer's or torch's forms, or a :class:`torch.device`.
        owner: the call named in the error, e.g. ``Evaluator`` (``Evaluator(device=...)``).

    Raises:
        ValueError: ``spec`` is no device specifier, or names a CUDA device this machine does not have.
    """
    device = _parse(spec, owner)
    if device.type == "cuda":
        index = 0 if device.index is None else device.index
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if index >= count:
            raise ValueError(
                f"{owner}(device={spec!r}) names CUDA device {index}, but this machine has {count}: "
                "pass -1 or '@numpy' for the CPU, or None for the module's device."
            )
    return device


def _parse(spec: Any, owner: str) -> torch.device:
    if isinstance(spec, torch.device):
        return spec
    if isinstance(spec, bool):
        raise ValueError(f"{owner}(device={spec!r}) is not a device: use {_FORMS}.")
    if isinstance(spec, int):
        return torch.device("cpu") if spec < 0 else torch.device("cuda", spec)
    if isinstance(spec, str):
        text = spec.strip()
        try:
            return _parse(int(text), owner)
        except ValueError:
            pass
        if text in ("@numpy", "@intel64", "native") or text.startswith("native:"):
            return torch.device("cpu")  # NumPy, NumPy with iDeep and ChainerX's native device: the host
        if text.startswith("@cupy:") and text[len("@cupy:") :].isdigit():
            return torch.device("cuda", int(text[len("@cupy:") :]))
        if not text.startswith("@"):
            try:
                return torch.device(text)
            except (RuntimeError, ValueError):
                pass
    raise ValueError(f"{owner}(device={spec!r}) is not a device: use {_FORMS}.")
