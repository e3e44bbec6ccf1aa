"""What the manager's tests share with the extension tests: a real Chainer Trainer over the helpers' points, and the
smallest trainable LightningModule.

Imported by name (``from manager_helpers import ...``), as ``helpers``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from helpers import BATCH, N_TRAIN, train_values
from lightning.pytorch.profilers import Profiler


def chainer_trainer(chainer: Any, stop_trigger: Any, out: Path) -> Any:
    """A real Chainer Trainer over the helpers' 32 points in batches of 4, reporting their tabled ``main/loss``."""
    import chainer.functions as F
    import chainer.links as Lk
    from chainer import reporter, training

    loss_table, _ = train_values()
    model = Lk.Linear(1, 1)
    data = np.linspace(-1, 1, N_TRAIN, dtype=np.float32).reshape(-1, 1)
    iterator = chainer.iterators.SerialIterator(data, BATCH, shuffle=False)
    count = [0]

    def loss_func(x: Any) -> Any:
        reporter.report({"main/loss": np.asarray(loss_table[count[0]])})
        count[0] += 1
        return F.mean(model(x) ** 2)

    optimizer = chainer.optimizers.SGD(0.1)
    optimizer.setup(model)
    updater = training.updaters.StandardUpdater(iterator, optimizer, loss_func=loss_func)
    return training.Trainer(updater, stop_trigger, out=str(out))


class Plain(L.LightningModule):
    """The smallest trainable module: no logging."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(1, 1)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self.layer(batch[0]).pow(2).mean()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


class HookCounter(Profiler):
    """Counts what Lightning profiles: one ``[Callback]{state_key}.{hook}`` action per hook call on a callback."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[str] = Counter()

    def start(self, action_name: str) -> None:
        self.calls[action_name] += 1

    def stop(self, action_name: str) -> None:
        pass
