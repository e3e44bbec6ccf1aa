"""scripts/benchmark.py end to end on a few batches: the table, the goals, the JSON schema, bad flags (no timings)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

from conftest import load_script

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "benchmark.py"
FIELDS = ("s_per_epoch", "peak_rss_mb", "val_accuracy")


def _benchmark(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the script in a fresh interpreter, as a user would."""
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], cwd=REPO, capture_output=True, text=True, timeout=300, check=False
    )


def test_tiny_run_prints_table_and_writes_json(mnist_dir: Path, tmp_path: Path) -> None:
    """Five contenders on two batches: a row each, the goal lines, and a JSON of positive numbers."""
    out = tmp_path / "bench.json"
    names = ("floor", "hand_loop", "no_extensions", "template", "chainer")
    run = _benchmark(
        "--data-dir", str(mnist_dir), "--epochs", "1", "--limit-batches", "2", "--threads", "1",
        "--only", ",".join(names), "--json", str(out),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("Machine: ")
    assert "| contender | s/epoch (median) | ms/step | ×floor | ×hand_loop | peak RSS MB | val accuracy |" in run.stdout
    assert "Per-step overhead (ms per training step, 2 steps/epoch, median of paired epochs):" in run.stdout
    for pair in ("template − floor", "no_extensions − floor", "template − no_extensions"):
        assert f"- {pair}: " in run.stdout and f"- {pair}: n/a" not in run.stdout
    for name in names:
        assert f"| {name} | " in run.stdout
    assert "| plain_lightning | " not in run.stdout
    assert "- template ≤ 1.03 × no_extensions (time): " in run.stdout
    assert "- template ≤ 1.2 × plain_lightning (peak RSS): n/a (plain_lightning not measured)" in run.stdout

    report = json.loads(out.read_text())
    assert report["machine"]["threads"] == 1
    assert {"cpu", "cores", "torch", "lightning", "chainer", "device", "date"} <= set(report["machine"])
    assert set(report["results"]) == set(names)
    for name, result in report["results"].items():
        for key in FIELDS:
            assert isinstance(result[key], float) and result[key] > 0, (name, key, result[key])
        assert result["val_accuracy"] <= 1.0
        assert len(result["epoch_seconds"]) == 1
        assert result["ms_per_step"] == result["s_per_epoch"] / 2 * 1000
    assert report["steps_per_epoch"] == 2
    overhead = report["overhead_ms_per_step"]
    assert set(overhead) == {"template_minus_floor", "no_extensions_minus_floor", "template_minus_no_extensions"}
    assert all(isinstance(value, float) for value in overhead.values())


def test_bad_flag_is_one_sentence_and_nonzero() -> None:
    """An unknown contender ends in one line on stderr and exit status 2, before anything runs."""
    run = _benchmark("--only", "floor,nonsense")
    assert run.returncode == 2
    assert run.stdout == ""
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "nonsense" in lines[0]


def test_failing_child_gets_a_failed_row_and_nonzero_exit(tiny_mnist: Path) -> None:
    """A contender whose child crashes (here: a label 12 in the data) shows 'failed: ...' and the run exits 1."""
    labels = tiny_mnist / "MNIST" / "raw" / "train-labels-idx1-ubyte"
    data = bytearray(labels.read_bytes())
    data[8] = 12  # the first label, just after the 8-byte IDX header
    labels.write_bytes(bytes(data))
    run = _benchmark("--data-dir", str(tiny_mnist), "--epochs", "1", "--limit-batches", "1", "--only", "floor")
    assert run.returncode == 1, run.stderr
    assert "| floor | failed: " in run.stdout and "label 12" in run.stdout


def test_round_runs_contenders_in_lock_step(tiny_mnist: Path) -> None:
    """Each of the three clock styles (hand loop, Lightning callback, Chainer extension) waits for its turn.

    No two epochs overlap, every contender ends epoch k before any starts epoch k + 1, and the order within an
    epoch rotates by one each epoch.
    """
    bench = load_script("benchmark")
    settings = bench.Settings(
        model="lenet", epochs=2, device="cpu", threads=1, data_dir=str(tiny_mnist), limit_batches=1
    )
    names = ["floor", "template", "chainer"]
    results = bench.run_round(names, settings, shift=1)
    for name in names:
        assert len(results[name]["spans"]) == settings.total_epochs, (name, results[name])
    spans = sorted((start, end, k, name) for name in names for k, (start, end) in enumerate(results[name]["spans"]))
    for (_, end, *_), (start, *_) in zip(spans, spans[1:], strict=False):
        assert end <= start
    assert [k for _, _, k, _ in spans] == [k for k in range(settings.total_epochs) for _ in names]
    orders = [[name for _, _, k, name in spans if k == epoch] for epoch in range(settings.total_epochs)]
    assert orders == [names[1:] + names[:1], names[2:] + names[:2], names]


def test_paired_ratio_is_the_median_of_epoch_by_epoch_ratios() -> None:
    """One slow epoch (the host busy) moves a ratio of medians, but not the median of paired ratios."""
    bench = load_script("benchmark")
    fast = bench.Outcome(rounds=[[1.0, 2.0, 4.0], [1.0, 1.0, 1.0]])
    slow = bench.Outcome(rounds=[[1.5, 3.0, 6.0], [1.5, 1.5, 9.0]])
    assert bench.paired_ratio(slow, fast) == 1.5
    assert slow.s_per_epoch / fast.s_per_epoch == 2.25


def test_overhead_per_step_is_the_median_paired_difference_over_the_steps() -> None:
    """Per-step overheads come from paired epochs; a pair with a contender not measured is left out."""
    bench = load_script("benchmark")
    template = bench.Outcome(rounds=[[1.2, 1.3, 9.0]])
    floor = bench.Outcome(rounds=[[1.0, 1.0, 1.0]])
    missing = bench.Outcome(problem="not installed")
    outcomes = {"template": template, "floor": floor, "no_extensions": missing}
    figures = bench.overhead_ms_per_step(outcomes, steps=100)
    assert set(figures) == {"template_minus_floor"}
    assert abs(figures["template_minus_floor"] - 3.0) < 1e-9  # median difference 0.3 s over 100 steps
    lines = bench.overhead_lines(outcomes, 100)
    assert lines[1] == "- template − floor: 3.000 ms" and lines[2] == "- no_extensions − floor: n/a"


def test_steps_per_epoch_follow_the_split_and_the_batch_limit(tiny_mnist: Path) -> None:
    """The training steps of an epoch: the training split in batches of 128, or the batch limit."""
    bench = load_script("benchmark")
    settings = bench.Settings(model="lenet", epochs=1, device="cpu", threads=1, data_dir=str(tiny_mnist))
    assert bench.train_steps_per_epoch(settings) == 2  # 160 of the 200 images: one batch of 128, one of 32
    assert bench.train_steps_per_epoch(dataclasses.replace(settings, limit_batches=1)) == 1
