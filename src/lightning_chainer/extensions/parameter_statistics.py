"""ParameterStatistics: Chainer's per-parameter statistics of values and gradients, computed on the device."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from lightning_chainer.extension import Extension
from lightning_chainer.step import PRIORITY_WRITER, Step
from lightning_chainer.tensor_statistics import percentile

if TYPE_CHECKING:
    import lightning.pytorch as pl

#: Chainer's sigma percentiles of the ``'percentile'`` statistic.
SIGMA_PERCENTILES = (0.13, 2.28, 15.87, 50, 84.13, 97.72, 99.87)

#: Chainer's default statistics, with its definitions (NumPy's ``std`` has ``ddof=0``, ``percentile`` is linear).
DEFAULT_STATISTICS: dict[str, Callable[[torch.Tensor], Any]] = {
    "mean": lambda x: x.mean(),
    "std": lambda x: x.std(correction=0),
    "min": lambda x: x.min(),
    "max": lambda x: x.max(),
    "zeros": lambda x: torch.count_nonzero(x == 0),
    "percentile": lambda x: percentile(x, SIGMA_PERCENTILES),
}


class _StackedSums:
    """Chainer's DictSummary over one iteration's statistics held as one tensor: float64 sums on the device.

    Which keys an iteration has is known on the host (it depends on shapes and missing gradients only), so the
    counts are kept on the host for the keys and on the device for the division, and adding a step never syncs.
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self.keys: list[str] = []
        self.sums: torch.Tensor | None = None
        self.counts: np.ndarray = np.zeros(0, dtype=np.int64)
        self._device_counts: torch.Tensor | None = None
        self._index: dict[str, int] = {}
        self._positions: dict[tuple[str, ...], torch.Tensor | None] = {}

    def add(self, keys: tuple[str, ...], values: torch.Tensor) -> None:
        values = values.to(torch.float64)
        if self.sums is None:
            self.sums = torch.zeros(0, dtype=torch.float64, device=values.device)
            self._device_counts = torch.zeros(0, dtype=torch.float64, device=values.device)
        new = [k for k in dict.fromkeys(keys) if k not in self._index]
        if new:
            for key in new:
                self._index[key] = len(self.keys)
                self.keys.append(key)
            grow = torch.zeros(len(new), dtype=torch.float64, device=self.sums.device)
            self.sums = torch.cat([self.sums, grow])
            self._device_counts = torch.cat([self._device_counts, grow])
            self.counts = np.concatenate([self.counts, np.zeros(len(new), dtype=np.int64)])
            self._positions.clear()
        positions = [self._index[k] for k in keys]
        self.counts[positions] += 1
        if keys not in self._positions:  # the same layout every step, as a rule: one index tensor for it
            whole = positions == list(range(len(self.keys)))
            self._positions[keys] = None if whole else torch.tensor(positions, device=self.sums.device)
        index = self._positions[keys]
        assert self._device_counts is not None
        if index is None:
            self.sums += values.to(self.sums.device)
            self._device_counts += 1
        else:
            self.sums.index_add_(0, index, values.to(self.sums.device))
            self._device_counts.index_add_(0, index, torch.ones_like(values, device=self.sums.device))

    def means(self) -> dict[str, torch.Tensor]:
        """``{key: mean}`` as 0-d views of one device tensor, for the keys seen since the last reset."""
        if self.sums is None:
            return {}
        assert self._device_counts is not None
        means = self.sums / self._device_counts.clamp(min=1)
        return {key: means[i] for i, key in enumerate(self.keys) if self.counts[i] > 0}

    def state_dict(self) -> dict[str, Any]:
        return {
            "keys": list(self.keys),
            "sums": None if self.sums is None else self.sums.cpu(),
            "counts": self.counts.tolist(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._reset()
        if state.get("sums") is not None:
            self.keys = list(state["keys"])
            self._index = {k: i for i, k in enumerate(self.keys)}
            self.sums = state["sums"].to(torch.float64)
            self.counts = np.asarray(state["counts"], dtype=np.int64)
            self._device_counts = torch.as_tensor(self.counts, dtype=torch.float64, device=self.sums.device)

    def to(self, device: torch.device) -> None:
        """Move restored sums to the device of the statistics (checkpoints hold them on the CPU)."""
        if self.sums is not None and self.sums.device != device:
            self.sums = self.sums.to(device)
            self._device_counts = self._device_counts.to(device)  # type: ignore[union-attr]
            self._positions.clear()


class ParameterStatistics(Extension):
    """Reports statistics of the parameters of ``links`` and of their gradients, as Chainer's extension.

    Every iteration it computes each statistic of each parameter's values (``data``) and gradients (``grad``),
    flattened; at ``trigger`` it reports their means over the interval into the observation, as a WRITER, so
    LogReport logs them in the same iteration. The keys are Chainer's,
    ``{prefix}/{link name}/{parameter path}/{data|grad}/{statistic}``, with ``/{i}`` appended for each value of a
    statistic that gives several (``percentile``). With torch modules:

    - the link name is the module's name in its parent module, as Chainer's ``link.name``: ``predictor`` for
      ``module.predictor``, ``l1`` for ``module.predictor.l1``; the LightningModule itself and a module outside
      it have no name, which Chainer writes as ``None``;
    - the parameter path is torch's (``/l1/weight``, ``/l1/bias``), where Chainer's Linear and Convolution
      links name the same parameters ``W`` and ``b``: ``predictor/l1/weight/data/mean`` is Chainer's
      ``predictor/l1/W/data/mean``.

    The default statistics are Chainer's, with its definitions: ``mean``, ``std`` (``ddof=0``), ``min``,
    ``max``, ``zeros`` (the count of exact zeros) and ``percentile`` (NumPy's linear interpolation at
    Chainer's sigma percentiles). A dict ``{name: function}`` replaces them: each function takes the flattened
    tensor on its device and returns a number or a tensor of one or several values.

    Everything stays on the device: one tensor of statistics a step, summed in float64, and the reported values
    are 0-d tensors (LogReport turns them into floats at its report). A parameter without a gradient (unused, or
    before the first backward) has no ``grad`` keys for that step, where Chainer would fail. With
    ``skip_nan_params``, a parameter holding a NaN reports NaN for each statistic, under the key without an
    index, as Chainer; that costs one host sync a step, to know which.

    Args:
        links: a module, or a list or tuple of modules, whose parameters to observe.
        statistics: ``'default'``, a dict ``{name: function}``, or None for none.
        report_params: report statistics of the parameters' values.
        report_grads: report statistics of their gradients.
        prefix: put before every key, followed by ``/``.
        trigger: when to report the means of the interval.
        skip_nan_params: report NaN, without computing, for a parameter that holds a NaN.
    """

    priority = PRIORITY_WRITER
    report_key_template = "{prefix}{link_name}{param_name}/{attr_name}/{function_name}"
    default_statistics = DEFAULT_STATISTICS

    def __init__(
        self,
        links: nn.Module | Iterable[nn.Module],
        statistics: str | Mapping[str, Callable[[torch.Tensor], Any]] | None = "default",
        report_params: bool = True,
        report_grads: bool = True,
        prefix: str | None = None,
        trigger: Any = (1, "epoch"),
        skip_nan_params: bool = False,
    ) -> None:
        super().__init__(trigger)
        links = links if isinstance(links, (list, tuple)) else (links,)
        for link in links:
            if not isinstance(link, nn.Module):
                raise TypeError(f"ParameterStatistics takes a torch module or a list of modules, not {link!r}.")
        self._links = tuple(links)
        if statistics is None:
            statistics = {}
        elif isinstance(statistics, str):
            if statistics != "default":
                raise ValueError(f"ParameterStatistics' statistics must be 'default' or a dict, not {statistics!r}.")
            statistics = self.default_statistics
        elif not isinstance(statistics, Mapping) or not all(callable(f) for f in statistics.values()):
            raise TypeError("ParameterStatistics' statistics must be 'default' or a dict of name -> function.")
        self._statistics = dict(statistics)
        self._attrs = [a for a, on in (("data", report_params), ("grad", report_grads)) if on]
        self._prefix = prefix
        self._skip_nan_params = skip_nan_params
        self._summary = _StackedSums()
        self._names: tuple[int, list[tuple[str, nn.Module]]] | None = None
        self._key_cache: dict[tuple[str, str, str, str, int], tuple[str, ...]] = {}

    def register_statistics(self, name: str, function: Callable[[torch.Tensor], Any]) -> None:
        """Add the statistic ``name``, computed by ``function`` on each flattened tensor, as Chainer's method.

        Args:
            name: the statistic's part of the keys.
            function: takes a 1-d tensor and returns a number or a tensor of one or several values.
        """
        self._statistics[name] = function

    def _named_links(self, pl_module: Any) -> list[tuple[str, nn.Module]]:
        """Each link with its Chainer name (the last part of its path), looked up once per module being trained."""
        if self._names is None or self._names[0] != id(pl_module):
            paths = {} if pl_module is None else {id(m): path for path, m in pl_module.named_modules()}
            named = [(paths.get(id(link)) or "None").rsplit(".", 1)[-1] for link in self._links]
            self._names = (id(pl_module), list(zip(named, self._links, strict=True)))
        return self._names[1]

    def _keys(self, link_name: str, param_name: str, attr: str, function_name: str, size: int) -> tuple[str, ...]:
        cache_key = (link_name, param_name, attr, function_name, size)
        keys = self._key_cache.get(cache_key)
        if keys is None:
            key = self.report_key_template.format(
                prefix=self._prefix + "/" if self._prefix else "",
                link_name=link_name,
                param_name="/" + param_name.replace(".", "/"),
                attr_name=attr,
                function_name=function_name,
            )
            keys = (key,) if size <= 1 else tuple(f"{key}/{i}" for i in range(size))
            self._key_cache[cache_key] = keys
        return keys

    def run(self, step: Step) -> None:
        blocks = []
        for link_name, link in self._named_links(step.pl_module):
            for param_name, param in link.named_parameters():
                for attr in self._attrs:
                    x = param.detach() if attr == "data" else param.grad
                    if x is not None:
                        blocks.append((link_name, param_name, attr, x.detach().reshape(-1)))
        has_nan = self._nan_flags([x for *_, x in blocks]) if self._skip_nan_params else [False] * len(blocks)
        keys: list[str] = []
        values: list[torch.Tensor] = []
        device = blocks[0][3].device if blocks else None
        for (link_name, param_name, attr, x), nan in zip(blocks, has_nan, strict=True):
            for function_name, function in self._statistics.items():
                if nan:
                    value = torch.full((1,), math.nan, dtype=torch.float64, device=device)
                else:
                    value = torch.as_tensor(function(x), device=device).to(dtype=torch.float64).reshape(-1)
                keys.extend(self._keys(link_name, param_name, attr, function_name, value.numel()))
                values.append(value)
        if values:
            self._summary.to(device)  # type: ignore[arg-type]
            self._summary.add(tuple(keys), torch.cat(values))
        if self.trigger(step):
            self(step)

    @staticmethod
    def _nan_flags(tensors: list[torch.Tensor]) -> list[bool]:
        if not tensors:
            return []
        device = tensors[0].device
        return torch.stack([t.isnan().any().to(device) for t in tensors]).tolist()

    def __call__(self, step: Step) -> None:
        step.observation.update(self._summary.means())
        self._summary = _StackedSums()

    def extension_state(self) -> dict[str, Any]:
        return {"summary": self._summary.state_dict()}

    def load_extension_state(self, state: dict[str, Any]) -> None:
        if state:
            self._summary.load_state_dict(state["summary"])

    def initialize(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._names = None  # the module may have been replaced since the last run
