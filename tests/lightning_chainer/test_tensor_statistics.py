"""percentile: NumPy's, on the tensor's device, for sequences, scalars and NaNs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lightning_chainer.tensor_statistics import percentile


@pytest.mark.parametrize("n", [1, 2, 7, 1000])
def test_percentile_is_numpys(n: int) -> None:
    values = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    q = (0, 0.13, 2.28, 15.87, 50, 84.13, 97.72, 99.87, 100)
    got = percentile(torch.from_numpy(values), q)
    assert got.dtype == torch.float64 and got.shape == (len(q),)
    np.testing.assert_allclose(got.numpy(), np.percentile(values, q), rtol=1e-7, atol=0)  # well inside float32 rounding
    assert float(percentile(torch.from_numpy(values).reshape(-1, 1), 30)) == pytest.approx(np.percentile(values, 30))


def test_a_nan_makes_every_percentile_nan_and_bad_percentiles_raise() -> None:
    values = torch.tensor([1.0, float("nan"), 3.0])
    assert percentile(values, (0, 50)).isnan().all()
    with pytest.raises(ValueError, match=r"must lie in \[0, 100\]"):
        percentile(values, 101)
