"""unchain_variables: Chainer's place among the extensions, and a training run exactly like one without it."""

from __future__ import annotations

from pathlib import Path

import torch
from helpers import FixedModule, make_trainer, train_loader

from lightning_chainer.driver import DRIVERS
from lightning_chainer.extensions import LogReport, snapshot, unchain_variables


def chainer_priority() -> int:
    from mnist_lightning.chainer_compat import import_chainer

    import_chainer()
    from chainer.training import extensions

    return extensions.unchain_variables.priority


def test_it_runs_where_chainers_runs_and_changes_nothing(tmp_path: Path) -> None:
    assert unchain_variables.priority == chainer_priority()
    runs = []
    for with_it in (False, True):
        torch.manual_seed(0)
        log = LogReport(out=str(tmp_path / str(with_it)))
        callbacks = [log, snapshot(out=str(tmp_path / str(with_it)))]
        if with_it:
            callbacks.insert(0, unchain_variables())
        module = FixedModule(log_real=True)
        trainer = make_trainer(callbacks, max_epochs=2)
        trainer.fit(module, train_loader())
        order = [type(ext).__name__ for ext in DRIVERS[trainer].extensions]
        runs.append(([{k: v for k, v in e.items() if k != "elapsed_time"} for e in log.log], module.layer.weight))
    assert order == ["LogReport", "unchain_variables", "Snapshot"]  # after the readers, before the snapshots
    assert runs[0][0] == runs[1][0] and runs[0][0]
    assert torch.equal(runs[0][1], runs[1][1])
