"""NumPy's percentile on a torch tensor, on its device: what ParameterStatistics and VariableStatisticsPlot share.

``torch.quantile`` refuses inputs of more than 2**24 values, so the percentiles are read from one sort instead,
with NumPy's default (``linear``) interpolation, done as NumPy does it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import torch


@lru_cache(maxsize=256)
def _interpolation(n: int, q: tuple[float, ...], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The sorted positions below and above each percentile, and the weights between them, on ``device``.

    Cached: copying them to the device each call would wait for the device (a host sync on CUDA).
    """
    lower, upper, weights = [], [], []
    for percent in q:
        position = (percent / 100) * (n - 1)
        below = min(max(math.floor(position), 0), n - 1)
        lower.append(below)
        upper.append(min(below + 1, n - 1))
        weights.append(position - below)
    indices = torch.tensor(lower + upper, dtype=torch.long, device=device)
    return indices, torch.tensor(weights, dtype=torch.float64, device=device)


def percentile(x: torch.Tensor, q: float | Sequence[float]) -> torch.Tensor:
    """``numpy.percentile(x, q)`` of all of ``x``'s values, as float64 on ``x``'s device, without a host sync.

    As NumPy's, any NaN makes every percentile NaN.

    Args:
        x: the values (any shape; they are flattened).
        q: a percentile in [0, 100], or a sequence of them; a scalar gives a 0-d result.
    """
    scalar = not isinstance(q, Sequence)
    percents = (float(q),) if scalar else tuple(float(p) for p in q)  # type: ignore[arg-type]
    if any(not 0 <= p <= 100 for p in percents):
        raise ValueError(f"percentiles must lie in [0, 100], not {q!r}.")
    values = torch.sort(x.detach().reshape(-1)).values
    if values.numel() == 0:
        raise ValueError("the percentile of no values is undefined: pass a tensor with at least one value.")
    indices, weights = _interpolation(values.numel(), percents, values.device)
    ends = values[indices].to(torch.float64)
    below, above = ends[: len(percents)], ends[len(percents) :]
    difference = above - below
    # NumPy's lerp: from below for weights under one half, back from above otherwise.
    result = torch.where(weights >= 0.5, above - difference * (1 - weights), below + difference * weights)
    result = torch.where(values[-1].isnan(), torch.full_like(result, math.nan), result)  # NaNs sort last
    return result[0] if scalar else result
