"""A Jupyter kernel of this interpreter for tests that execute notebooks with nbclient."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

KERNEL_NAME = "lightning-chainer-test"


def this_interpreter_kernel(folder: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The name of a kernelspec running ``sys.executable``, found first through a ``JUPYTER_PATH`` under ``folder``.

    The runtime and IPython folders move under ``folder`` too, so the test reads and writes nothing of the user's.
    """
    kernel = folder / "jupyter" / "kernels" / KERNEL_NAME
    kernel.mkdir(parents=True)
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"], "language": "python"}
    (kernel / "kernel.json").write_text(json.dumps({**spec, "display_name": "this interpreter"}))
    monkeypatch.setenv("JUPYTER_PATH", str(folder / "jupyter"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(folder / "runtime"))
    monkeypatch.setenv("IPYTHONDIR", str(folder / "ipython"))
    return KERNEL_NAME
