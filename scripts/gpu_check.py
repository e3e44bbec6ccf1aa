"""Measure every GPU claim of the template with one command, in a few minutes, and write the figures down.

Seven steps run in order, each in processes of its own with its own time limit; a step that fails is recorded
(with the last lines of its stderr) and the next one still runs:

    train_lenet  scripts/train.py --accelerator gpu -e 2 (data on the device): s/epoch from the log's elapsed_time,
                 validation and test accuracy, peak GPU memory (torch.cuda.max_memory_allocated)
    train_mlp    the same with --model mlp
    host_syncs   one epoch with every extension on, under torch.cuda.set_sync_debug_mode("warn") and a count of
                 host reads: syncs per training step, which must be 0 outside the logger's and the reports' steps
    benchmark    scripts/benchmark.py --device cuda --epochs 3: the contenders side by side, per-step time and the
                 template's overhead over the floor in ms per step (Chainer only when CuPy imports)
    bf16         one epoch with --precision bf16-mixed
    compile      one epoch with --compile (skipped when train.py has no such flag)
    ddp          --strategy ddp --devices 2 -b 64 against one device with -b 128: the logs must agree to 1e-5
                 (skipped with fewer than 2 GPUs)

It ends with one table on stdout; ``--json PATH`` also writes the table and the raw figures with the GPU's name,
the torch/CUDA versions and the date. The exit status is 1 when a step failed or did not run, 0 otherwise.

Without CUDA the same steps run on the CPU with limited batches (so that the script's own test exercises every
step), host reads are counted the CPU way, DDP runs two gloo processes, and the first line says no GPU was found:
none of its figures is a GPU figure.

    python scripts/gpu_check.py [--json PATH] [--data-dir DIR] [--budget SECONDS] [--quick]
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import math
import os
import platform
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from mnist_lightning.arguments import OneLineParser, positive_int

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "scripts"
TRAIN = SCRIPTS / "train.py"
BENCHMARK = SCRIPTS / "benchmark.py"

STEPS = ("train_lenet", "train_mlp", "host_syncs", "benchmark", "bf16", "compile", "ddp")
TITLES = {
    "train_lenet": "1. train.py -e 2, LeNet (data on the device on CUDA)",
    "train_mlp": "1. train.py -e 2, MLP (data on the device on CUDA)",
    "host_syncs": "2. host syncs per training step, every extension on",
    "benchmark": "3. benchmark.py, contenders side by side",
    "bf16": "4. --precision bf16-mixed, one epoch",
    "compile": "4. --compile, one epoch",
    "ddp": "5. --strategy ddp --devices 2 against one device",
}
#: Seconds each step may take at most (all its processes together), within the overall ``--budget``.
STEP_LIMITS = {
    "train_lenet": 120, "train_mlp": 90, "host_syncs": 120, "benchmark": 300, "bf16": 90, "compile": 180, "ddp": 180,
}  # fmt: skip
DEFAULT_BUDGET = 465  # seconds for all steps: the whole command stays under 8 minutes
MIN_STEP_SECONDS = 15  # a step is not started with less time than this left in the budget
LENET_EPOCH_GOAL = 0.5  # seconds per LeNet epoch on a data-centre GPU
DDP_TOLERANCE = 1e-5
TRAIN_BATCH = 128
STDERR_LINES = 15
#: Tensor methods that copy a value to the host (the count the CPU can make; see tests/test_overhead.py).
HOST_READS = {"item", "tolist", "numpy", "cpu", "__bool__", "__float__", "__int__", "__index__", "__format__"}
SYNC_WARNING = "synchronizing CUDA operation"


# --------------------------------------------------------------------------------------------------------------
# Settings: what a step runs with, on the GPU, on the CPU, and with --quick
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """Where the steps run and how far: ``cuda`` with every batch, or the CPU (and ``--quick``) with few."""

    cuda: bool
    gpus: int
    quick: bool
    data_dir: str
    budget: float
    inject_failure: str | None = None

    @property
    def accelerator(self) -> list[str]:
        """The device flags of one single-device run."""
        return ["--accelerator", "gpu" if self.cuda else "cpu", "--devices", "1"]

    def limits(self) -> list[str]:
        """Batch limits: none on the GPU (unless ``--quick``), a few on the CPU, fewer with ``--quick``."""
        if self.cuda and not self.quick:
            return []
        train, val = (3, 2) if self.quick else (20, 5)
        return ["--limit-train-batches", str(train), "--limit-val-batches", str(val)]

    def host_sync_batches(self) -> int | None:
        """Training batches of the host-sync epoch: all on the GPU; past the first logger step on the CPU."""
        return None if self.cuda and not self.quick else 55

    def ddp_batches(self) -> int:
        """Training batches per rank of the DDP comparison (steps drift apart in float32 over many more)."""
        return 3 if self.quick else (10 if not self.cuda else 50)

    def benchmark_argv(self, cupy: bool) -> list[str]:
        """The benchmark's flags: the full GPU run, or one tiny epoch of a few contenders on the CPU."""
        argv = ["--data-dir", self.data_dir]
        if self.cuda and not self.quick:
            argv += ["--device", "cuda", "--epochs", "3"]
        elif self.cuda:
            argv += ["--device", "cuda", "--epochs", "1", "--limit-batches", "2"]
        else:
            argv += ["--device", "cpu", "--epochs", "1", "--limit-batches", "2" if self.quick else "5"]
        if self.quick:
            argv += ["--threads", "1", "--only", "template,floor"]
        elif self.cuda and not cupy:
            argv += ["--only", "template,no_extensions,plain_lightning,hand_loop,floor"]
        return argv


# --------------------------------------------------------------------------------------------------------------
# Running one process with a time limit
# --------------------------------------------------------------------------------------------------------------


@dataclass
class Finished:
    """How one process ended: its status (None when killed at its time limit), output and seconds."""

    argv: list[str]
    returncode: int | None
    stdout: str
    stderr: str
    seconds: float

    @property
    def ok(self) -> bool:
        """Whether it ended with status 0."""
        return self.returncode == 0

    def tail(self) -> list[str]:
        """The last non-empty lines of its stderr."""
        return [line for line in self.stderr.splitlines() if line.strip()][-STDERR_LINES:]

    def why(self) -> str:
        """One phrase saying how it failed."""
        if self.returncode is None:
            return f"killed at its time limit after {self.seconds:.0f} s"
        lines = self.tail()
        return f"exit status {self.returncode}" + (f": {lines[-1].strip()}" if lines else "")


def run_process(argv: list[str], cwd: Path, timeout: float) -> Finished:
    """Run ``argv`` in its own process group; past ``timeout`` the whole group (DDP ranks included) is killed."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    start = time.perf_counter()
    process = subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, stderr = process.communicate(timeout=max(timeout, 1.0))
        code: int | None = process.returncode
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        stdout, stderr = process.communicate()
        code = None
    return Finished(argv, code, stdout, stderr, time.perf_counter() - start)


class StepFailed(Exception):
    """A step's process failed or a figure it measured breaks its claim; the message says which."""

    def __init__(self, message: str, finished: Finished | None = None) -> None:
        super().__init__(message)
        self.finished = finished


@dataclass
class Step:
    """One step's record: status ``ok``, ``failed``, ``skipped`` (cannot apply here) or ``not run`` (no time)."""

    id: str
    title: str
    status: str = "not run"
    seconds: float = 0.0
    summary: str = ""
    figures: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    stderr_tail: list[str] = field(default_factory=list)
    commands: list[list[str]] = field(default_factory=list)


class Context:
    """What a step function gets: the settings, a work folder, its deadline, and the record to fill in."""

    def __init__(self, settings: Settings, record: Step, folder: Path, deadline: float) -> None:
        self.settings, self.record, self.folder, self.deadline = settings, record, folder, deadline

    def left(self) -> float:
        """Seconds until this step's deadline."""
        return self.deadline - time.perf_counter()

    def broken(self, argv: list[str]) -> list[str]:
        """``argv`` with a flag no script knows when the test hook ``--inject-failure`` names this step."""
        return [*argv, "--no-such-flag"] if self.settings.inject_failure == self.record.id else argv

    def run(self, argv: list[str], cwd: Path | None = None) -> Finished:
        """Run one process of this step; a failure raises StepFailed with its stderr."""
        command = [sys.executable, *argv]
        self.record.commands.append(command)
        folder = cwd or self.folder
        folder.mkdir(parents=True, exist_ok=True)
        finished = run_process(command, folder, self.left())
        if not finished.ok:
            raise StepFailed(f"{Path(argv[0]).name} failed: {finished.why()}", finished)
        return finished

    def worker(self, kind: str, train_argv: list[str], name: str) -> tuple[Finished, dict[str, Any]]:
        """Run scripts/train.py's code in a child of this script (``--worker``) that reports what it measured."""
        result = self.folder / f"{name}.result.json"
        finished = self.run(
            [str(Path(__file__).resolve()), "--worker", kind, str(result), *self.broken(train_argv)], self.folder / name
        )
        return finished, json.loads(result.read_text())


# --------------------------------------------------------------------------------------------------------------
# Workers: scripts/train.py in a child process that reports peak memory, or counts host syncs per step
# --------------------------------------------------------------------------------------------------------------


def _peak_memory() -> dict[str, Any]:
    """This process's peak GPU memory (allocated and reserved, MiB) where CUDA ran, and its peak resident MiB."""
    import torch

    peak: dict[str, Any] = {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        peak["peak_gpu_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
        peak["peak_gpu_reserved_mib"] = torch.cuda.max_memory_reserved() / 2**20
    return peak


def worker_train(result: Path, train_argv: list[str]) -> int:
    """``scripts/train.py train_argv`` in this process, then its exit status and peak memory into ``result``."""
    from mnist_lightning import cli

    try:
        code = cli.main(train_argv)
    except SystemExit as exit_:  # argparse's errors
        code = exit_.code if isinstance(exit_.code, int) else 1
    result.write_text(json.dumps({"returncode": code, **_peak_memory()}))
    return code


class SyncCounter:
    """Counts host syncs per training step: CUDA's sync warnings (on a GPU) and tensor reads to the host.

    Each count is filed under ``where`` and ``step`` (set by :class:`Window`): ``"in"`` a training step, from the
    first callback's batch-start hook to the last callback's batch-end hook; ``"after"`` it, until the next one
    starts (the logger's write, fetching the next batch, validation at an epoch's end); ``"start"`` before the
    first step. Host reads made inside torch itself are left out, as in tests/test_overhead.py (Adam reads its
    CPU step counter); CUDA's sync warnings count everything, torch's own syncs included.
    """

    def __init__(self, cuda: bool) -> None:
        from torch.overrides import TorchFunctionMode

        counter = self

        class Reads(TorchFunctionMode):
            def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
                if getattr(func, "__name__", "") in HOST_READS:
                    caller = traceback.extract_stack(limit=2)[0]
                    if "/torch/" not in caller.filename:
                        counter.count("host_reads", f"{Path(caller.filename).name}:{caller.lineno} {func.__name__}")
                return func(*args, **(kwargs or {}))

        self.cuda = cuda
        self.where, self.step = "start", -1
        #: (where, step, site) -> count, per kind.
        self.counts: dict[str, Counter[tuple[str, int, str]]] = {"cuda_syncs": Counter(), "host_reads": Counter()}
        self._reads = Reads()

    def count(self, kind: str, site: str) -> None:
        """One sync of ``kind`` (``cuda_syncs`` or ``host_reads``) at ``site``, filed where the run is now."""
        self.counts[kind][(self.where, self.step, site)] += 1

    def _warning(self, message: Any, category: Any, filename: str, lineno: int, *args: Any, **kwargs: Any) -> None:
        """``warnings.showwarning`` while counting: a CUDA sync warning is counted at its caller, others dropped."""
        if SYNC_WARNING not in str(message):
            return
        frames = [f for f in traceback.extract_stack()[:-1] if "/warnings" not in f.filename]
        outside_torch = [f for f in frames if "/torch/" not in f.filename]
        frame = (outside_torch or frames or [None])[-1]
        self.count("cuda_syncs", f"{Path(frame.filename).name}:{frame.lineno}" if frame else "?")

    @contextmanager
    def counting(self) -> Iterator[None]:
        """Count while inside: CUDA's sync warnings on a GPU (``set_sync_debug_mode("warn")``), host reads always."""
        import torch

        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.showwarning = self._warning
            if self.cuda:
                torch.cuda.set_sync_debug_mode("warn")
            try:
                with self._reads:
                    yield
            finally:
                if self.cuda:
                    torch.cuda.set_sync_debug_mode("default")


def worker_syncs(result: Path, train_argv: list[str]) -> int:
    """Build scripts/train.py's run for ``train_argv``, fit it counting host syncs per step, write the counts."""
    import logging

    import torch
    from lightning.pytorch.callbacks import Callback

    from mnist_lightning import cli
    from mnist_lightning.allocator import keep_freed_memory

    class Window(Callback):
        """Opens the count of a step in the first callback's batch-start hook, closes it in the last's batch-end."""

        def __init__(self, counter: SyncCounter, opens: bool) -> None:
            self.counter, self.opens = counter, opens

        def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
            if self.opens:
                self.counter.where, self.counter.step = "in", trainer.global_step

        def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
            if not self.opens:
                self.counter.where = "after"

    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    keep_freed_memory()
    args = cli.build_parser().parse_args(train_argv)
    run = cli.build(args)
    counter = SyncCounter(cuda=run.trainer.strategy.root_device.type == "cuda")
    run.trainer.callbacks.insert(0, Window(counter, opens=True))
    run.trainer.callbacks.append(Window(counter, opens=False))
    with counter.counting():
        run.trainer.fit(run.model, datamodule=run.datamodule)
    run.close(failed=False)
    trainer = run.trainer
    report = {
        "device": str(trainer.strategy.root_device),
        "sync_debug_mode": counter.cuda,
        "steps": trainer.global_step,
        "batches_per_epoch": int(trainer.num_training_batches),
        "epochs": trainer.current_epoch,
        "log_every_n_steps": trainer.log_every_n_steps,
        "counts": {kind: [[*key, n] for key, n in c.items()] for kind, c in counter.counts.items()},
        "torch": torch.__version__,
    }
    result.write_text(json.dumps(report))
    return 0


def sync_figures(report: dict[str, Any]) -> dict[str, Any]:
    """Sync counts of the allowed steps (the logger's every n-th, each epoch's last, where the reports run) and
    of the ordinary ones, each counted in the step and after it until the next; and those before the first."""
    steps, every, per_epoch = report["steps"], report["log_every_n_steps"], report["batches_per_epoch"]
    logger_steps = {s for s in range(steps) if every > 0 and (s + 1) % every == 0}
    report_steps = {s for s in range(steps) if per_epoch > 0 and (s + 1) % per_epoch == 0} | {steps - 1}
    allowed = logger_steps | report_steps
    ordinary = steps - len(allowed)
    figures: dict[str, Any] = {
        "device": report["device"],
        "steps": steps,
        "ordinary_steps": ordinary,
        "allowed_steps": sorted(allowed),
    }
    kinds = ["cuda_syncs", "host_reads"] if report["sync_debug_mode"] else ["host_reads"]
    for kind in kinds:
        ordinary_sites: Counter[str] = Counter()
        allowed_sites: Counter[str] = Counter()
        totals: Counter[str] = Counter()
        steps_with_any: set[int] = set()
        for where, step, site, n in report["counts"][kind]:
            if where == "start":
                totals["before_first_step"] += n
            elif step in allowed:
                allowed_sites[f"{where} {site}"] += n
            else:
                totals[f"ordinary_{where}"] += n
                ordinary_sites[f"{where} {site}"] += n
                steps_with_any.add(step)
        on_ordinary = sum(ordinary_sites.values())
        figures[kind] = {
            "on_ordinary_steps": on_ordinary,
            "per_ordinary_step": on_ordinary / ordinary if ordinary else 0.0,
            "in_ordinary_steps": totals["ordinary_in"],
            "after_ordinary_steps": totals["ordinary_after"],
            "on_allowed_steps": sum(allowed_sites.values()),
            "before_first_step": totals["before_first_step"],
            "ordinary_steps_with_any": sorted(steps_with_any)[:20],
            "sites_on_ordinary_steps": dict(ordinary_sites.most_common(10)),
            "sites_on_allowed_steps": dict(allowed_sites.most_common(10)),
        }
    return figures


# --------------------------------------------------------------------------------------------------------------
# The steps
# --------------------------------------------------------------------------------------------------------------


def read_log(path: Path) -> list[dict[str, Any]]:
    """The LogReport's entries of a finished run."""
    return json.loads(path.read_text())


def epoch_seconds(log: list[dict[str, Any]]) -> list[float]:
    """Seconds of each epoch: differences of the log's cumulative ``elapsed_time``."""
    elapsed = [float(entry["elapsed_time"]) for entry in log]
    return [b - a for a, b in zip([0.0, *elapsed], elapsed, strict=False)]


def printed_test_scores(stdout: str) -> dict[str, float]:
    """``test/main/loss`` and ``test/main/accuracy`` as train.py prints them."""
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"^(test/main/\w+): ([-\d.eE+naif]+)$", stdout, re.M)}


def train_step(ctx: Context, extra: list[str], epochs: int, name: str) -> dict[str, Any]:
    """One train.py run in a worker: epoch seconds, accuracies, peak memory."""
    out = ctx.folder / name / "out"
    argv = ["--data-dir", ctx.settings.data_dir, "-e", str(epochs), "-o", str(out)]
    argv += [*ctx.settings.accelerator, *ctx.settings.limits(), *extra]
    if ctx.settings.cuda:
        argv.append("--data-on-device")
    finished, memory = ctx.worker("train", argv, name)
    log = read_log(out / "log")
    seconds = epoch_seconds(log)
    figures: dict[str, Any] = {
        "epoch_seconds": seconds,
        "warm_epoch_seconds": min(seconds[1:]) if len(seconds) > 1 else seconds[-1],
        "validation_accuracy": log[-1].get("validation/main/accuracy"),
        "validation_loss": log[-1].get("validation/main/loss"),
        "test_accuracy": printed_test_scores(finished.stdout).get("test/main/accuracy"),
        "iterations": log[-1].get("iteration"),
        **{k: v for k, v in memory.items() if k != "returncode"},
    }
    return figures


def _memory_text(figures: dict[str, Any]) -> str:
    """Peak GPU memory where CUDA ran, else the peak resident memory."""
    if "peak_gpu_allocated_mib" in figures:
        return f"peak GPU {figures['peak_gpu_allocated_mib']:.0f} MiB allocated"
    return f"peak RSS {figures['peak_rss_mib']:.0f} MiB (no GPU)"


def _acc(value: Any) -> str:
    """An accuracy to four places, or '?' when the run did not report it."""
    return f"{value:.4f}" if isinstance(value, (int, float)) else "?"


def _train_summary(figures: dict[str, Any]) -> str:
    """The table's text for one training run."""
    epochs = ", ".join(f"{s:.3f}" for s in figures["epoch_seconds"])
    return (
        f"s/epoch {epochs}; val acc {_acc(figures['validation_accuracy'])}, test acc {_acc(figures['test_accuracy'])}; "
        f"{_memory_text(figures)}"
    )


def step_train_lenet(ctx: Context) -> None:
    """Step 1: LeNet for two epochs, against the goal of at most 0.5 s per (warm) epoch on a data-centre GPU."""
    figures = train_step(ctx, ["--model", "lenet"], 2, "lenet")
    warm = figures["warm_epoch_seconds"]
    if ctx.settings.cuda and not ctx.settings.quick:
        figures["goal"] = {"lenet_epoch_s_at_most": LENET_EPOCH_GOAL, "met": warm <= LENET_EPOCH_GOAL}
        goal = f"goal ≤ {LENET_EPOCH_GOAL} s/epoch (warm epoch {warm:.3f} s): " + (
            "PASS" if warm <= LENET_EPOCH_GOAL else "MISS"
        )
    else:
        goal = f"goal ≤ {LENET_EPOCH_GOAL} s/epoch: n/a (not a full GPU epoch)"
    ctx.record.figures, ctx.record.summary = figures, f"{_train_summary(figures)}; {goal}"


def step_train_mlp(ctx: Context) -> None:
    """Step 1: the MLP for two epochs."""
    figures = train_step(ctx, ["--model", "mlp"], 2, "mlp")
    ctx.record.figures, ctx.record.summary = figures, _train_summary(figures)


def step_host_syncs(ctx: Context) -> None:
    """Step 2: host syncs per training step over one epoch; any on an ordinary step fails the step."""
    out = ctx.folder / "syncs" / "out"
    argv = ["--data-dir", ctx.settings.data_dir, "-e", "1", "-o", str(out), *ctx.settings.accelerator]
    batches = ctx.settings.host_sync_batches()
    if batches is not None:
        argv += ["--limit-train-batches", str(batches), "--limit-val-batches", "2"]
    if ctx.settings.cuda:
        argv.append("--data-on-device")
    _, report = ctx.worker("syncs", argv, "syncs")
    figures = sync_figures(report)
    ctx.record.figures = figures
    parts = []
    for kind, label in (("cuda_syncs", "CUDA syncs"), ("host_reads", "host reads")):
        if kind in figures:
            f = figures[kind]
            parts.append(
                f"{label}: {f['per_ordinary_step']:.2f}/ordinary step ({f['in_ordinary_steps']} in and "
                f"{f['after_ordinary_steps']} after {figures['ordinary_steps']} steps), {f['on_allowed_steps']} on "
                f"the {len(figures['allowed_steps'])} logger/report steps, {f['before_first_step']} before the first"
            )
    if "cuda_syncs" not in figures:
        parts.append("CUDA syncs: n/a (no GPU; host reads counted the CPU way)")
    ctx.record.summary = "; ".join(parts)
    bad = {kind: figures[kind]["on_ordinary_steps"] for kind in ("cuda_syncs", "host_reads") if kind in figures}
    if any(bad.values()):
        sites = {kind: figures[kind]["sites_on_ordinary_steps"] for kind in bad}
        raise StepFailed(f"host syncs on ordinary training steps: {bad}, at {sites}")


def n_training_images(data_dir: str) -> int:
    """The size of the training split (MNIST's training set less the 20 % validation split)."""
    header = (Path(data_dir) / "MNIST" / "raw" / "train-labels-idx1-ubyte").read_bytes()[:8]
    n = int.from_bytes(header[4:8], "big")
    return n - int(round(n * 0.2))


def benchmark_figures(report: dict[str, Any], steps_per_epoch: int) -> dict[str, Any]:
    """The benchmark's JSON with per-step times (epoch time / steps per epoch) and template minus floor."""
    contenders = {}
    for name, result in report.get("results", {}).items():
        contenders[name] = {
            "s_per_epoch": result["s_per_epoch"],
            "ms_per_step": result["s_per_epoch"] / steps_per_epoch * 1000,
            "val_accuracy": result["val_accuracy"],
            "peak_rss_mb": result["peak_rss_mb"],
        }
    figures: dict[str, Any] = {
        "steps_per_epoch": steps_per_epoch,
        "contenders": contenders,
        "not_measured": report.get("not_measured", {}),
        "machine": report.get("machine", {}),
    }
    if "template" in contenders and "floor" in contenders:
        figures["overhead_ms_per_step"] = contenders["template"]["ms_per_step"] - contenders["floor"]["ms_per_step"]
    return figures


def step_benchmark(ctx: Context) -> None:
    """Step 3: benchmark.py; its figures are kept even when one contender failed (the step then fails)."""
    cupy = importlib.util.find_spec("cupy") is not None
    path = ctx.folder / "benchmark.json"
    argv = ctx.broken([str(BENCHMARK), *ctx.settings.benchmark_argv(cupy), "--json", str(path)])
    failure: StepFailed | None = None
    try:
        ctx.run(argv, REPO)
    except StepFailed as error:  # one contender failed: keep the figures of the others
        failure = error
    if not path.is_file():
        raise failure or StepFailed("benchmark.py wrote no JSON")
    limit = re.search(r"--limit-batches (\d+)", " ".join(argv))
    per_epoch = math.ceil(n_training_images(ctx.settings.data_dir) / TRAIN_BATCH)
    steps = min(per_epoch, int(limit.group(1))) if limit else per_epoch
    figures = benchmark_figures(json.loads(path.read_text()), steps)
    if ctx.settings.cuda and not cupy:
        figures["not_measured"].setdefault("chainer", "not run: CuPy does not import")
    ctx.record.figures = figures
    parts = [
        f"{n} {c['s_per_epoch']:.3f} s/epoch ({c['ms_per_step']:.2f} ms/step)" for n, c in figures["contenders"].items()
    ]
    parts += [f"{n}: {why}" for n, why in figures["not_measured"].items()]
    if "overhead_ms_per_step" in figures:
        parts.append(f"template − floor {figures['overhead_ms_per_step']:.2f} ms/step ({steps} steps/epoch)")
    ctx.record.summary = "; ".join(parts)
    if failure is not None:
        raise failure


def step_bf16(ctx: Context) -> None:
    """Step 4: one epoch in bf16-mixed precision."""
    figures = train_step(ctx, ["--precision", "bf16-mixed"], 1, "bf16")
    ctx.record.figures, ctx.record.summary = figures, _train_summary(figures)


def train_has_compile() -> bool:
    """Whether scripts/train.py --help lists a --compile flag."""
    from mnist_lightning import cli

    return re.search(r"--compile\b", cli.build_parser().format_help()) is not None


def step_compile(ctx: Context) -> None:
    """Step 4: one epoch with --compile, where train.py has that flag."""
    if not train_has_compile() and ctx.settings.inject_failure != "compile":
        raise Skipped("train.py has no --compile flag")
    figures = train_step(ctx, ["--compile"], 1, "compile")
    ctx.record.figures = figures
    ctx.record.summary = _train_summary(figures) + " (the epoch includes compiling)"


def compare_logs(log: list[dict[str, Any]], reference: list[dict[str, Any]]) -> dict[str, Any]:
    """The largest difference between two logs' entries, ``elapsed_time`` aside, and whether all are within 1e-5."""
    worst, where, keys_match = 0.0, None, [e.keys() for e in log] == [e.keys() for e in reference]
    for i, (entry, expected) in enumerate(zip(log, reference, strict=False)):
        for key in expected.keys() - {"elapsed_time"}:
            a, b = entry.get(key), expected[key]
            if not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
                keys_match = False
                continue
            diff = abs(a - b) / max(1.0, abs(b))
            if diff > worst or where is None:
                worst, where = max(worst, diff), f"entry {i} {key}"
    equal = keys_match and len(log) == len(reference) and worst <= DDP_TOLERANCE
    return {"max_difference": worst, "at": where, "entries": len(reference), "keys_match": keys_match, "equal": equal}


def step_ddp(ctx: Context) -> None:
    """Step 5: two DDP ranks of half the batch against one device; the logs must agree to 1e-5."""
    settings = ctx.settings
    if settings.cuda and settings.gpus < 2:
        raise Skipped(f"{settings.gpus} GPU: DDP over GPUs needs 2")
    accelerator = "gpu" if settings.cuda else "cpu"
    common = [str(TRAIN), "--data-dir", settings.data_dir, "-e", "1", "--deterministic", "--no-progress", "--noplot"]
    common += ["--limit-train-batches", str(settings.ddp_batches()), "--accelerator", accelerator]
    single = ctx.folder / "single" / "out"
    ddp = ctx.folder / "ddp" / "out"
    ctx.run([*common, "--devices", "1", "-b", str(TRAIN_BATCH), "-o", str(single)], ctx.folder / "single")
    finished = ctx.run(
        ctx.broken([*common, "--strategy", "ddp", "--devices", "2", "-b", str(TRAIN_BATCH // 2), "-o", str(ddp)]),
        ctx.folder / "ddp",
    )
    comparison = compare_logs(read_log(ddp / "log"), read_log(single / "log"))
    comparison["backend"] = "nccl" if settings.cuda else "gloo"
    comparison["ddp_epoch_seconds"] = epoch_seconds(read_log(ddp / "log"))
    comparison["single_epoch_seconds"] = epoch_seconds(read_log(single / "log"))
    comparison["test"] = printed_test_scores(finished.stdout)
    ctx.record.figures = comparison
    ctx.record.summary = (
        f"{comparison['backend']}, 2 ranks × -b 64 vs 1 × -b 128, {settings.ddp_batches()} steps: largest log "
        f"difference {comparison['max_difference']:.2e} ({comparison['at']}); "
        + ("equal to 1e-5" if comparison["equal"] else "NOT equal to 1e-5")
    )
    if not comparison["equal"]:
        raise StepFailed(f"the DDP log differs from one device's by {comparison['max_difference']:.2e}")


class Skipped(Exception):
    """The step does not apply on this machine (the message says why); not a failure."""


STEP_FUNCTIONS: dict[str, Callable[[Context], None]] = {
    "train_lenet": step_train_lenet,
    "train_mlp": step_train_mlp,
    "host_syncs": step_host_syncs,
    "benchmark": step_benchmark,
    "bf16": step_bf16,
    "compile": step_compile,
    "ddp": step_ddp,
}


def run_step(settings: Settings, step_id: str, folder: Path, budget_end: float) -> Step:
    """Run one step within its own limit and what is left of the budget; every outcome ends in the record."""
    record = Step(step_id, TITLES[step_id])
    left = budget_end - time.perf_counter()
    if left < MIN_STEP_SECONDS:
        record.error = f"not started: {left:.0f} s of the --budget were left"
        return record
    ctx = Context(settings, record, folder / step_id, time.perf_counter() + min(STEP_LIMITS[step_id], left))
    ctx.folder.mkdir(parents=True)
    start = time.perf_counter()
    try:
        STEP_FUNCTIONS[step_id](ctx)
        record.status = "ok"
    except Skipped as reason:
        record.status, record.summary = "skipped", str(reason)
    except StepFailed as error:
        record.status, record.error = "failed", str(error)
        if error.finished is not None:
            record.stderr_tail = error.finished.tail()
    except Exception as error:  # a figure missing from the output, a log that is not JSON: recorded, not fatal
        record.status, record.error = "failed", f"{type(error).__name__}: {error}"
        record.stderr_tail = traceback.format_exc().strip().splitlines()[-STDERR_LINES:]
    record.seconds = time.perf_counter() - start
    return record


# --------------------------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------------------------


def _version(package: str) -> str:
    """The installed version of ``package``, or 'not installed'."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def describe_machine() -> dict[str, Any]:
    """GPU names and count, torch / CUDA / cuDNN / Lightning / Python versions, the CPU and the date."""
    import torch

    cuda = torch.cuda.is_available()
    machine: dict[str, Any] = {
        "gpu_found": cuda,
        "gpu_count": torch.cuda.device_count() if cuda else 0,
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else [],
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "lightning": _version("lightning"),
        "cupy_importable": importlib.util.find_spec("cupy") is not None,
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    return machine


def first_line(machine: dict[str, Any]) -> str:
    """Where the figures come from: the GPU, or a plain statement that none was found."""
    if not machine["gpu_found"]:
        return (
            "gpu_check: no GPU was found (torch.cuda.is_available() is False): every step ran on the CPU with "
            "limited batches, so none of these figures is a GPU figure."
        )
    names = ", ".join(sorted(set(machine["gpus"])))
    return (
        f"gpu_check: {machine['gpu_count']} GPU(s) ({names}), torch {machine['torch']}, CUDA {machine['cuda']}, "
        f"{machine['date']}."
    )


def markdown_table(steps: list[Step]) -> str:
    """One row per step: status, seconds, and its figures (or why it failed)."""
    rows = ["| step | status | s | figures |", "|---|---|---:|---|"]
    for step in steps:
        text = step.summary
        if step.error:
            text = f"{text}; " if text else ""
            text += step.error + (f" [stderr: {step.stderr_tail[-1].strip()}]" if step.stderr_tail else "")
        text = text.replace("|", "/").replace("\n", " ")
        rows.append(f"| {step.title} (`{step.id}`) | {step.status} | {step.seconds:.0f} | {text} |")
    return "\n".join(rows)


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``scripts/gpu_check.py``."""
    p = OneLineParser(prog="gpu_check.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", default=None, metavar="PATH", help="also write the table and raw figures as JSON")
    p.add_argument(
        "--data-dir",
        default=os.environ.get("MNIST_DATA_DIR") or str(REPO.parent / "shared" / "data"),
        help="folder holding MNIST/raw/ (default: %(default)s)",
    )
    p.add_argument(
        "--budget",
        type=positive_int,
        default=DEFAULT_BUDGET,
        metavar="SECONDS",
        help=f"seconds for all steps together; a step is not started with under {MIN_STEP_SECONDS} s left "
        "(default: %(default)s)",
    )
    p.add_argument("--quick", action="store_true", help="a few batches per step and two benchmark contenders (tests)")
    p.add_argument("--only", default=None, metavar="STEP[,STEP]", help=f"run only these of: {', '.join(STEPS)}")
    # Test hook: give this step's command a flag no script knows, to show that its failure is recorded.
    p.add_argument("--inject-failure", choices=STEPS, default=None, help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the steps (or, with ``--worker``, one worker) and return the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"] and len(argv) >= 3:
        worker = {"train": worker_train, "syncs": worker_syncs}[argv[1]]
        return worker(Path(argv[2]), argv[3:])
    args = build_parser().parse_args(argv)
    only = STEPS if args.only is None else tuple(s.strip() for s in args.only.split(",") if s.strip())
    unknown = [s for s in only if s not in STEPS]
    if unknown or not only:
        print(f"error: unknown step {', '.join(unknown) or repr(args.only)}: choose from {', '.join(STEPS)}.")
        return 2
    labels = Path(args.data_dir) / "MNIST" / "raw" / "train-labels-idx1-ubyte"
    if not labels.is_file():
        print(f"error: MNIST is not in {args.data_dir}/MNIST/raw: give --data-dir.", file=sys.stderr)
        return 2
    if args.json is not None and os.path.isdir(args.json):
        print(f"error: --json {args.json} is a folder: give a file path.", file=sys.stderr)
        return 2
    machine = describe_machine()
    settings = Settings(
        cuda=machine["gpu_found"],
        gpus=machine["gpu_count"],
        quick=args.quick,
        data_dir=os.path.abspath(args.data_dir),
        budget=args.budget,
        inject_failure=args.inject_failure,
    )
    print(first_line(machine), flush=True)
    budget_end = time.perf_counter() + args.budget
    steps: list[Step] = []
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as folder:
        for number, step_id in enumerate(only, 1):
            print(f"[{number}/{len(only)}] {step_id} ...", file=sys.stderr, flush=True)
            record = run_step(settings, step_id, Path(folder), budget_end)
            steps.append(record)
            print(f"[{number}/{len(only)}] {step_id}: {record.status} ({record.seconds:.0f} s)", file=sys.stderr)
    table = markdown_table(steps)
    print()
    print(table)
    failed = [s.id for s in steps if s.status in ("failed", "not run")]
    if args.json is not None:
        document = {
            "first_line": first_line(machine),
            "machine": machine,
            "settings": {k: v for k, v in asdict(settings).items() if k != "inject_failure"},
            "steps": [asdict(s) for s in steps],
            "failed": failed,
            "table": table,
        }
        Path(args.json).write_text(json.dumps(document, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
