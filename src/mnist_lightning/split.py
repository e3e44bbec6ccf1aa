"""Which images train and which validate: the seeded 80/20 split, or Chainer's example setup (validate on test).

NumPy only: the Lightning DataModule and the Chainer reference script call the same functions.
"""

from __future__ import annotations

import numpy as np

#: ``--validation``: ``split`` holds out a seeded part of the training set; ``test`` trains on the whole training
#: set and validates on the test set, as Chainer's ``train_mnist.py`` does with ``chainer.datasets.get_mnist()``.
VALIDATIONS = ("split", "test")


def split_indices(n: int, val_ratio: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint (train, validation) index arrays: the two parts of a seeded permutation of ``range(n)``.

    The permutation comes from NumPy's PCG64 seeded with ``seed`` alone, so it is the same on every
    machine and run and does not touch (or depend on) any global RNG.

    Args:
        n: the number of training images.
        val_ratio: the share held out for validation, in (0, 1).
        seed: the permutation's seed.
    """
    if not 0.0 < val_ratio < 1.0:
        raise ValueError(f"val_ratio must be between 0 and 1, got {val_ratio}.")
    n_val = int(round(n * val_ratio))
    order = np.random.Generator(np.random.PCG64(seed)).permutation(n)
    return order[: n - n_val], order[n - n_val :]


def check_validation(validation: str) -> None:
    """Raise ValueError in one sentence unless ``validation`` is one of :data:`VALIDATIONS`."""
    if validation not in VALIDATIONS:
        raise ValueError(f"unknown validation {validation!r}: choose one of {', '.join(VALIDATIONS)}.")
