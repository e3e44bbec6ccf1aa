"""End to end on the real MNIST: the training command learns and TensorBoard holds Chainer's names."""

from __future__ import annotations

from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from test_cli import train


def test_lenet_learns_and_writes_tensorboard_scalars(tmp_path: Path, mnist_dir: Path) -> None:
    result = train(
        ["--data-dir", str(mnist_dir), "-e", "2", "--limit-train-batches", "40", "--limit-val-batches", "3"], tmp_path
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert "# Minibatch-size: 128" in lines and "# epoch: 2" in lines
    last = lines[-1]
    assert last.startswith("test/main/accuracy: ")
    assert float(last.split()[-1]) > 0.6  # chance is 0.1

    versions = list((tmp_path / "lightning_logs").iterdir())
    assert [v.name for v in versions] == ["version_0"]
    events = EventAccumulator(str(versions[0]))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"main/loss", "main/accuracy", "validation/main/loss", "validation/main/accuracy"} <= tags
    accuracy = [e.value for e in events.Scalars("validation/main/accuracy")]
    assert len(accuracy) == 2 and accuracy[-1] > 0.6
    assert (versions[0] / "hparams.yaml").is_file()
