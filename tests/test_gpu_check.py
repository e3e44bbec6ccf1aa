"""scripts/gpu_check.py: every step runs (on the CPU here, with few batches), a failing step is recorded and the
next ones still run, and the figures' arithmetic is right."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import warnings
from pathlib import Path

import torch
from conftest import REPO, load_script

SCRIPT = REPO / "scripts" / "gpu_check.py"
gpu_check = load_script("gpu_check")
STATUSES = {"ok", "failed", "skipped", "not run"}


def test_quick_run_records_every_step_and_a_failed_one(mnist_dir: Path, tmp_path: Path) -> None:
    """End to end with --quick; train_mlp is given a bad flag: it fails with its stderr, the later steps run.

    compile and ddp are left out with --only: each costs a minute on this CPU, and test_compile and test_reliability
    run them.
    """
    out = tmp_path / "check.json"
    only = ["train_lenet", "train_mlp", "host_syncs", "benchmark", "bf16"]
    argv = [str(SCRIPT), "--quick", "--only", ",".join(only), "--data-dir", str(mnist_dir), "--json", str(out)]
    argv += ["--inject-failure", "train_mlp"]
    run = subprocess.run([sys.executable, *argv], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert run.returncode == 1, run.stdout + run.stderr
    first = run.stdout.splitlines()[0]
    if torch.cuda.is_available():
        assert first.startswith("gpu_check: ") and "GPU(s)" in first, first
    else:
        assert first.startswith("gpu_check: no GPU was found"), first

    report = json.loads(out.read_text())
    steps = {step["id"]: step for step in report["steps"]}
    assert [step["id"] for step in report["steps"]] == only
    for step in report["steps"]:
        assert step["status"] in STATUSES, step
        assert f"(`{step['id']}`) | {step['status']} |" in run.stdout, step["id"]
    assert report["table"] in run.stdout
    assert report["failed"] == ["train_mlp"]
    failed = steps["train_mlp"]
    assert "--no-such-flag" in failed["error"] and any("--no-such-flag" in line for line in failed["stderr_tail"])
    assert report["machine"]["gpu_found"] == torch.cuda.is_available()
    assert {"gpus", "torch", "cuda", "date"} <= set(report["machine"])

    for name in ("train_lenet", "host_syncs", "benchmark", "bf16"):
        assert steps[name]["status"] == "ok", steps[name]
    lenet = steps["train_lenet"]["figures"]
    assert len(lenet["epoch_seconds"]) == 2 and all(s > 0 for s in lenet["epoch_seconds"])
    assert 0 <= lenet["validation_accuracy"] <= 1 and 0 <= lenet["test_accuracy"] <= 1
    syncs = steps["host_syncs"]["figures"]
    assert syncs["host_reads"]["on_ordinary_steps"] == 0 and syncs["ordinary_steps"] > 0
    bench = steps["benchmark"]["figures"]
    assert {"template", "floor"} <= set(bench["contenders"]) and isinstance(bench["overhead_ms_per_step"], float)


def test_sync_figures_tell_ordinary_steps_from_the_logger_and_report_steps() -> None:
    """Counts in or after step 49 (logger) or 99 (the epoch's last) are allowed; any other one is not."""
    report = {
        "device": "cuda:0",
        "sync_debug_mode": True,
        "steps": 100,
        "batches_per_epoch": 100,
        "log_every_n_steps": 50,
        "counts": {
            "cuda_syncs": [["start", -1, "data.py:1", 3], ["in", 49, "a.py:1", 2], ["after", 99, "b.py:2", 4]],
            "host_reads": [["in", 7, "c.py:3 item", 1], ["after", 8, "d.py:4 tolist", 1]],
        },
    }
    figures = gpu_check.sync_figures(report)
    assert figures["allowed_steps"] == [49, 99] and figures["ordinary_steps"] == 98
    assert figures["cuda_syncs"]["on_ordinary_steps"] == 0
    assert figures["cuda_syncs"]["on_allowed_steps"] == 6 and figures["cuda_syncs"]["before_first_step"] == 3
    reads = figures["host_reads"]
    assert (reads["in_ordinary_steps"], reads["after_ordinary_steps"], reads["ordinary_steps_with_any"]) == (
        1,
        1,
        [7, 8],
    )
    assert reads["sites_on_ordinary_steps"] == {"in c.py:3 item": 1, "after d.py:4 tolist": 1}


def test_the_sync_counter_sees_a_host_read_and_a_sync_warning() -> None:
    """``.item()`` inside a step is filed under that step, ``.tolist()`` after it under "after"; CUDA's sync
    warning (raised here by hand, as torch raises it under ``set_sync_debug_mode("warn")``) is counted at its
    caller and not shown."""
    counter = gpu_check.SyncCounter(cuda=False)
    with counter.counting():
        counter.where, counter.step = "in", 3
        torch.ones(2).sum().item()
        warnings.warn("called a synchronizing CUDA operation", UserWarning, stacklevel=1)
        warnings.warn("an unrelated warning", UserWarning, stacklevel=1)
        counter.where = "after"
        torch.ones(2).tolist()
    assert [key[:2] for key in counter.counts["host_reads"]] == [("in", 3), ("after", 3)]
    ((where, step, site),) = counter.counts["cuda_syncs"]
    assert (where, step) == ("in", 3) and site.startswith("test_gpu_check.py:")


def test_compare_logs_and_epoch_seconds() -> None:
    reference = [
        {"epoch": 1, "main/loss": 0.5, "elapsed_time": 2.0},
        {"epoch": 2, "main/loss": 0.25, "elapsed_time": 3.5},
    ]
    close = [{**e, "main/loss": e["main/loss"] + 1e-7, "elapsed_time": 9.0} for e in reference]
    assert gpu_check.compare_logs(close, reference)["equal"] is True
    far = [reference[0], {**reference[1], "main/loss": 0.2501}]
    result = gpu_check.compare_logs(far, reference)
    assert result["equal"] is False and result["at"] == "entry 1 main/loss"
    assert gpu_check.compare_logs(reference[:1], reference)["equal"] is False
    assert gpu_check.epoch_seconds(reference) == [2.0, 1.5]


def test_benchmark_figures_per_step_and_overhead() -> None:
    report = {
        "results": {
            "template": {"s_per_epoch": 0.75, "val_accuracy": 0.98, "peak_rss_mb": 900.0},
            "floor": {"s_per_epoch": 0.375, "val_accuracy": 0.98, "peak_rss_mb": 700.0},
        },
        "not_measured": {"chainer": "not installed"},
    }
    figures = gpu_check.benchmark_figures(report, steps_per_epoch=375)
    assert figures["contenders"]["template"]["ms_per_step"] == 2.0
    assert figures["overhead_ms_per_step"] == 1.0
    assert figures["not_measured"] == {"chainer": "not installed"}


def test_a_step_without_time_left_is_not_run(tmp_path: Path) -> None:
    settings = gpu_check.Settings(cuda=False, gpus=0, quick=True, data_dir=str(tmp_path), budget=1)
    record = gpu_check.run_step(settings, "train_lenet", tmp_path, budget_end=time.perf_counter())
    assert record.status == "not run" and "--budget" in record.error
    assert "| not run |" in gpu_check.markdown_table([record])
