"""Inside a real Jupyter kernel PrintReport and ProgressBar draw one updating table and bar, with the log's numbers
and no escape codes; the detection of a kernel, and the choice it makes, without one."""

from __future__ import annotations

import io
import json
import re
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from jupyter_kernel import this_interpreter_kernel

from lightning_chainer.extensions import notebook as nb

ENTRIES = ["epoch", "iteration", "main/loss", "elapsed_time"]

TRAIN_CELL = """
import sys, torch, lightning as L
from torch.utils.data import DataLoader, TensorDataset
from lightning_chainer.extensions import LogReport, PrintReport, ProgressBar

class Tiny(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.layer(x), y)
        return {"loss": loss, "main/loss": loss}

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

torch.manual_seed(0)
data = TensorDataset(torch.randn(40, 2), torch.randn(40, 1))
trainer = L.Trainer(
    max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False, enable_model_summary=False,
    callbacks=[LogReport(out=OUT), PrintReport(ENTRIES), ProgressBar(update_interval=3)],
)
trainer.fit(Tiny(), DataLoader(data, batch_size=4))
print(sys.executable)
"""


def run_notebook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The training cell executed by nbclient in a kernel of this interpreter, as nbformat saves it."""
    import nbclient  # the dev extra installs nbclient, nbformat and ipykernel
    import nbformat

    kernel = this_interpreter_kernel(tmp_path, monkeypatch)
    setup = f"OUT = {str(tmp_path / 'out')!r}\nENTRIES = {ENTRIES!r}"
    book = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(setup + TRAIN_CELL)])
    nbclient.NotebookClient(book, kernel_name=kernel, timeout=120).execute()
    saved = tmp_path / "trained.ipynb"
    nbformat.write(book, saved)
    return nbformat.read(saved, as_version=4)  # what a saved notebook holds


def test_a_notebook_shows_one_table_with_the_logs_numbers_and_one_bar_without_escape_codes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    book = run_notebook(tmp_path, monkeypatch)
    outputs = book.cells[0].outputs
    streams = "".join(o.text for o in outputs if o.output_type == "stream")
    assert sys.executable in streams.splitlines()  # the kernel was this interpreter
    assert "\x1b" not in json.dumps(outputs, ensure_ascii=False)
    displays = [o.data for o in outputs if o.output_type == "display_data"]
    assert len(displays) == 2  # every redraw replaced its display in place
    table, bar = displays

    log = json.loads((tmp_path / "out" / "log").read_text())
    assert [e["iteration"] for e in log] == [10, 20]
    html = table["text/html"]
    assert re.findall(r"<th>(.*?)</th>", html) == ENTRIES
    rows = [re.findall(r'<td title="([^"]*)">([^<]*)</td>', row) for row in re.findall(r"<tr>(<td.*?)</tr>", html)]
    assert rows == [[(repr(entry[k]), format(entry[k], "g")) for k in ENTRIES] for entry in log]
    assert table["text/plain"].splitlines()[0].split() == ENTRIES

    final = bar["text/plain"]
    assert final.startswith(f"     total [{'#' * 50}] 100.00%\n")  # 20 iterations: the last, drawn at the end
    assert "        20 iter, 2 epoch / 2 epochs\n" in final
    assert bar["text/html"].startswith('<pre class="lightning-chainer-progress">     total [####')


class ZMQInteractiveShell:
    """Stands for ipykernel's shell (detected by its class name)."""

    config: dict[str, Any] = {}


class ColabShell(ZMQInteractiveShell):
    """A kernel's shell subclassing ipykernel's."""


def fake_ipython(monkeypatch: pytest.MonkeyPatch, shell: Any) -> None:
    """An imported ``IPython`` whose ``get_ipython()`` returns ``shell``."""
    module = ModuleType("IPython")
    module.get_ipython = lambda: shell  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", module)


@pytest.mark.parametrize(
    ("shell", "expected"),
    [
        (ZMQInteractiveShell(), True),
        (ColabShell(), True),
        (SimpleNamespace(config={"IPKernelApp": {"connection_file": "k.json"}}), True),
        (SimpleNamespace(config={"TerminalInteractiveShell": {}}), False),  # IPython in a terminal
        (None, False),  # IPython imported, but no shell running
    ],
)
def test_in_notebook_recognises_a_jupyter_kernel(monkeypatch: pytest.MonkeyPatch, shell: Any, expected: bool) -> None:
    fake_ipython(monkeypatch, shell)
    assert nb.in_notebook() is expected


def test_outside_ipython_nothing_is_a_notebook_and_ipython_stays_unimported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    assert nb.in_notebook() is False
    assert nb.use_notebook(None, None) is False
    assert "IPython" not in sys.modules


def test_use_notebook_follows_the_argument_else_a_kernel_with_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_ipython(monkeypatch, ZMQInteractiveShell())
    assert nb.use_notebook(None, None) and nb.use_notebook(None, sys.stdout)
    assert not nb.use_notebook(None, io.StringIO())  # an explicit stream gets text
    assert not nb.use_notebook(False, None)
    fake_ipython(monkeypatch, None)
    assert nb.use_notebook(True, None) and not nb.use_notebook(None, None)


def test_notebook_true_without_ipython_is_refused_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nb.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match=r"notebook=True needs IPython \(pip install ipykernel\)"):
        nb.check_notebook_argument(True)
    nb.check_notebook_argument(None)
    nb.check_notebook_argument(False)


def test_report_html_escapes_names_and_leaves_missing_values_empty() -> None:
    html = nb.report_html(["a<b", "x"], [{"a<b": 0.5}, {"x": 2}])
    assert "<th>a&lt;b</th>" in html
    assert re.findall(r"<tr>(<td.*?)</tr>", html) == [
        '<td title="0.5">0.5</td><td></td>',
        '<td></td><td title="2">2</td>',
    ]
