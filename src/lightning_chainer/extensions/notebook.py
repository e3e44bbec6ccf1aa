"""PrintReport's table and ProgressBar's bar inside Jupyter: one output area each, redrawn in place.

A terminal redraws with escape codes (``ESC[J``, ``ESC[4A``), which a notebook saves as raw text. Inside an
IPython kernel the two extensions instead publish a display (``text/html`` and ``text/plain``) and update it,
so the cell keeps one table and one bar, in their latest state. IPython is imported only when something is
shown, so the library imports without it.
"""

from __future__ import annotations

import html
import importlib.util
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (IPython's ``ZMQInteractiveShell``, an ``IPKernelApp`` config).

    A terminal IPython session is not one: it shows escape codes as a terminal does.
    """
    ipython = sys.modules.get("IPython")  # a kernel has imported it already; importing it here would be slow
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    if shell is None:
        return False
    if any(cls.__name__ == "ZMQInteractiveShell" for cls in type(shell).__mro__):
        return True
    return "IPKernelApp" in getattr(shell, "config", {})


def check_notebook_argument(notebook: bool | None) -> None:
    """Raise unless ``notebook`` is ``None`` (decide inside Jupyter), ``True`` or ``False``.

    Args:
        notebook: The ``notebook=`` argument of PrintReport or ProgressBar.
    """
    if notebook is not None and not isinstance(notebook, bool):
        raise TypeError(f"notebook must be None (decide inside Jupyter), True or False, got {notebook!r}.")
    if notebook and importlib.util.find_spec("IPython") is None:
        raise ImportError("notebook=True needs IPython (pip install ipykernel); pass notebook=False for text output.")


def use_notebook(notebook: bool | None, out: TextIO | None) -> bool:
    """Whether to draw in a notebook display: ``notebook`` when given, else inside Jupyter when ``out`` is stdout.

    Args:
        notebook: ``True`` or ``False`` forces either; ``None`` decides.
        out: The extension's ``out``; an explicit stream other than ``sys.stdout`` keeps getting text.
    """
    if notebook is not None:
        return notebook
    return (out is None or out is sys.stdout) and in_notebook()


class LiveDisplay:
    """One output area of the running cell: shown at the first :meth:`show`, updated in place after that."""

    def __init__(self) -> None:
        self._handle: Any = None

    def show(self, html_text: str, plain_text: str) -> None:
        """Draw ``html_text`` (``plain_text`` for front ends without HTML) in this output area.

        Args:
            html_text: The ``text/html`` of the display.
            plain_text: Its ``text/plain``.
        """
        from IPython.display import display

        bundle = {"text/html": html_text, "text/plain": plain_text}
        if self._handle is None:
            self._handle = display(bundle, raw=True, display_id=True)
        else:
            self._handle.update(bundle, raw=True)

    def close(self) -> None:
        """Forget the output area: the next :meth:`show` opens a new one (the next training run's)."""
        self._handle = None


def report_html(entries: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> str:
    """PrintReport's table as HTML: the same columns, and cells formatted as the terminal's (``'{:g}'``).

    Each cell's ``title`` (shown on hover) holds the value's full ``repr``, the number the log file holds.

    Args:
        entries: The column names, in order.
        rows: LogReport entries; a key an entry lacks gives an empty cell.
    """
    head = "".join(f"<th>{html.escape(name)}</th>" for name in entries)
    body = []
    for row in rows:
        cells = []
        for name in entries:
            if name in row:
                value = row[name]
                cells.append(f'<td title="{html.escape(repr(value))}">{html.escape(format(value, "g"))}</td>')
            else:
                cells.append("<td></td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return (
        f'<table class="lightning-chainer-report"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
    )


def bar_html(lines: Sequence[str]) -> str:
    """ProgressBar's lines (the two bars, the iteration count, speed and ETA) as preformatted HTML.

    Args:
        lines: The bar's lines, each ending in a newline, as the terminal shows them.
    """
    text = "".join(lines).rstrip("\n")
    return f'<pre class="lightning-chainer-progress">{html.escape(text)}</pre>'
