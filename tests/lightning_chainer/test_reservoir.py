"""Reservoir: Chainer's sample from the same random state, and its state read back as a weights-only checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lightning_chainer.reservoir import Reservoir


def chainer_reservoir(size: int) -> object:
    from mnist_lightning.chainer_compat import import_chainer

    import_chainer()
    from chainer.training.extensions.variable_statistics_plot import Reservoir as ChainerReservoir

    return ChainerReservoir(size, data_shape=(2,))


def test_the_same_samples_as_chainers_and_a_restored_state_goes_on_alike(tmp_path: Path) -> None:
    theirs = chainer_reservoir(3)
    torch.manual_seed(7)
    np.random.seed(7)
    ours = Reservoir(3, (2,))
    for i in range(1, 21):
        x = np.array([i, -i], dtype=np.float32)
        theirs.add(x, idx=i)
        ours.add(torch.from_numpy(x), i)
        if i == 10:
            torch.save(ours.state_dict(), tmp_path / "state.pt")
    for got, want in zip(ours.get_data(), theirs.get_data(), strict=True):
        np.testing.assert_array_equal(got, want)
    assert ours.get_data()[0].tolist() != [1, 2, 3]

    restored = Reservoir(3, (2,))
    restored.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True))
    for i in range(11, 21):
        restored.add(torch.tensor([i, -i], dtype=torch.float32), i)
    for got, want in zip(restored.get_data(), ours.get_data(), strict=True):
        np.testing.assert_array_equal(got, want)
