"""PrintReport: a resumed run prints the header and every restored row again, as Chainer."""

from __future__ import annotations

import io
from pathlib import Path

from helpers import FixedModule, callbacks, make_trainer, train_loader, val_loader

from lightning_chainer.extensions import PrintReport


def test_print_report_after_resume_reprints_header_and_rows_as_chainer(tmp_path: Path) -> None:
    make_trainer(callbacks(tmp_path), max_epochs=1).fit(FixedModule(), train_loader(), val_loader())
    out = io.StringIO()
    cbs = [*callbacks(tmp_path / "r"), PrintReport(["epoch", "iteration"], out=out)]
    make_trainer(cbs, max_epochs=2).fit(
        FixedModule(), train_loader(), val_loader(), ckpt_path=str(tmp_path / "snapshot_iter_8")
    )
    assert out.getvalue() == (
        "epoch       iteration \n\x1b[J1           8           \n\x1b[J2           16          \n"
    )
