"""Shared fixtures: the real MNIST copy, and small IDX files written by the tests themselves."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def load_script(name: str) -> ModuleType:
    """``scripts/<name>.py`` imported as a module (the scripts are not part of the package)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def write_idx(path: Path, array: np.ndarray, magic: int | None = None) -> None:
    """Write ``array`` (uint8) as an IDX file; ``magic`` overrides the header's magic number."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    if magic is None:
        magic = 0x0800 + array.ndim
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + array.tobytes())


def make_mnist(root: Path, n_train: int = 200, n_test: int = 50, seed: int = 0, folder: str = "MNIST") -> Path:
    """A tiny MNIST in torchvision's layout under ``root``: label k images are bright in row band k.

    ``folder`` names the set's folder (``FashionMNIST``, ``KMNIST``): those ship the same four IDX files.
    """
    rng = np.random.default_rng(seed)
    raw = root / folder / "raw"
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        images = rng.integers(0, 40, size=(n, 28, 28)).astype(np.uint8)
        for i, k in enumerate(labels):
            images[i, 2 * k + 4 : 2 * k + 7, 4:24] = 255
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return root


@pytest.fixture
def tiny_mnist(tmp_path: Path) -> Path:
    """A data folder holding a 200/50-image MNIST made by the test."""
    return make_mnist(tmp_path / "data")


@pytest.fixture
def make_tiny_mnist() -> Callable[..., Path]:
    return make_mnist


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The real MNIST (``$MNIST_DATA_DIR`` or ``../shared/data``); missing it fails under CI, skips elsewhere."""
    folder = Path(os.environ.get("MNIST_DATA_DIR", REPO.parent / "shared" / "data"))
    if not (folder / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file():
        message = f"the real MNIST files are not in {folder}/MNIST/raw (set MNIST_DATA_DIR)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return folder


@contextmanager
def tmpfs(folder: Path, size: str) -> Iterator[Path]:
    """A fresh tmpfs of ``size`` (``mount -o size=``) mounted on ``folder`` for the block; needs root."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)
