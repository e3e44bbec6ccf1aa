"""End to end on the real MNIST: the training command learns, writes Chainer's outputs and TensorBoard, resumes."""

from __future__ import annotations

import json
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from test_cli import train

HEADER = "epoch       main/loss   validation/main/loss  main/accuracy  validation/main/accuracy  elapsed_time"
LIMITS = ["--limit-train-batches", "30", "--limit-val-batches", "3"]


def test_train_writes_chainer_outputs_and_tensorboard_then_resumes(tmp_path: Path, mnist_dir: Path) -> None:
    result = train(["--data-dir", str(mnist_dir), "-e", "2", *LIMITS], tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert "# Minibatch-size: 128" in lines and "# epoch: 2" in lines
    assert HEADER in lines
    rows = [line for line in lines if line.startswith("\x1b[J")]
    assert [row.split()[0] for row in rows] == ["\x1b[J1", "\x1b[J2"]
    assert lines[-1].startswith("test/main/accuracy: ")
    assert float(lines[-1].split()[-1]) > 0.6  # chance is 0.1

    run = tmp_path / "lightning_logs" / "version_0"
    assert {"log", "snapshot_iter_30", "snapshot_iter_60", "loss.png", "accuracy.png", "hparams.yaml"} <= {
        p.name for p in run.iterdir()
    }
    log = json.loads((run / "log").read_text())
    assert [(e["epoch"], e["iteration"]) for e in log] == [(1, 30), (2, 60)]
    assert list(log[0]) == [
        "main/loss",
        "main/accuracy",
        "validation/main/loss",
        "validation/main/accuracy",
        "epoch",
        "iteration",
        "elapsed_time",
    ]
    assert log[1]["validation/main/accuracy"] > 0.6

    events = EventAccumulator(str(run))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"main/loss", "main/accuracy", "validation/main/loss", "validation/main/accuracy"} <= tags
    assert len(events.Scalars("validation/main/accuracy")) == 2

    resumed = train(["--data-dir", str(mnist_dir), "-e", "3", "-r", str(run / "snapshot_iter_30"), *LIMITS], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert [p.name for p in (tmp_path / "lightning_logs").iterdir()] == ["version_0"]  # same run folder
    log3 = json.loads((run / "log").read_text())
    assert [(e["epoch"], e["iteration"]) for e in log3] == [(1, 30), (2, 60), (3, 90)]
    assert log3[0] == log[0]
    assert log3[1]["elapsed_time"] >= log3[0]["elapsed_time"] and log3[2]["elapsed_time"] >= log3[1]["elapsed_time"]
    assert (run / "snapshot_iter_90").is_file()


def test_resume_refuses_another_models_snapshot(tmp_path: Path, mnist_dir: Path) -> None:
    out = tmp_path / "mlp"
    first = train(
        ["--data-dir", str(mnist_dir), "--model", "mlp", "-u", "20", "-e", "1", "-o", str(out), "--noplot", *LIMITS],
        tmp_path,
    )
    assert first.returncode == 0, first.stderr
    snapshot = out / "snapshot_iter_30"
    result = train(["--data-dir", str(mnist_dir), "-r", str(snapshot)], tmp_path)
    assert result.returncode == 2 and "is a snapshot of model 'mlp', not --model lenet." in result.stderr
    result = train(["--data-dir", str(mnist_dir), "--model", "mlp", "-u", "50", "-r", str(snapshot)], tmp_path)
    assert result.returncode == 2 and "MLP with 20 units, not --unit 50." in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["log", "model_best", "snapshot_iter_30"]
