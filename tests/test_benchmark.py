"""scripts/benchmark.py end to end on a few batches: the table, the goals, the JSON schema, bad flags (no timings)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
    assert "| contender | s/epoch (median) | ×floor | ×hand_loop | peak RSS MB | val accuracy |" in run.stdout
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
