"""Checks of the training command's flags and paths that argparse cannot make; each failure is one sentence."""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

import torch


class UsageError(Exception):
    """A flag, a path or a snapshot that cannot be used; the message is one sentence for the user."""


def limit(text: str) -> int | float:
    """argparse type of Lightning's limit_*_batches: an int counts batches, a float in (0, 1] is a fraction."""
    try:
        value: int | float = float(text) if "." in text or "e" in text.lower() else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a batch count or a fraction, got {text!r}") from None
    if isinstance(value, float):
        if not 0.0 < value <= 1.0:
            raise argparse.ArgumentTypeError(f"a fraction must be in (0, 1], got {value}")
        return value
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive batch count, got {value}")
    return value


def check_accelerator(accelerator: str) -> None:
    """Refuse an accelerator this machine does not have, before Lightning says it in a traceback."""
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise UsageError(
            f"--accelerator {accelerator} was asked for, but PyTorch sees no CUDA GPU on this machine; "
            "use --accelerator cpu (or auto)."
        )
    if accelerator == "mps" and not torch.backends.mps.is_available():
        raise UsageError("--accelerator mps was asked for, but MPS is not available on this machine.")


def parse_devices(text: str) -> int | str | list[int]:
    """``--devices``: 'auto', -1, a count, or a comma-separated list of distinct ids."""
    if text == "auto" or text == "-1":
        return text if text == "auto" else -1
    if re.fullmatch(r"\d+", text):
        return int(text)
    if re.fullmatch(r"\d+(,\d+)*,?", text):
        ids = [int(i) for i in text.split(",") if i]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise UsageError(f"--devices {text} names device {repeated[0]} more than once; give each id once.")
        return ids
    raise UsageError(f"--devices must be 'auto', a count or a comma-separated list of ids, got {text!r}.")


def _remove_empty(created: list[Path]) -> None:
    for folder in created:  # deepest first
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def check_out(out: str) -> None:
    """Try the output folder for real (permissions alone say nothing to root), leaving no folder behind."""
    path = Path(out).absolute()
    if path.exists() and not path.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder.")
    created = [p for p in (path, *path.parents) if not p.exists()]
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError:
        raise UsageError(f"--out {out} is not writable.") from None
    finally:
        _remove_empty(created)


def check_new_file(path: str, flag: str) -> None:
    """Refuse a path that cannot become a file: a folder, a missing or unwritable parent folder."""
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"{flag} {path} is a folder: give a file name, e.g. {target / 'init.npz'}.")
    parent = target.absolute().parent
    if not parent.is_dir():
        raise UsageError(f"{flag} {path}: the folder {parent} does not exist.")
    try:
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError:
        raise UsageError(f"{flag} {path}: the folder {parent} is not writable.") from None


def logger_version(resume: str | None, out: str | None) -> int | str | None:
    """Resuming a snapshot inside ``lightning_logs/version_N/`` continues that run's TensorBoard folder."""
    if resume is None or out is not None:
        return None
    folder = Path(resume).resolve().parent
    if folder.parent == Path("lightning_logs").resolve() and folder.name.startswith("version_"):
        suffix = folder.name[len("version_") :]
        return int(suffix) if suffix.isdigit() else folder.name
    return None


def is_out_of_memory(error: BaseException) -> bool:
    """CUDA's OutOfMemoryError, or the CPU allocator's RuntimeError for an allocation the host cannot hold."""
    return isinstance(error, torch.OutOfMemoryError) or (
        isinstance(error, RuntimeError) and "can't allocate memory" in str(error)
    )


def escape_undecodable_output() -> None:
    """Print what stdout and stderr cannot encode (a file name that is not UTF-8) as escapes, never a traceback."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")


def display(path: str) -> str:
    """``path`` as it can be printed: undecodable bytes of a file name shown as escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")
