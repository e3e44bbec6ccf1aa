"""Which snapshot ``autoload`` resumes from: the highest number in the name that ``torch.load`` can read."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping

import torch

from lightning_chainer.files import named_files


class SnapshotError(ValueError):
    """Snapshots were found to resume from, but none of them can be read; the message is one sentence."""


def list_snapshots(out: str, filename: str = "snapshot_iter_{.updater.iteration}") -> list[str]:
    """Complete snapshots in ``out`` named by the template, oldest first (temporary files are hidden dot-files).

    Args:
        out: the snapshot folder.
        filename: the template, in Chainer's spelling or ours (``{.updater.iteration}`` and ``{iteration}`` find
            the same files); its iteration (else epoch_detail, epoch) orders the files, the modification time
            only where the name holds no number.
    """
    return named_files(out, filename)


def find_latest_snapshot(out: str, filename: str = "snapshot_iter_{.updater.iteration}") -> str | None:
    """The newest complete snapshot in ``out`` (the highest number in its name), or None.

    Args:
        out: the snapshot folder.
        filename: the snapshot's file name template.
    """
    paths = list_snapshots(out, filename)
    return paths[-1] if paths else None


def state_dict_problem(path: str) -> str | None:
    """Why ``path`` is not a ``snapshot_object`` file; None when ``torch.load`` reads a ``state_dict`` from it.

    Args:
        path: a snapshot_object file.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        return "torch.load could not read it (truncated or not a state_dict)"
    return None if isinstance(state, Mapping) else "it is not a state_dict"


def snapshot_problem(path: str) -> str | None:
    """Why the run cannot resume from ``path``; None when it is a checkpoint ``torch.load`` reads with a state_dict.

    Args:
        path: a snapshot file.
    """
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        return "torch.load could not read it (truncated or not a checkpoint)"
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        return "it is not a Lightning checkpoint (no state_dict)"
    return None


def newest_readable_snapshot(
    out: str, filename: str, report: bool = True, problem: Callable[[str], str | None] = snapshot_problem
) -> str | None:
    """The newest snapshot in ``out`` that ``problem`` accepts, or None when there is none at all.

    Each newer snapshot passed over is named on stderr, one line each, when ``report`` is true.

    Args:
        out: the snapshot folder.
        filename: the snapshot's file name template.
        report: print the skipped files (rank 0 only).
        problem: why a file cannot be loaded, or None (:func:`snapshot_problem`, :func:`state_dict_problem`).

    Raises:
        SnapshotError: snapshots exist but none of them can be read.
    """
    skipped: list[tuple[str, str]] = []
    for path in reversed(list_snapshots(out, filename)):
        why_not = problem(path)
        if why_not is None:
            for bad, why in skipped if report else ():
                print(f"autoload: skipped {bad}: {why}; resuming from {path}.", file=sys.stderr, flush=True)
            return path
        skipped.append((path, why_not))
    if not skipped:
        return None
    names = ", ".join(f"{path} ({why})" for path, why in skipped)
    them = "it" if len(skipped) == 1 else "them"
    raise SnapshotError(f"no snapshot in {out} can be resumed from: {names}; move {them} away to start over.")
