"""DDP's process-group timeout (``--ddp-timeout``), and one sentence when a run loses or never meets a peer.

Lightning gives the process group a 30-minute timeout, so a rank that dies, stops or never starts (a second node
nobody launched) leaves the others waiting that long without a word. :func:`apply_ddp_timeout` sets the timeout of
the Trainer's DDP strategy, whichever flag chose it (``--strategy ddp``, ``ddp_spawn``, or ``auto`` on several
devices). Where Lightning starts the rank processes itself, it also replaces Lightning's child-process observer,
which SIGKILLs rank 0 silently when a child dies, by a watch that ends the run with a sentence and stops the children
that would outlive rank 0. :func:`distributed_error_message` turns the errors of a lost peer into that sentence.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import lightning as L
from lightning.fabric.utilities.distributed import _set_num_threads_if_needed
from lightning.pytorch.strategies import DDPStrategy
from lightning.pytorch.strategies.launchers import _SubprocessScriptLauncher
from torch.multiprocessing import ProcessExitedException

DEFAULT_DDP_TIMEOUT = 180
#: How long a killed child's exit status may lag behind the closing of its sockets, which rank 0 sees first.
_REAP_SECONDS = 2.0
#: Rank 0 normally meets a dead child at its next collective and reports from there; the watch speaks after this.
_GRACE_SECONDS = 5.0
_POLL_SECONDS = 0.5

#: The timeout this process gave its process group, for the sentences (None before apply_ddp_timeout).
_timeout_seconds: int | None = None

_JOINED = re.compile(r"Timed out after \d+ seconds waiting for clients\. (\d+)/(\d+) clients joined")
_COLLECTIVE_TIMEOUT = re.compile(
    r"Timed out waiting \d+ms for (?:recv|send) operation|Watchdog caught collective operation timeout"
    r"|ran for \d+ milliseconds before timing out|NCCL communicator was aborted"
)
_STORE_TIMEOUT = re.compile(r"wait timeout after \d+ms|Socket Timeout|timed out waiting for key", re.IGNORECASE)
_CONNECTION = re.compile(
    r"Connection (?:closed|reset) by peer|Broken pipe|Connection refused|remote process exited", re.IGNORECASE
)


class PeerLostError(RuntimeError):
    """Rank 0 lost a rank process it started; the message is the sentence for the user."""


def apply_ddp_timeout(trainer: L.Trainer, seconds: int) -> None:
    """Give the Trainer's DDP process group a timeout of ``seconds``; any other strategy is left as it is.

    Args:
        trainer: a Trainer built but not yet fitted (the process group is made when ``fit`` starts).
        seconds: how long a rank waits for the others to join and, later, in each collective.
    """
    global _timeout_seconds
    if isinstance(trainer.strategy, DDPStrategy):
        _timeout_seconds = seconds
        # "Initializing distributed: GLOBAL_RANK: 0, MEMBER: 1/2" on stderr is start-up chatter like the rest of
        # Lightning's, which the CLI keeps off the console: a run that fails must leave one line there.
        logging.getLogger("lightning.fabric.utilities.distributed").setLevel(logging.WARNING)
        _take_over(trainer.strategy, seconds)


def _take_over(strategy: DDPStrategy, seconds: int) -> None:
    """Set the strategy's timeout and swap its subprocess launcher for one that reports lost children.

    Lightning takes the timeout only in ``DDPStrategy(timeout=...)``, but the strategy is built by Lightning's
    accelerator connector from a name (``ddp``, ``ddp_spawn``, or the ``auto`` choice), and the launcher is chosen
    there too: both are private attributes, set once here before ``fit`` makes the process group.
    """
    strategy._timeout = timedelta(seconds=seconds)
    launcher = strategy._launcher
    if type(launcher) is _SubprocessScriptLauncher:
        strategy._launcher = _WatchingLauncher(launcher.cluster_environment, launcher.num_processes, launcher.num_nodes)


class _WatchingLauncher(_SubprocessScriptLauncher):
    """Lightning's script launcher, with :class:`_ChildWatch` in place of its observer and no orphans on failure."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._watch: _ChildWatch | None = None

    def launch(self, function: Callable, *args: Any, trainer: L.Trainer | None = None, **kwargs: Any) -> Any:
        """Start the other ranks (once) as Lightning does, then run ``function``; a peer's loss becomes a sentence."""
        self.cluster_environment.validate_settings(num_devices=self.num_processes, num_nodes=self.num_nodes)
        if not self.cluster_environment.creates_processes_externally:
            self._call_children_scripts()
            self._watch = _ChildWatch(self.procs)
            self._watch.start()
        _set_num_threads_if_needed(num_processes=self.num_processes)
        try:
            return function(*args, **kwargs)
        except Exception as error:
            lost = self._failed(error)
            if lost is None:
                raise
            raise lost from error
        except BaseException:
            # Ctrl-C and SIGTERM: Lightning stops the children itself; the watch must not report their exit.
            if self._watch is not None:
                self._watch.stand_down()
            raise

    def _failed(self, error: Exception) -> PeerLostError | None:
        """Stop the children (a stopped or hung one would outlive rank 0); the error naming the lost one, if any."""
        if self._watch is None:
            return None
        self._watch.stand_down()
        distributed = distributed_error_message(error) is not None
        dead = _first_failed(self.procs, wait=_REAP_SECONDS if distributed else 0.0)
        self.kill(signal.SIGKILL)
        for proc in self.procs:
            proc.wait()
        return PeerLostError(_child_sentence(*dead)) if distributed and dead is not None else None


class _ChildWatch(threading.Thread):
    """Ends rank 0 with one sentence when a child rank fails while rank 0 is stuck where it cannot notice.

    Rank 0 usually meets a dead peer at its next collective (gloo raises at once) and reports it through the
    launcher; a collective that waits instead (NCCL) would hold it until the timeout, so after a grace period this
    thread kills the other children, prints the sentence as the CLI would and exits with status 2.
    """

    def __init__(self, procs: list[subprocess.Popen]) -> None:
        super().__init__(daemon=True, name="child-rank-watch")
        self._procs = procs
        self._done = threading.Event()
        # Held by whoever reports the failure, never released: rank 0's own report and this thread's exclude each other.
        self._reporting = threading.Lock()

    def stand_down(self) -> None:
        """Rank 0 reports (or is interrupted) itself; blocks only while this thread is ending the process."""
        if not self._done.is_set():
            self._reporting.acquire()
            self._done.set()

    def run(self) -> None:
        while not self._done.wait(_POLL_SECONDS):
            codes = [proc.poll() for proc in self._procs]
            if all(code == 0 for code in codes):
                return
            if any(codes):
                break
        if self._done.wait(_GRACE_SECONDS) or not self._reporting.acquire(blocking=False):
            return
        dead = _first_failed(self._procs, wait=0.0)
        for proc in self._procs:
            proc.send_signal(signal.SIGKILL)
        if dead is not None:
            print(f"error: {_child_sentence(*dead)}", file=sys.stderr, flush=True)
        os._exit(2)


def _first_failed(procs: list[subprocess.Popen], wait: float) -> tuple[int, subprocess.Popen] | None:
    """The (rank, process) of the first child that ended with an error, waiting up to ``wait`` s for them to end."""
    deadline = time.monotonic() + wait
    for rank, proc in enumerate(procs, start=1):
        try:
            proc.wait(timeout=max(deadline - time.monotonic(), 0.0))
        except subprocess.TimeoutExpired:
            continue
        if proc.returncode:
            return rank, proc
    return None


def _how_it_ended(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


def _child_sentence(rank: int, proc: subprocess.Popen) -> str:
    return (
        f"rank {rank} (process {proc.pid}) {_how_it_ended(proc.returncode)} during the run, so rank 0 stopped the "
        "others: check that process's output above and the machine's memory (the out-of-memory killer sends SIGKILL)."
    )


def _timeout_words() -> str:
    return f"--ddp-timeout {_timeout_seconds} s" if _timeout_seconds is not None else "the process-group timeout"


def distributed_error_message(error: BaseException) -> str | None:
    """One sentence (no ``error:`` prefix, ending with ".") for an error a lost or missing DDP peer causes, else None.

    Args:
        error: any exception that ended the run.
    """
    if isinstance(error, PeerLostError):
        return str(error)
    if isinstance(error, ProcessExitedException):  # ddp_spawn: torch.multiprocessing saw a rank process end
        how = f"was killed by {error.signal_name}" if error.signal_name else f"exited with status {error.exit_code}"
        return (
            f"rank {error.error_index} (process {error.error_pid}) {how} during the run, so the others were stopped: "
            "check the machine's memory (the out-of-memory killer sends SIGKILL) and that process's output above."
        )
    return _message_for_text(str(error))


def _message_for_text(text: str) -> str | None:
    """The sentence for an error text from the store, gloo or NCCL (also inside a ddp_spawn child's traceback)."""
    joined = _JOINED.search(text)
    if joined:
        return (
            f"only {joined[1]} of the {joined[2]} DDP processes joined within {_timeout_words()}: start the same "
            "command on every node (each with its own node rank, the same --num-nodes, --devices, MASTER_ADDR and "
            "MASTER_PORT), check that the nodes reach the master's port, or raise --ddp-timeout."
        )
    if _COLLECTIVE_TIMEOUT.search(text):
        backend = "an NCCL" if "NCCL" in text else "a gloo"
        return (
            f"{backend} collective waited {_timeout_words()} for another rank that stopped answering (stopped, "
            "hung or cut off): check that every rank's process is still running and, across nodes, the network "
            "and the other node's command, or raise --ddp-timeout if a rank is slow on purpose."
        )
    if _STORE_TIMEOUT.search(text):
        return (
            f"the DDP processes did not all start within {_timeout_words()}: a rank never reached the rendezvous, "
            "so check the other node's command (same --num-nodes, --devices and MASTER_PORT) and its output, "
            "or raise --ddp-timeout."
        )
    if _CONNECTION.search(text):
        return (
            "the connection to another rank closed during the run, so that rank's process ended (crashed, killed "
            "or out of memory): check its output and, across nodes, the other node's command and the network "
            f"({_timeout_words()} bounds how long the ranks wait for each other)."
        )
    return None
