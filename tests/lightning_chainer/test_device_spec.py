"""Chainer's device specifiers name the device Chainer's ``backend.get_device`` names; torch's mean torch's."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from lightning_chainer.device_spec import torch_device

CHAINER_HOST = [-1, "-1", "@numpy", -3]
CHAINER_GPU = [0, "0", "@cupy:0", 1, "@cupy:1"]


@pytest.mark.parametrize("spec", CHAINER_HOST)
def test_chainers_host_specifiers_are_the_cpu(spec: Any) -> None:
    from mnist_lightning.chainer_compat import import_chainer

    chainer = import_chainer()
    import numpy as np

    assert chainer.backend.get_device(spec).xp is np
    assert torch_device(spec) == torch.device("cpu")


@pytest.mark.parametrize("spec", CHAINER_GPU)
def test_chainers_gpu_specifiers_are_that_cuda_device_or_refused_in_one_sentence(spec: Any) -> None:
    index = int(str(spec).rsplit(":", 1)[-1])
    if torch.cuda.is_available() and index < torch.cuda.device_count():
        assert torch_device(spec) == torch.device("cuda", index)
    else:
        with pytest.raises(ValueError, match=rf"names CUDA device {index}, but this machine has \d+: pass -1"):
            torch_device(spec, "Evaluator")


@pytest.mark.parametrize("spec", ["cpu", torch.device("cpu"), "@intel64", "native", "native:0", "meta"])
def test_torch_intel64_and_chainerx_host_names(spec: Any) -> None:
    assert torch_device(spec).type in ("cpu", "meta")


@pytest.mark.parametrize("spec", ["@cupy", "@numpy:0", "@torch", "gpu0", True, None, 1.5])
def test_anything_else_is_refused_naming_the_forms(spec: Any) -> None:
    with pytest.raises(ValueError) as raised:
        torch_device(spec, "Evaluator")
    assert str(raised.value) == (
        f"Evaluator(device={spec!r}) is not a device: use -1 or '@numpy' (the CPU), 0 or '@cupy:0' (GPU 0), "
        "'cuda:0', 'cpu' or a torch.device."
    )
