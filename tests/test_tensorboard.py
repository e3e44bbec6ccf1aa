"""TensorBoard through the real command line, read back with TensorBoard's own reader: the log's curves at the
log's iterations, the plots' charts, HParams with real metrics, and no step twice after a SIGKILL and a resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.hparams import plugin_data_pb2
from test_cli import TRAIN, train

from mnist_lightning.tensorboard import BEST, LAST, TEST

#: 160 training images in batches of 16: 10 iterations an epoch.
ARGS = ["-b", "16", "--no-progress", "--noplot", "--deterministic"]


def read_events(folder: Path) -> EventAccumulator:
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    return events


def curves(events: EventAccumulator) -> dict[str, list[tuple[int, float]]]:
    return {tag: [(s.step, s.value) for s in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


class Resumed:
    """A run killed with SIGKILL after its second epoch, then resumed from its first epoch's snapshot."""

    def __init__(self, root: Path) -> None:
        from conftest import make_mnist

        data = make_mnist(root / "data")
        self.folder = root / "lightning_logs" / "version_0"
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        command = [sys.executable, TRAIN, "--data-dir", str(data), "-e", "30", *ARGS]
        process = subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 300
        while not (self.folder / "snapshot_iter_20").exists():
            assert process.poll() is None and time.monotonic() < deadline, "the run ended before its second snapshot"
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        assert process.wait() == -signal.SIGKILL
        self.killed = curves(read_events(self.folder))
        snapshot = self.folder / "snapshot_iter_10"
        self.result = train(["--data-dir", str(data), "-e", "3", "-r", str(snapshot), *ARGS], root)
        assert self.result.returncode == 0, self.result.stderr
        self.log: list[dict[str, Any]] = json.loads((self.folder / "log").read_text())
        self.events = read_events(self.folder)
        self.curves = curves(self.events)


@pytest.fixture(scope="module")
def resumed(tmp_path_factory: pytest.TempPathFactory) -> Resumed:
    return Resumed(tmp_path_factory.mktemp("tensorboard"))


def test_every_curve_of_the_log_holds_its_means_at_its_iterations(resumed: Resumed) -> None:
    assert [e["iteration"] for e in resumed.log] == [10, 20, 30]
    keys = [k for k in resumed.log[0] if k not in ("epoch", "iteration")]
    assert keys == ["main/loss", "main/accuracy", "validation/main/loss", "validation/main/accuracy", "elapsed_time"]
    for key in keys:
        assert [step for step, _ in resumed.curves[key]] == [10, 20, 30], key
        values = [value for _, value in resumed.curves[key]]
        assert values == pytest.approx([e[key] for e in resumed.log], rel=1e-6), key
    # Beside the log's curves: Lightning's test scores and its epoch, and the HParams metrics, at the last iteration.
    others = {tag: points for tag, points in resumed.curves.items() if tag not in keys}
    assert sorted(others) == sorted(["test/main/loss", "test/main/accuracy", "epoch", BEST, LAST, TEST])
    assert all([step for step, _ in points] == [30] for points in others.values()), others


def test_no_step_is_written_twice_after_a_sigkill_and_a_resume(resumed: Resumed) -> None:
    # The killed run had written the second epoch's entry, which the resumed run writes again.
    assert [step for step, _ in resumed.killed["main/loss"]][:2] == [10, 20]
    assert len(list(resumed.folder.glob("events.out.tfevents.*"))) >= 2
    for tag, points in resumed.curves.items():
        steps = [step for step, _ in points]
        assert steps == sorted(set(steps)), tag


def test_the_custom_scalars_page_draws_the_plots_charts(resumed: Resumed) -> None:
    configs = resumed.events.Tensors("custom_scalars__config__")
    assert len(configs) == 1  # the resumed run found its layout in the folder already
    (category,) = layout_pb2.Layout.FromString(configs[0].tensor_proto.string_val[0]).category
    assert {chart.title: list(chart.multiline.tag) for chart in category.chart} == {
        "loss": ["main/loss$", "validation/main/loss$"],
        "accuracy": ["main/accuracy$", "validation/main/accuracy$"],
    }


def test_hparams_hold_the_runs_settings_and_its_real_metrics(resumed: Resumed) -> None:
    content = resumed.events.PluginTagToContent("hparams")
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    assert sorted(m.name.tag for m in experiment.metric_infos) == sorted([BEST, LAST, TEST])
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    settings = {name: value.string_value or value.number_value for name, value in start.hparams.items()}
    assert {k: settings[k] for k in ("predictor", "optimizer", "batch_size", "epoch", "lr")} == {
        "predictor": "lenet",
        "optimizer": "adam",
        "batch_size": 16,
        "epoch": 3,
        "lr": pytest.approx(0.001),
    }
    accuracies = [e["validation/main/accuracy"] for e in resumed.log]
    printed = float(resumed.result.stdout.strip().splitlines()[-1].split()[-1])  # test/main/accuracy: 0.xxxx
    assert resumed.curves[BEST][0][1] == pytest.approx(max(accuracies), rel=1e-6)
    assert resumed.curves[LAST][0][1] == pytest.approx(accuracies[-1], rel=1e-6)
    assert resumed.curves[TEST][0][1] == pytest.approx(printed, abs=5e-5)
    assert "hp_metric" not in resumed.curves
