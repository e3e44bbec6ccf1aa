"""notebooks/quickstart.ipynb runs top to bottom in a Jupyter kernel of this interpreter, on the real MNIST, in a
fresh working directory; its saved outputs hold the log's numbers, the plots, the predictions and the accuracy,
and no escape codes. The committed file holds no outputs."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO
from jupyter_kernel import this_interpreter_kernel

NOTEBOOK = REPO / "notebooks" / "quickstart.ipynb"
ENTRIES = [
    "epoch",
    "iteration",
    "main/loss",
    "validation/main/loss",
    "main/accuracy",
    "validation/main/accuracy",
    "elapsed_time",
]


class Executed:
    """The executed notebook as nbformat saved and read it back, and the folder it wrote into."""

    def __init__(self, book: Any, out: Path) -> None:
        self.book, self.out = book, out

    def outputs(self, cell_id: str) -> list[Any]:
        (cell,) = [cell for cell in self.book.cells if cell.get("id") == cell_id]
        return cell.outputs

    def displays(self, cell_id: str) -> list[dict[str, Any]]:
        return [o.data for o in self.outputs(cell_id) if o.output_type in ("display_data", "execute_result")]

    def stdout(self, cell_id: str) -> str:
        return "".join(o.text for o in self.outputs(cell_id) if o.output_type == "stream" and o.name == "stdout")


def execute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> Executed:
    """The notebook run by nbclient in a kernel of this interpreter, in an empty working directory."""
    import nbclient  # the dev extra installs nbclient, nbformat and ipykernel
    import nbformat

    cwd = tmp_path / "cwd"
    cwd.mkdir()
    kernel = this_interpreter_kernel(tmp_path, monkeypatch)
    monkeypatch.delenv("DATA_DIR", raising=False)
    monkeypatch.setenv("MNIST_DATA_DIR", str(data_dir))
    book = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(book, kernel_name=kernel, timeout=600, resources={"metadata": {"path": str(cwd)}}).execute()
    saved = tmp_path / "quickstart.ipynb"
    nbformat.write(book, saved)
    return Executed(nbformat.read(saved, as_version=4), cwd / "result" / "quickstart")


def png(data: dict[str, Any]) -> bytes:
    image = base64.b64decode(data["image/png"])
    assert image.startswith(b"\x89PNG\r\n\x1a\n")
    return image


def test_the_committed_notebook_holds_no_outputs() -> None:
    book = json.loads(NOTEBOOK.read_text())
    code = [cell for cell in book["cells"] if cell["cell_type"] == "code"]
    assert code
    assert all(cell["outputs"] == [] and cell["execution_count"] is None for cell in code)
    assert "image/png" not in NOTEBOOK.read_text()


def test_the_notebook_shows_the_logs_numbers_the_plots_the_predictions_and_the_accuracy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mnist_dir: Path
) -> None:
    # One test, so that the notebook runs once however pytest-xdist spreads the tests.
    executed = execute(tmp_path, monkeypatch, mnist_dir)

    # PrintReport's one table holds the log's entries, as the file has them; the bar ends at the last iteration.
    log = json.loads((executed.out / "log").read_text())
    assert [entry["iteration"] for entry in log] == [10, 20, 30, 40, 50]
    # The validation at the epoch's end is in the last entry only.
    assert [set(entry) == set(ENTRIES) for entry in log] == [False, False, False, False, True]

    displays = executed.displays("train")
    assert len(displays) == 2  # each redraw replaced its display in place
    table, bar = displays
    html = table["text/html"]
    assert re.findall(r"<th>(.*?)</th>", html) == ENTRIES
    rows = [re.findall(r'<td(?: title="([^"]*)")?>([^<]*)</td>', row) for row in re.findall(r"<tr>(<td.*?)</tr>", html)]
    assert len(rows) == len(log)
    for row, entry in zip(rows, log, strict=True):
        shown = {key: (float(title), text) for key, (title, text) in zip(ENTRIES, row, strict=True) if title}
        assert set(shown) == set(entry)  # a key the entry lacks is an empty cell
        assert all(shown[key] == (entry[key], format(entry[key], "g")) for key in entry)
    assert table["text/plain"].splitlines()[0].split() == ENTRIES

    assert bar["text/plain"].startswith(f"     total [{'#' * 50}] 100.00%\n")
    assert "        50 iter, 1 epoch / 1 epochs\n" in bar["text/plain"]

    # No saved output holds an escape code or an error.
    outputs = [cell.outputs for cell in executed.book.cells if cell.cell_type == "code"]
    assert any(outputs)
    assert "\x1b" not in json.dumps(outputs, ensure_ascii=False)
    assert all(o.output_type != "error" for cell in outputs for o in cell)

    # The plots shown are the files PlotReport wrote.
    images = [png(data) for data in executed.displays("plots")]
    assert images == [(executed.out / "loss.png").read_bytes(), (executed.out / "accuracy.png").read_bytes()]

    # The predictions are one figure of eight digits; the run wrote nothing else.
    (figure,) = executed.displays("predict")
    png(figure)
    assert re.fullmatch(r"<Figure size \d+x\d+ with 8 Axes>", figure["text/plain"])
    written = sorted(path.name for path in executed.out.iterdir())
    assert written == ["accuracy.png", "log", "loss.png", "snapshot_iter_50"]

    # The test accuracy printed last is that of a trained model.
    match = re.fullmatch(r"test accuracy: (\d\.\d{4}) \((\d+) of 10000 test images\)\n", executed.stdout("accuracy"))
    assert match is not None
    accuracy, correct = float(match[1]), int(match[2])
    assert accuracy == round(correct / 10000, 4)
    assert 0.5 < accuracy <= 1
