"""Chainer's reservoir sample (``variable_statistics_plot.Reservoir``) of tensors kept on their device."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


class Reservoir:
    """At most ``size`` samples of shape ``data_shape``, each kept with the same probability, as Chainer's.

    Which sample a new one replaces depends on random draws alone, never on the values, so adding one never waits
    for the device; :meth:`get_data` copies them to the host once. Chainer draws from NumPy's global random state;
    this makes the same calls (``random()``, then ``randint(size)``) on a ``RandomState`` of its own, seeded with
    ``torch.initial_seed()`` at the first sample, so the same state keeps the same samples as Chainer's, and the
    global random streams are left alone. The state holds the random state too.

    Args:
        size: the most samples kept.
        data_shape: the shape of one sample.
    """

    def __init__(self, size: int, data_shape: tuple[int, ...]) -> None:
        self.size = size
        self.data_shape = tuple(data_shape)
        self.data: torch.Tensor | None = None
        self.idxs = np.zeros((size,), dtype=np.int32)
        self.counter = 0
        self.rng: np.random.RandomState | None = None

    def add(self, x: torch.Tensor, idx: int) -> None:
        """Offer the sample ``x`` (float32, on any device) taken at ``idx`` (Chainer: the iteration)."""
        if self.rng is None:
            self.rng = np.random.RandomState(torch.initial_seed() % 2**32)
        if self.data is None:
            self.data = torch.zeros((self.size, *self.data_shape), dtype=torch.float32, device=x.device)
        elif self.data.device != x.device:  # restored from a checkpoint, on the CPU
            self.data = self.data.to(x.device)
        if self.counter < self.size:
            self.data[self.counter] = x
            self.idxs[self.counter] = idx or self.counter
        elif self.rng.random_sample() < self.size / float(self.counter + 1):
            i = self.rng.randint(self.size)
            self.data[i] = x
            self.idxs[i] = idx or self.counter
        self.counter += 1

    def get_data(self) -> tuple[np.ndarray, np.ndarray]:
        """The kept indices in increasing order and their samples, as NumPy arrays."""
        n = min(self.counter, self.size)
        idxs = self.idxs[:n]
        order = np.argsort(idxs)
        data = np.zeros((0, *self.data_shape), np.float32) if self.data is None else self.data[:n].cpu().numpy()
        return idxs[order], data[order]

    def state_dict(self) -> dict[str, Any]:
        """Plain types and a CPU tensor, readable by ``torch.load(weights_only=True)``."""
        n = min(self.counter, self.size)
        state: dict[str, Any] = {
            "counter": self.counter,
            "idxs": self.idxs[:n].tolist(),
            "data": torch.zeros((0, *self.data_shape), device="cpu") if self.data is None else self.data[:n].cpu(),
        }
        if self.rng is not None:
            _, key, pos, has_gauss, gauss = self.rng.get_state()
            state["rng"] = {"key": key.tolist(), "pos": int(pos), "has_gauss": int(has_gauss), "gauss": float(gauss)}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (into a reservoir of the same ``size`` and ``data_shape``)."""
        data = state["data"]
        n = min(int(data.shape[0]), self.size)
        self.counter = int(state["counter"])
        self.idxs = np.zeros((self.size,), dtype=np.int32)
        self.idxs[:n] = state["idxs"][:n]
        self.data = None
        if n:
            self.data = torch.zeros((self.size, *self.data_shape), dtype=torch.float32, device=data.device)
            self.data[:n] = data[:n].to(torch.float32)
        self.rng = None
        if "rng" in state:
            rng = state["rng"]
            self.rng = np.random.RandomState()
            self.rng.set_state(
                ("MT19937", np.asarray(rng["key"], np.uint32), rng["pos"], rng["has_gauss"], rng["gauss"])
            )
