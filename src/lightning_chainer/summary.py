"""Chainer's ``DictSummary`` kept on the device: float64 sums, one all-reduce and one host sync per report."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    import lightning.pytorch as pl


class Summary:
    """Chainer's ``DictSummary`` kept on the device: float64 sums and counts per key, in first-seen order.

    ``add`` never leaves the device; ``compute_mean`` reduces across ranks and syncs to the host once.
    A ``(value, weight)`` tuple counts as a weighted sample; only scalars and 0-d tensors are kept, as Chainer.
    """

    def __init__(self) -> None:
        self._sums: dict[str, Any] = {}
        self._counts: dict[str, Any] = {}

    def __len__(self) -> int:
        return len(self._sums)

    def __contains__(self, key: object) -> bool:
        return key in self._sums

    def add(self, observation: Mapping[str, Any], keys: Iterable[str] | None = None) -> None:
        """Accumulate every scalar of ``observation`` (only ``keys`` when given)."""
        for key, value in observation.items():
            if keys is not None and key not in keys:
                continue
            weight: Any = 1
            if isinstance(value, tuple):
                value, weight = value
            if isinstance(value, torch.Tensor):
                if value.dim() != 0:
                    continue
                if value.requires_grad:
                    value = value.detach()
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                value = float(value)
            elif hasattr(value, "dtype") and getattr(value, "ndim", -1) == 0:  # numpy scalars
                value = float(value)
            else:
                continue
            if weight != 1:
                value = (value.to(torch.float64) if isinstance(value, torch.Tensor) else value) * weight
            total = self._sums.get(key)
            if isinstance(value, torch.Tensor) and not isinstance(total, torch.Tensor):
                # The first tensor starts a float64 sum on its device (plus an earlier float sum, if any); later
                # float32 values are promoted exactly inside the addition, one device op a step and no copy.
                value = value.to(torch.float64)
            self._sums[key] = value if total is None else total + value
            self._counts[key] = self._counts.get(key, 0) + weight

    def local_means(self) -> dict[str, Any]:
        """Means of this rank only, still tensors where the values were (no host sync)."""
        return {k: self._sums[k] / self._counts[k] for k in self._sums}

    def compute_mean(self, trainer: pl.Trainer | None = None) -> dict[str, float]:
        """Means as Python floats, sums and counts summed over ranks first: one all-reduce, one host sync."""
        if not self._sums:
            return {}
        keys = list(self._sums)
        entries = [self._sums[k] for k in keys] + [self._counts[k] for k in keys]
        device = _device(trainer, entries)
        # The Python numbers (the counts, float-only sums) go over in one copy, not one small copy each.
        numbers = torch.tensor(
            [0.0 if isinstance(v, torch.Tensor) else float(v) for v in entries], dtype=torch.float64, device=device
        )
        packed = torch.stack(
            [
                v.detach().to(device=device, dtype=torch.float64) if isinstance(v, torch.Tensor) else numbers[i]
                for i, v in enumerate(entries)
            ]
        )
        if trainer is not None and trainer.world_size > 1:
            packed = trainer.strategy.reduce(packed, reduce_op="sum")
        values = packed.tolist()
        n = len(keys)
        counts = [int(c) if float(c).is_integer() else c for c in values[n:]]
        return {k: values[i] / counts[i] for i, k in enumerate(keys)}

    def state_dict(self) -> dict[str, Any]:
        """Plain floats and CPU tensors, readable with ``torch.load(weights_only=True)``."""

        def plain(v: Any) -> Any:
            return v.detach().cpu() if isinstance(v, torch.Tensor) else v

        return {"sums": {k: plain(v) for k, v in self._sums.items()}, "counts": dict(self._counts)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore sums and counts saved by :meth:`state_dict`."""
        self._sums = dict(state.get("sums", {}))
        self._counts = {k: (v.item() if isinstance(v, torch.Tensor) else v) for k, v in state.get("counts", {}).items()}


def _device(trainer: pl.Trainer | None, entries: list[Any]) -> torch.device:
    """Where the means are packed: the trainer's device, else that of the first tensor, else the CPU."""
    if trainer is not None:
        return trainer.strategy.root_device
    for value in entries:
        if isinstance(value, torch.Tensor):
            return value.device
    return torch.device("cpu")
