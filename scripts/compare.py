"""Compare a Lightning run with a Chainer run epoch by epoch, from their Chainer-format ``log`` files.

``python scripts/compare.py LIGHTNING_OUT CHAINER_OUT`` prints one table (train loss, validation loss, validation
accuracy and seconds per epoch of each, with the Chainer/Lightning time ratio) and draws ``comparison.png``.
``--run`` first trains both (``scripts/train.py`` then ``scripts/train_chainer.py``) with the same flags, seed and
initial weights; flags it does not know itself are passed to both trainings.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SCRIPTS = Path(__file__).resolve().parent
FRAMEWORKS = ("lightning", "chainer")
COLUMNS = (
    ("epoch", 5),
    ("train loss L", 12),
    ("train loss C", 12),
    ("val loss L", 12),
    ("val loss C", 12),
    ("val acc L", 10),
    ("val acc C", 10),
    ("s/epoch L", 10),
    ("s/epoch C", 10),
    ("C/L", 6),
)

Row = dict[str, float]


class CompareError(Exception):
    """A log that is missing or not a Chainer LogReport file, or a training that failed; one sentence."""


def log_path(path: str | os.PathLike) -> Path:
    """The ``log`` file of an output folder, or ``path`` itself when it is a file."""
    path = Path(path)
    return path / "log" if path.is_dir() else path


def read_log(path: str | os.PathLike) -> list[dict[str, float]]:
    """The entries of a Chainer LogReport file (a JSON list of objects with ``epoch``); CompareError otherwise."""
    file = log_path(path)
    if not file.is_file():
        raise CompareError(f"no log file at {file}: train with -o {Path(path)} first (or pass --run).")
    try:
        entries = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CompareError(f"{file} is not a Chainer LogReport file (invalid JSON: {error}).") from None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise CompareError(f"{file} is not a Chainer LogReport file (expected a JSON list of objects).")
    if not any("epoch" in e for e in entries):
        raise CompareError(f"{file} has no entry with an 'epoch': it is empty or not a LogReport file.")
    return entries


def per_epoch(entries: Sequence[dict[str, float]]) -> dict[int, Row]:
    """Epoch -> the numbers of that epoch's last entry, plus ``seconds``: training time per epoch up to it.

    ``seconds`` is the elapsed time since the previous epoch's entry divided by the epochs between them, or since
    the start for the first trained epoch; an epoch-0 entry (Chainer's ``call_before_training`` validation) has none.
    """
    rows: dict[int, Row] = {}
    for entry in entries:
        if "epoch" in entry:
            rows[int(entry["epoch"])] = {k: float(v) for k, v in entry.items() if isinstance(v, (int, float))}
    previous: tuple[int, float] | None = None
    for epoch in sorted(rows):
        elapsed = rows[epoch].get("elapsed_time")
        if elapsed is None:
            continue
        if epoch > 0:
            start_epoch, start = previous if previous is not None else (0, 0.0)
            rows[epoch]["seconds"] = (elapsed - start) / (epoch - start_epoch)
        previous = (epoch, elapsed)
    return rows


def _cell(value: float | None, width: int, fmt: str) -> str:
    """One right-aligned table cell; '-' where a log has no value."""
    text = "-" if value is None or math.isnan(value) else format(value, fmt)
    return text.rjust(width)


def format_table(lightning: dict[int, Row], chainer: dict[int, Row]) -> str:
    """The comparison table, one line per epoch found in either log, then the mean seconds per epoch.

    The means cover the epochs that both logs timed, so that their ratio compares like with like.
    """
    lines = ["  ".join(name.rjust(width) for name, width in COLUMNS)]
    for epoch in sorted(set(lightning) | set(chainer)):
        left, right = lightning.get(epoch, {}), chainer.get(epoch, {})
        lines.append(_line(str(epoch), left, right))
    common = [e for e in lightning if "seconds" in lightning[e] and "seconds" in chainer.get(e, {})]
    means = [_mean_seconds(rows, common) for rows in (lightning, chainer)]
    lines.append(_line("mean", *means, with_ratio=bool(common)))
    return "\n".join(lines) + "\n"


def _mean_seconds(rows: dict[int, Row], common: list[int]) -> Row:
    """Mean seconds per epoch over ``common`` epochs, or over all timed epochs when the two logs share none."""
    seconds = [rows[e]["seconds"] for e in common] or [r["seconds"] for r in rows.values() if "seconds" in r]
    return {"seconds": sum(seconds) / len(seconds)} if seconds else {}


def _line(label: str, left: Row, right: Row, with_ratio: bool = True) -> str:
    """One table line: the two frameworks' numbers side by side, then Chainer's seconds over Lightning's."""
    widths = [width for _, width in COLUMNS]
    ratio = None
    if with_ratio and left.get("seconds") and "seconds" in right:
        ratio = right["seconds"] / left["seconds"]
    cells = [label.rjust(widths[0])]
    keys = ("main/loss", "validation/main/loss", "validation/main/accuracy", "seconds")
    formats = (".6f", ".6f", ".4f", ".2f")
    i = 1
    for key, fmt in zip(keys, formats, strict=True):
        for row in (left, right):
            cells.append(_cell(row.get(key), widths[i], fmt))
            i += 1
    cells.append(_cell(ratio, widths[i], ".2f"))
    return "  ".join(cells)


def plot(lightning: dict[int, Row], chainer: dict[int, Row], path: str | os.PathLike) -> None:
    """Draw loss and accuracy curves of both runs on shared axes into ``path`` (written to a temp name, then moved)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    styles = {"lightning": "-", "chainer": "--"}
    for name, rows in (("lightning", lightning), ("chainer", chainer)):
        for ax, key, label, color in (
            (ax_loss, "main/loss", "train loss", "C0"),
            (ax_loss, "validation/main/loss", "validation loss", "C1"),
            (ax_acc, "main/accuracy", "train accuracy", "C0"),
            (ax_acc, "validation/main/accuracy", "validation accuracy", "C1"),
        ):
            points = sorted((epoch, row[key]) for epoch, row in rows.items() if key in row)
            if points:
                xs, ys = zip(*points, strict=True)
                ax.plot(xs, ys, styles[name], color=color, marker="x", label=f"{name} {label}")
    for ax, title in ((ax_loss, "loss"), (ax_acc, "accuracy")):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set_title(title)
        ax.grid(True)
        ax.legend(fontsize="small")
    fig.tight_layout()
    target = Path(path)
    tmp = target.with_name(f".{target.stem}.{os.getpid()}.tmp.png")
    try:
        fig.savefig(tmp)
        os.replace(tmp, target)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)


def _run(command: list[str]) -> None:
    """Run one training, echoing its command line; CompareError when it fails."""
    print("$ " + shlex.join(command), flush=True)
    status = subprocess.call(command)
    if status != 0:
        raise CompareError(f"{Path(command[1]).name} exited with status {status}; its output is above.")


def run_both(lightning_out: str, chainer_out: str, common: list[str], lightning_args: str, chainer_args: str) -> None:
    """Train with Chainer (exporting its initial weights), then with Lightning from those same weights."""
    python = sys.executable
    init = str(Path(chainer_out) / "init.npz")
    lightning = [python, str(SCRIPTS / "train.py"), *common, "-o", lightning_out, *shlex.split(lightning_args)]
    help_text = subprocess.run([python, str(SCRIPTS / "train.py"), "--help"], capture_output=True, text=True).stdout
    if "--init-from" in help_text:
        lightning += ["--init-from", init]
    else:
        print(
            "warning: scripts/train.py has no --init-from yet, so the two runs start from different initial weights.",
            file=sys.stderr,
        )
    chainer = [python, str(SCRIPTS / "train_chainer.py"), *common, "-o", chainer_out, "--export-init", init]
    _run(chainer + shlex.split(chainer_args))
    _run(lightning)


#: Flags that mean the same in both training scripts and that ``--run`` passes to both: (flags, argparse options).
TRAINING_FLAGS: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (("--model", "-m"), {"choices": ("lenet", "mlp")}),
    (("--batchsize", "-b"), {"type": int}),
    (("--epoch", "-e"), {"type": int}),
    (("--unit", "-u"), {"type": int}),
    (("--optimizer",), {}),
    (("--lr",), {"type": float}),
    (("--seed",), {"type": int}),
    (("--normalize",), {"action": "store_true"}),
    (("--data-dir",), {}),
    (("--no-progress",), {"action": "store_true"}),
    (("--noplot",), {"action": "store_true"}),
]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; the training flags are only for ``--run``, which passes them to both scripts."""
    p = argparse.ArgumentParser(
        prog="compare.py",
        description="Compare the Chainer-format logs of a Lightning run and a Chainer run, epoch by epoch.",
    )
    p.add_argument("lightning_out", metavar="LIGHTNING_OUT", help="output folder (or log file) of scripts/train.py")
    p.add_argument("chainer_out", metavar="CHAINER_OUT", help="output folder (or log file) of train_chainer.py")
    p.add_argument("-o", "--out", default=".", help="folder for comparison.png (default: current folder)")
    p.add_argument("--run", action="store_true", help="train both first, into LIGHTNING_OUT and CHAINER_OUT")
    p.add_argument("--lightning-args", default="", help="extra flags for scripts/train.py only (with --run)")
    p.add_argument("--chainer-args", default="", help="extra flags for train_chainer.py only, e.g. '-d 0'")
    group = p.add_argument_group("training flags, passed to both scripts by --run")
    for flags, options in TRAINING_FLAGS:
        group.add_argument(*flags, default=None, **options)
    return p


def training_flags(args: argparse.Namespace) -> list[str]:
    """The training flags given on the command line, spelled for both scripts."""
    common: list[str] = []
    for flags, options in TRAINING_FLAGS:
        value = getattr(args, flags[0].lstrip("-").replace("-", "_"))
        if options.get("action") == "store_true":
            common += [flags[0]] if value else []
        elif value is not None:
            common += [flags[0], str(value)]
    return common


def main(argv: list[str] | None = None) -> int:
    """Entry point: prints the table, writes comparison.png; 2 with one sentence on stderr on failure."""
    parser = build_parser()
    args = parser.parse_args(argv)
    common = training_flags(args)
    if common and not args.run:
        parser.error(f"{' '.join(common)}: training flags need --run")
    try:
        if args.run:
            run_both(args.lightning_out, args.chainer_out, common, args.lightning_args, args.chainer_args)
        lightning = per_epoch(read_log(args.lightning_out))
        chainer = per_epoch(read_log(args.chainer_out))
        out = Path(args.out)
        if out.exists() and not out.is_dir():
            raise CompareError(f"-o {out} is a file, not a folder.")
        out.mkdir(parents=True, exist_ok=True)
        print(f"L = Lightning ({log_path(args.lightning_out)}), C = Chainer ({log_path(args.chainer_out)})")
        print(format_table(lightning, chainer), end="")
        plot(lightning, chainer, out / "comparison.png")
        print(f"wrote {out / 'comparison.png'}")
    except CompareError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
