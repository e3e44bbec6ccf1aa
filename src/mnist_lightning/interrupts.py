"""Ctrl-C and SIGTERM end a run with one sentence and the shell's status (130, 143), never a silent exit 0.

Lightning stops its loops gracefully on both: on SIGINT it raises ``KeyboardInterrupt`` and ends with ``sys.exit(1)``,
on SIGTERM it finishes the current batch and raises ``SIGTERMException``, a ``SystemExit`` whose status is 0. A
scheduler would take either for something it is not, so the CLI installs :class:`InterruptWatch` to remember which
signal arrived and turn the exit into a sentence and ``128 + signal``. Lightning's own SIGTERM handler (and the
SIGUSR1 requeue handler it installs under SLURM) keep running: Lightning calls the handler found here as well.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
from types import FrameType


class RunInterrupted(Exception):
    """A signal arrived outside Lightning's loops (while reading data, before ``fit`` or after ``test``)."""


class InterruptWatch:
    """Remembers the first SIGINT or SIGTERM; outside Lightning's loops it stops the run at once."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def install(self) -> None:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum
        if signum == signal.SIGINT:
            raise KeyboardInterrupt  # Lightning's graceful shutdown catches it inside its loops
        if signal.getsignal(signal.SIGTERM) == self._on_signal:
            # Installed directly, so Lightning's handler is not: no loop will stop on its own.
            raise RunInterrupted

    @property
    def status(self) -> int:
        """The shell's exit status for the signal: 128 + its number."""
        return 128 + (self.signum or 0)

    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else "a signal"


def resume_command(argv: list[str], snapshot: str) -> str:
    """The command line that resumes this run from ``snapshot``: the same flags, without ``-r``/``--autoload``."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in ("-r", "--resume"):
            skip = True
            continue
        if arg == "--autoload" or arg.startswith("--resume="):
            continue
        kept.append(arg)
    return shlex.join([*_program(), *kept, "-r", snapshot])


def _program() -> list[str]:
    """How this process was started: ``python scripts/train.py``, ``python -m mnist_lightning`` or a console script."""
    started = sys.argv[0]
    if os.path.basename(started) == "__main__.py":
        return ["python", "-m", __package__ or "mnist_lightning"]
    return ["python", started] if started.endswith(".py") else [started]


def interrupted_message(signame: str, iteration: int, snapshot: str | None, argv: list[str]) -> str:
    """One sentence: what stopped the run, where, and the command that resumes it."""
    if snapshot is None:
        return (
            f"interrupted by {signame} at iteration {iteration}, before the first snapshot was written: "
            "run the same command again to start over."
        )
    return (
        f"interrupted by {signame} at iteration {iteration}: resume from the last snapshot with "
        f"`{resume_command(argv, snapshot)}`."
    )
