"""Summary: float64 sums kept on the device until a report, and a state that round-trips."""

from __future__ import annotations

import torch

from lightning_chainer.extensions import Summary


def test_summary_keeps_tensors_until_report_and_matches_float64_mean() -> None:
    summary = Summary()
    values = [torch.tensor(v, dtype=torch.float32) for v in (0.1, 0.2, 0.7)]
    for v in values:
        summary.add({"a": v, "b": 2.0, "skip": torch.ones(3)})
    assert isinstance(summary._sums["a"], torch.Tensor) and summary._sums["a"].dtype == torch.float64
    assert "skip" not in summary
    means = summary.compute_mean()
    assert means == {"a": sum(float(v) for v in values) / 3, "b": 2.0}
    state = summary.state_dict()
    restored = Summary()
    restored.load_state_dict(state)
    assert restored.compute_mean() == means
