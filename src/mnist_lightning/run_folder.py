"""One run, one folder: ``lightning_logs/version_N`` claimed atomically, and a lock file held for the run's life.

Two runs started at once must not take the same ``version_N`` or write into the same ``-o``: the version folder is
claimed with ``mkdir`` (the next number on ``EEXIST``), and the output folder holds a lock file naming the process
that uses it. DDP, torchrun and SLURM start the script once per rank; only the process of global rank 0 claims and
locks, the others write nothing (Lightning broadcasts rank 0's folder to them).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import tempfile
from pathlib import Path

LOCK_NAME = ".lock"
#: Set by the process that claimed ``version_N`` so the rank processes Lightning starts from it find the same folder.
VERSION_ENV = "MNIST_LIGHTNING_RUN_VERSION"
#: What a run leaves in its folder before it trains; a folder holding nothing else is removed when the run fails early.
_EARLY_FILES = ("hparams.yaml", LOCK_NAME)
_EARLY_PREFIXES = ("events.out.tfevents.",)


class FolderInUseError(RuntimeError):
    """Another live process holds the output folder's lock; the message names it."""


def is_rank_zero_process() -> bool:
    """False in a process that a launcher (Lightning's DDP, torchrun, SLURM's srun) started for a rank other than 0."""
    for name in ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "JSM_NAMESPACE_RANK"):
        if os.environ.get(name, "0") not in ("", "0"):
            return False
    return True


def claim_version(root: str | os.PathLike = "lightning_logs") -> tuple[int, list[Path]]:
    """Create the next free ``root/version_N`` and return N with the folders this call created (deepest first).

    ``mkdir`` either creates the folder or fails with ``FileExistsError``, so two processes racing for the same
    number cannot both get it: the loser takes the next number.
    """
    root = Path(root).absolute()
    created = [p for p in (root, *root.parents) if not p.exists()]
    root.mkdir(parents=True, exist_ok=True)
    numbers = [int(p.name[8:]) for p in root.iterdir() if p.name.startswith("version_") and p.name[8:].isdigit()]
    version = max(numbers, default=-1) + 1
    while True:
        folder = root / f"version_{version}"
        try:
            folder.mkdir()
        except FileExistsError:
            version += 1
            continue
        return version, [folder, *created]


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (``/proc/PID/stat``), so a reused PID is told apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[-1].split()[19]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _owner_alive(owner: dict) -> bool:
    """Whether the process that wrote a lock still runs; a lock of another host is taken as live."""
    if owner.get("host") != socket.gethostname():
        return True
    if owner.get("boot_id") and owner.get("boot_id") != _boot_id():
        return False  # the host rebooted since
    pid = owner.get("pid")
    if not isinstance(pid, int) or not _alive(pid):
        return False
    started = owner.get("start_time")
    return not started or not _start_time(pid) or started == _start_time(pid)


class RunLock:
    """The lock file ``folder/.lock`` of a run: created whole with ``link`` (never half-written), removed at the end.

    Args:
        folder: the output folder to lock.
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        self.path = Path(folder) / LOCK_NAME
        self.held = False

    def acquire(self) -> None:
        """Take the lock, replacing a stale one (its process is gone or the host rebooted); FolderInUseError if held."""
        owner = {"pid": os.getpid(), "host": socket.gethostname(), "boot_id": _boot_id()}
        owner["start_time"] = _start_time(os.getpid())
        fd, tmp = tempfile.mkstemp(prefix=".lock.", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(owner, f)
            for _ in range(3):
                try:
                    os.link(tmp, self.path)  # fails if the lock exists: creating it is atomic, with its content
                except FileExistsError:
                    holder = self._holder()
                    if holder is not None and _owner_alive(holder):
                        raise FolderInUseError(self._in_use_message(holder)) from None
                    self.path.unlink(missing_ok=True)
                    continue
                self.held = True
                return
            raise FolderInUseError(f"{self.path.parent} is being claimed by another run at this moment.")
        finally:
            os.unlink(tmp)

    def _holder(self) -> dict | None:
        try:
            holder = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        return holder if isinstance(holder, dict) else None

    def _in_use_message(self, holder: dict) -> str:
        where = "" if holder.get("host") == socket.gethostname() else f" on host {holder.get('host')}"
        return (
            f"{self.path.parent} is in use by another run (process {holder.get('pid')}{where}); wait for it to end or "
            f"choose another -o (if that run is gone, delete {self.path})."
        )

    def release(self) -> None:
        """Remove the lock if this process holds it."""
        if self.held:
            holder = self._holder()
            if holder is not None and holder.get("pid") == os.getpid():
                # A folder made read-only or immutable mid-run keeps the lock: its process is gone, so it is stale.
                with contextlib.suppress(OSError):
                    self.path.unlink(missing_ok=True)
            self.held = False


def remove_if_unused(folders: list[Path]) -> None:
    """Remove each folder (deepest first) that holds nothing but what a run writes before its first step."""
    for folder in folders:
        if not folder.is_dir():
            continue
        entries = list(folder.iterdir())
        if all(e.is_file() and (e.name in _EARLY_FILES or e.name.startswith(_EARLY_PREFIXES)) for e in entries):
            for entry in entries:
                entry.unlink()
            folder.rmdir()
