"""``--compile``: ``torch.compile`` of the predictor in place, so every file keeps the eager model's keys.

``torch.compile(net)`` returns a wrapper whose ``state_dict`` keys start with ``_orig_mod.``; a Classifier holding
it writes ``predictor._orig_mod.*`` into every snapshot, which an eager model (and ``load_from_checkpoint``)
refuses. ``nn.Module.compile()`` compiles the module's own call instead and leaves the module, its parameters and
their names as they are: snapshots and ``model_best`` of a compiled run load into an eager model, and a compiled run
resumes from an eager run's snapshot, both ways.
"""

from __future__ import annotations

import os
import shutil
import sys

import torch
from torch import nn

from mnist_lightning.checks import UsageError


def cpp_compiler() -> str:
    """The C++ compiler Inductor calls for CPU code: ``$CXX``, else ``g++`` (``clang++`` on macOS)."""
    return os.environ.get("CXX") or ("clang++" if sys.platform == "darwin" else "g++")


def runs_on_cpu(accelerator: str) -> bool:
    """Whether ``--accelerator`` puts the model on the CPU (``auto`` does when there is no GPU).

    Args:
        accelerator: the ``--accelerator`` value.
    """
    if accelerator == "cpu":
        return True
    return accelerator == "auto" and not torch.cuda.is_available() and not torch.backends.mps.is_available()


def check_compile(accelerator: str) -> None:
    """Refuse ``--compile`` on the CPU without a C++ compiler, which Inductor would report at the first step.

    Args:
        accelerator: the ``--accelerator`` value.

    Raises:
        UsageError: the model trains on the CPU and the compiler is not on ``PATH``.
    """
    compiler = cpp_compiler()
    if runs_on_cpu(accelerator) and shutil.which(compiler) is None:
        raise UsageError(
            f"--compile on the CPU needs a C++ compiler, and {compiler} is not on PATH: install one (or set CXX), "
            "or drop --compile."
        )


def compile_in_place(module: nn.Module) -> nn.Module:
    """Compile ``module``'s calls with ``torch.compile`` (Inductor), keeping its ``state_dict`` keys; returns it.

    Args:
        module: the module to compile, typically a Classifier's predictor.
    """
    module.compile()
    return module
