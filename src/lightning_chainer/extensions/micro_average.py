"""MicroAverage: ratio of summed numerators to summed denominators over an interval (e.g. exact accuracy)."""

from __future__ import annotations

from typing import Any

import torch

from lightning_chainer.extension import Extension
from lightning_chainer.step import PRIORITY_EDITOR, Step


class MicroAverage(Extension):
    """Sums ``numerator_key`` and ``denominator_key`` each iteration; at ``trigger`` reports their ratio.

    As Chainer, the trigger is only consulted in iterations that observed both keys. The sums stay on the device;
    the ratio is reported as a tensor (LogReport turns it into a float at its report).
    """

    priority = PRIORITY_EDITOR

    def __init__(self, numerator_key: str, denominator_key: str, result_key: str, trigger: Any = (1, "epoch")) -> None:
        super().__init__(trigger)
        self._numerator_key = numerator_key
        self._denominator_key = denominator_key
        self._result_key = result_key
        self._numerator: Any = 0
        self._denominator: Any = 0

    def _state_key_fields(self) -> dict[str, Any]:
        return dict(result_key=self._result_key)

    def run(self, step: Step) -> None:
        obs = step.observation
        if not (self._numerator_key in obs and self._denominator_key in obs):
            return
        self._numerator = self._numerator + _f64(obs[self._numerator_key])
        self._denominator = self._denominator + _f64(obs[self._denominator_key])
        if self.trigger(step):
            obs[self._result_key] = self._numerator / self._denominator
            self._numerator = 0
            self._denominator = 0

    def extension_state(self) -> dict[str, Any]:
        def plain(v: Any) -> Any:
            return v.detach().cpu() if isinstance(v, torch.Tensor) else v

        return {"numerator": plain(self._numerator), "denominator": plain(self._denominator)}

    def load_extension_state(self, state: dict[str, Any]) -> None:
        if state:
            self._numerator = state["numerator"]
            self._denominator = state["denominator"]


def _f64(value: Any) -> Any:
    return value.detach().to(torch.float64) if isinstance(value, torch.Tensor) else float(value)
