"""DDP through the real command line: a missing or lost peer ends in one sentence, two torchrun nodes log once."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import pytest
from test_cli import TRAIN, assert_one_sentence, train
from torch.multiprocessing import ProcessExitedException

from mnist_lightning import distributed
from mnist_lightning.distributed import apply_ddp_timeout, distributed_error_message

TORCHRUN = str(Path(sys.executable).with_name("torchrun"))
ENV = {**os.environ, "PYTHONWARNINGS": "ignore"}
QUIET = ["--accelerator", "cpu", "--no-progress", "--noplot"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun_node(port: int, node_rank: int) -> list[str]:
    """torchrun for one of two one-process "nodes" meeting on this machine."""
    rendezvous = ["--master-addr", "127.0.0.1", "--master-port", str(port)]
    return [TORCHRUN, "--nnodes", "2", "--nproc-per-node", "1", "--node-rank", str(node_rank), *rendezvous]


def start(command: list[str], cwd: Path, stdout: object = subprocess.DEVNULL) -> subprocess.Popen:
    """A process in its own process group, so that :func:`stop` can end it with everything it started."""
    return subprocess.Popen(
        command, cwd=cwd, env=ENV, stdout=stdout, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


def stop(process: subprocess.Popen) -> None:
    """SIGKILL what this test started and is still running: the process, its group, and its descendants.

    torchrun starts its workers in sessions of their own, out of reach of the group.
    """
    pids = descendants(process.pid) if process.poll() is None else []
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait()


def children(pid: int) -> list[int]:
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
        return [int(p) for task in tasks for p in (task / "children").read_text().split()]
    except FileNotFoundError:  # it ended meanwhile
        return []


def descendants(pid: int) -> list[int]:
    found = children(pid)
    return found + [d for child in found for d in descendants(child)]


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def finished(process: subprocess.Popen, timeout: float) -> subprocess.CompletedProcess:
    _, stderr = process.communicate(timeout=timeout)
    return subprocess.CompletedProcess(process.args, process.returncode, "", stderr)


@pytest.mark.parametrize("strategy", ["ddp", "ddp_spawn"])
def test_num_nodes_2_without_the_second_node_ends_in_one_sentence(
    strategy: str, tmp_path: Path, tiny_mnist: Path
) -> None:
    args = ["--data-dir", str(tiny_mnist), "-e", "1", *QUIET, "--num-nodes", "2", "--devices", "1"]
    result = train([*args, "--strategy", strategy, "--ddp-timeout", "10"], tmp_path, timeout=120)
    pattern = r"^error: only 1 of the 2 DDP processes joined within --ddp-timeout 10 s: start the same command"
    if strategy == "ddp":
        assert_one_sentence(result, pattern)
    else:  # the spawned rank process prints Lightning's "Initializing distributed" line before the sentence
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        lines = result.stderr.strip().splitlines()
        assert [line for line in lines if line.startswith("error: ")] == lines[-1:], result.stderr
        assert re.search(pattern, lines[-1]) and lines[-1].endswith("."), lines[-1]
    assert not (tmp_path / "lightning_logs").exists()


def test_torchrun_node_whose_peer_never_starts_training_ends_in_one_sentence(tmp_path: Path, tiny_mnist: Path) -> None:
    # torchrun's own rendezvous waits for the second node's torchrun before it starts the script (10 minutes by
    # default, its --rdzv-conf timeout); here the second torchrun comes, but its worker never joins the process group.
    port = free_port()
    peer = start([*torchrun_node(port, 1), "--no-python", "sleep", "600"], tmp_path)
    logs = tmp_path / "torchrun_logs"
    args = ["--data-dir", str(tiny_mnist), "-e", "1", *QUIET, "--num-nodes", "2", "--devices", "1", "--strategy", "ddp"]
    worker = [TRAIN, *args, "--ddp-timeout", "10"]
    node = start([*torchrun_node(port, 0), "--log-dir", str(logs), "--redirects", "2", *worker], tmp_path)
    try:
        result = finished(node, timeout=180)
    finally:
        stop(node)
        stop(peer)
    assert result.returncode != 0
    (worker_log,) = logs.glob("*/attempt_0/0/stderr.log")
    lines = worker_log.read_text().strip().splitlines()
    assert re.fullmatch(r"error: the DDP processes did not all start within --ddp-timeout 10 s: .*\.", lines[-1])
    # Above it, nothing but the C++ warnings c10d logs while its socket waits ("[W... socket.cpp] waitForInput").
    assert all(line.startswith("[W") for line in lines[:-1]), lines
    assert not (tmp_path / "lightning_logs").exists()


@pytest.mark.parametrize(
    ("signum", "pattern"),
    [
        (signal.SIGKILL, r"^error: rank 1 \(process \d+\) was killed by SIGKILL during the run, so rank 0 stopped"),
        (signal.SIGSTOP, r"^error: a gloo collective waited --ddp-timeout 15 s for another rank that stopped"),
    ],
    ids=["killed", "stopped"],
)
def test_rank_1_lost_mid_training_ends_rank_0_in_one_sentence_and_leaves_no_process(
    signum: int, pattern: str, tmp_path: Path, tiny_mnist: Path
) -> None:
    out = tmp_path / "out"
    args = ["--data-dir", str(tiny_mnist), "-e", "1000", *QUIET, "--strategy", "ddp", "--devices", "2", "-o", str(out)]
    # Rank 0 also waits this long for rank 1 to start: it must cover a slow machine's start-up.
    rank0 = start([sys.executable, TRAIN, *args, "--ddp-timeout", "15"], tmp_path)
    try:
        deadline = time.monotonic() + 180
        while not (out / "log").exists():  # the first epoch is done: both ranks are training
            assert rank0.poll() is None and time.monotonic() < deadline, rank0.stderr.read() if rank0.stderr else ""
            time.sleep(0.05)
        (rank1,) = children(rank0.pid)
        os.kill(rank1, signum)
        result = finished(rank0, timeout=180)
        assert not alive(rank1), "rank 1 outlived rank 0"
    finally:
        stop(rank0)
    assert_one_sentence(result, pattern)
    json.loads((out / "log").read_text())  # what was written is complete
    assert {p.name for p in out.iterdir()} <= {"log", "model_best", *(p.name for p in out.glob("snapshot_iter_*"))}


def test_child_watch_ends_a_stuck_rank_0_with_one_sentence(tmp_path: Path) -> None:
    # Rank 0 stuck where it cannot see the dead peer (an NCCL collective) is what Lightning's observer SIGKILLs.
    script = (
        "import subprocess, sys, time\n"
        "from mnist_lightning.distributed import _ChildWatch\n"
        "sleeper = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        "dying = subprocess.Popen([sys.executable, '-c', 'import os, signal; os.kill(os.getpid(), signal.SIGKILL)'])\n"
        "print(sleeper.pid, flush=True)\n"
        "_ChildWatch([sleeper, dying]).start()\n"
        "time.sleep(600)\n"
    )
    rank0 = start([sys.executable, "-c", script], tmp_path, stdout=subprocess.PIPE)
    try:
        assert rank0.stdout is not None
        sleeper = int(rank0.stdout.readline())
        result = finished(rank0, timeout=120)
        assert not alive(sleeper), "the other child outlived rank 0"
    finally:
        stop(rank0)
    assert_one_sentence(result, r"^error: rank 2 \(process \d+\) was killed by SIGKILL during the run")


def test_two_torchrun_nodes_write_one_log_equal_to_one_process(tmp_path: Path, mnist_dir: Path) -> None:
    # Two ranks of -b 64 cut the same 128 samples per step as one process of -b 128, and DDP's gradient is the mean of
    # the ranks' means: the logs agree. Validation runs over all 12,000 samples, as a batch limit counts per rank.
    args = ["--data-dir", str(mnist_dir), "--limit-train-batches", "10", "-e", "1", "--deterministic", *QUIET]
    cwd = tmp_path / "nodes"
    cwd.mkdir()
    port = free_port()
    nodes_args = [TRAIN, *args, "-b", "64", "--num-nodes", "2", "--devices", "1", "--strategy", "ddp"]
    stdout = [(tmp_path / f"node{rank}.out").open("w") for rank in (0, 1)]
    nodes = [start([*torchrun_node(port, rank), *nodes_args], cwd, stdout=stdout[rank]) for rank in (0, 1)]
    try:
        results = [finished(node, timeout=300) for node in nodes]
    finally:
        for node in nodes:
            stop(node)
    for result in results:
        assert result.returncode == 0, result.stderr
    (tmp_path / "single").mkdir()
    single = train([*args, "-b", "128"], tmp_path / "single")
    assert single.returncode == 0, single.stderr

    assert [p.name for p in (cwd / "lightning_logs").iterdir()] == ["version_0"]
    assert list(cwd.rglob("log")) == [cwd / "lightning_logs" / "version_0" / "log"]
    log = json.loads((cwd / "lightning_logs" / "version_0" / "log").read_text())
    reference = json.loads((tmp_path / "single" / "lightning_logs" / "version_0" / "log").read_text())
    assert [e.keys() for e in log] == [e.keys() for e in reference]
    for entry, expected in zip(log, reference, strict=True):
        for key in expected.keys() - {"elapsed_time"}:
            assert entry[key] == pytest.approx(expected[key], rel=1e-6, abs=1e-6), key
    node_out = [(tmp_path / f"node{rank}.out").read_text() for rank in (0, 1)]
    assert node_out[1] == ""  # only global rank 0 prints
    tested = [line for line in node_out[0].splitlines() if line.startswith("test/")]
    assert tested == [line for line in single.stdout.splitlines() if line.startswith("test/")] and len(tested) == 2


def test_bad_ddp_timeout_is_one_sentence(tmp_path: Path, tiny_mnist: Path) -> None:
    result = train(["--data-dir", str(tiny_mnist), "--ddp-timeout", "0"], tmp_path)
    assert_one_sentence(result, r"--ddp-timeout: .*positive integer, got 0")


@pytest.mark.parametrize(
    "kwargs",
    [{"strategy": "ddp", "devices": 2}, {"strategy": "ddp_spawn", "devices": 2}, {"devices": 2}, {"num_nodes": 2}],
    ids=["ddp", "ddp_spawn", "auto-devices", "auto-nodes"],
)
def test_the_timeout_reaches_whichever_ddp_strategy_lightning_builds(
    kwargs: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(distributed, "_timeout_seconds", None)
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, **kwargs)
    apply_ddp_timeout(trainer, 42)
    # DDPStrategy keeps it privately until fit() makes the process group with it.
    assert trainer.strategy._timeout.total_seconds() == 42


def test_a_single_device_run_ignores_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(distributed, "_timeout_seconds", None)
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False)
    apply_ddp_timeout(trainer, 42)
    assert not hasattr(trainer.strategy, "_timeout") and distributed._timeout_seconds is None


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("Timed out after 11 seconds waiting for clients. 1/4 clients joined.", r"^only 1 of the 4 DDP processes"),
        ("[gloo/transport/tcp/unbound_buffer.cc:78] Timed out waiting 10000ms for recv operation to complete", "gloo"),
        ("[Rank 0] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=9, OpType=ALLREDUCE)", "an NCCL"),
        ("wait timeout after 10000ms, keys: /default_pg/0//cpu//0/1", r"^the DDP processes did not all start"),
        ("[gloo/transport/tcp/pair.cc:545] Read error [127.0.0.1]:5: Connection reset by peer.", "connection to"),
        ("[gloo/transport/tcp/pair.cc:534] Connection closed by peer [127.0.0.1]:29500", "connection to another rank"),
    ],
)
def test_messages_name_what_happened_and_the_timeout(text: str, pattern: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(distributed, "_timeout_seconds", 10)
    message = distributed_error_message(RuntimeError(text))
    assert message is not None and re.search(pattern, message), message
    assert message.endswith(".") and "\n" not in message and "--ddp-timeout" in message


def test_a_spawned_rank_killed_and_other_errors() -> None:
    killed = ProcessExitedException("process 1 terminated with signal SIGKILL", 1, 4321, 0, "SIGKILL")
    assert distributed_error_message(killed) == (
        "rank 1 (process 4321) was killed by SIGKILL during the run, so the others were stopped: check the machine's "
        "memory (the out-of-memory killer sends SIGKILL) and that process's output above."
    )
    assert distributed_error_message(RuntimeError("mat1 and mat2 shapes cannot be multiplied")) is None
    assert distributed_error_message(ValueError("bad value")) is None
