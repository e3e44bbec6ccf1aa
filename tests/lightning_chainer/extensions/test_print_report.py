"""PrintReport: Chainer's table for a LogReport named or given as an instance (one it then runs and saves), the
same table as one updating notebook display, the reprint after a resume, and one-sentence argument errors."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from helpers import FixedModule, callbacks, chainer_validation, make_trainer, run_chainer, train_loader, val_loader

from lightning_chainer.extensions import LogReport, PrintReport, snapshot
from mnist_lightning.chainer_compat import import_chainer

ENTRIES = ["epoch", "iteration", "main/loss", "main/accuracy", "validation/main/loss"]


def chainer_table(tmp_path: Path, make: Any) -> tuple[str, str]:
    """The table real Chainer 7.8.1 prints and the log it writes, for ``make(E)`` (``E``: its extensions)."""
    import_chainer()
    from chainer.training import extensions as E

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        run_chainer([(ext, {}) for ext in make(E, out)], str(tmp_path))
    return out.getvalue(), (tmp_path / "log").read_text()


def without_elapsed(log_text: str) -> str:
    """The log file's text with every elapsed_time value replaced."""
    return re.sub(r'"elapsed_time": [-+0-9.e]+', '"elapsed_time": T', log_text)


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


def test_print_report_runs_a_log_report_instance_it_was_given_as_chainer(tmp_path: Path) -> None:
    chainer_out, chainer_log = chainer_table(
        tmp_path / "chainer",
        lambda E, out: [E.PrintReport(ENTRIES[:4], log_report=E.LogReport(trigger=(5, "iteration")), out=out)],
    )
    ours = io.StringIO()
    report = LogReport(trigger=(5, "iteration"), out=str(tmp_path / "ours"))
    make_trainer([PrintReport(ENTRIES[:4], log_report=report, out=ours)]).fit(FixedModule(), train_loader())
    assert ours.getvalue() == chainer_out
    assert without_elapsed((tmp_path / "ours" / "log").read_text()) == without_elapsed(chainer_log)
    assert [e["iteration"] for e in report.log] == [5, 10, 15]


def test_print_report_saves_the_log_report_it_runs_and_a_resume_continues_it(tmp_path: Path) -> None:
    def run(out: io.StringIO, folder: Path, epochs: int, ckpt: str | None = None) -> None:
        report = LogReport(out=str(folder))
        cbs = [PrintReport(ENTRIES, log_report=report, out=out), snapshot(out=str(folder))]
        make_trainer(cbs, max_epochs=epochs).fit(FixedModule(), train_loader(), val_loader(), ckpt_path=ckpt)

    whole, first, resumed = io.StringIO(), io.StringIO(), io.StringIO()
    run(whole, tmp_path / "whole", 2)
    run(first, tmp_path / "first", 1)
    run(resumed, tmp_path / "resumed", 2, ckpt=str(tmp_path / "first" / "snapshot_iter_8"))
    assert resumed.getvalue() == whole.getvalue()  # the restored epoch-1 row, with its means, then epoch 2
    assert len(json.loads((tmp_path / "resumed" / "log").read_text())) == 2


def test_print_report_reads_a_log_report_instance_an_extensions_manager_runs(tmp_path: Path) -> None:
    from lightning_chainer import ExtensionsManager

    report = LogReport(trigger=(4, "iteration"))
    out = io.StringIO()
    table = PrintReport(["iteration"], log_report=report, out=out)
    manager = ExtensionsManager((2, "epoch"), out=str(tmp_path))
    manager.extend(report)
    manager.extend(table)
    make_trainer([manager], max_epochs=None).fit(FixedModule(), train_loader())
    assert [int(row.strip()) for row in out.getvalue().split("\x1b[J")[1:]] == [4, 8, 12, 16]
    assert table.state_dict()["extension"] == {}  # the manager runs and saves it, not the PrintReport


def test_print_report_finds_a_log_report_by_its_name(tmp_path: Path) -> None:
    per_epoch = LogReport(filename="a", out=str(tmp_path))
    per_iterations = LogReport(trigger=(4, "iteration"), filename="b", out=str(tmp_path))
    per_iterations.name = "per_iterations"  # Chainer's trainer.extend(..., name='per_iterations')
    out = io.StringIO()
    cbs = [per_epoch, per_iterations, PrintReport(["iteration"], log_report="per_iterations", out=out)]
    make_trainer(cbs).fit(FixedModule(), train_loader())
    assert [int(row.strip()) for row in out.getvalue().split("\x1b[J")[1:]] == [4, 8, 12, 16]


def test_print_report_in_a_notebook_shows_the_terminal_table_as_one_updating_display(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import IPython.display

    shown: list[dict[str, str]] = []

    class Handle:
        def update(self, bundle: dict[str, str], raw: bool) -> None:
            shown.append(bundle)

    def display(bundle: dict[str, str], raw: bool, display_id: bool) -> Handle:
        assert not shown and display_id is True
        shown.append(bundle)
        return Handle()

    monkeypatch.setattr(IPython.display, "display", display)
    chainer_out, _ = chainer_table(
        tmp_path / "chainer",
        lambda E, out: [
            chainer_validation("fixed"),
            E.LogReport(trigger=(3, "iteration")),
            E.PrintReport(ENTRIES, out=out),
        ],
    )
    report = LogReport(trigger=(3, "iteration"), out=str(tmp_path / "ours"))
    make_trainer([report, PrintReport(ENTRIES, notebook=True)]).fit(FixedModule(), train_loader(), val_loader())

    assert len(shown) == 1 + 5  # the header at the first iteration, then one redraw per entry (3, 6, ..., 15)
    assert shown[0]["text/plain"] == chainer_out.split("\n")[0] + "\n"
    assert shown[-1]["text/plain"] == chainer_out.replace("\x1b[J", "")
    html = shown[-1]["text/html"]
    assert "\x1b" not in html
    assert re.findall(r"<th>(.*?)</th>", html) == ENTRIES
    rows = re.findall(r"<tr>(<td.*?)</tr>", html)
    assert len(rows) == len(report.log) == 5
    for row, entry in zip(rows, report.log, strict=True):
        cells = re.findall(r'<td(?: title="([^"]*)")?>([^<]*)</td>', row)
        assert cells == [(repr(entry[k]), format(entry[k], "g")) if k in entry else ("", "") for k in ENTRIES]
    assert any(("", "") in re.findall(r'<td(?: title="([^"]*)")?>([^<]*)</td>', row) for row in rows)


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("main/loss",), {}, r"entries must be a list of observation keys, e.g. \['epoch', 'main/loss'\]"),
        ((["epoch", 1],), {}, "entries must be a list of observation keys"),
        ((["epoch"],), {"log_report": 3}, "log_report must be a LogReport or the name of one in trainer.callbacks"),
        ((["epoch"],), {"notebook": "auto"}, r"notebook must be None \(decide inside Jupyter\), True or False"),
    ],
)
def test_print_report_refuses_arguments_it_cannot_use(args: tuple, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(TypeError, match=message):
        PrintReport(*args, **kwargs)
