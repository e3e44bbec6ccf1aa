"""Chainer's trainer extensions and triggers as Lightning callbacks, for any LightningModule that uses ``self.log``."""

from lightning_chainer.extension import Extension
from lightning_chainer.extensions.autoload import SnapshotError
from lightning_chainer.extensions.evaluator import Evaluator
from lightning_chainer.extensions.exponential_shift import ExponentialShift
from lightning_chainer.extensions.fail_on_non_number import FailOnNonNumber, NonNumberError
from lightning_chainer.extensions.hyperparameter_shift import HyperparameterShift
from lightning_chainer.extensions.linear_shift import LinearShift
from lightning_chainer.extensions.log_report import LogReport
from lightning_chainer.extensions.micro_average import MicroAverage
from lightning_chainer.extensions.observe_lr import ObserveValue, observe_lr, observe_value
from lightning_chainer.extensions.plot_report import PlotReport
from lightning_chainer.extensions.print_report import PrintReport
from lightning_chainer.extensions.progress_bar import ProgressBar
from lightning_chainer.extensions.snapshot import (
    Snapshot,
    SnapshotObject,
    apply_autoload,
    find_latest_snapshot,
    list_snapshots,
    load_snapshot_object,
    snapshot,
    snapshot_object,
)
from lightning_chainer.files import WriteError
from lightning_chainer.step import PRIORITY_EDITOR, PRIORITY_READER, PRIORITY_SNAPSHOT, PRIORITY_WRITER, Step
from lightning_chainer.summary import Summary
from lightning_chainer.triggers import (
    BestValueTrigger,
    EarlyStoppingTrigger,
    IntervalTrigger,
    ManualScheduleTrigger,
    MaxValueTrigger,
    MinValueTrigger,
    get_trigger,
)

__all__ = [
    "PRIORITY_EDITOR",
    "PRIORITY_READER",
    "PRIORITY_SNAPSHOT",
    "PRIORITY_WRITER",
    "BestValueTrigger",
    "EarlyStoppingTrigger",
    "Evaluator",
    "ExponentialShift",
    "Extension",
    "FailOnNonNumber",
    "HyperparameterShift",
    "IntervalTrigger",
    "LinearShift",
    "LogReport",
    "ManualScheduleTrigger",
    "MaxValueTrigger",
    "MicroAverage",
    "MinValueTrigger",
    "NonNumberError",
    "ObserveValue",
    "PlotReport",
    "PrintReport",
    "ProgressBar",
    "Snapshot",
    "SnapshotError",
    "SnapshotObject",
    "Step",
    "Summary",
    "WriteError",
    "apply_autoload",
    "find_latest_snapshot",
    "get_trigger",
    "list_snapshots",
    "load_snapshot_object",
    "observe_lr",
    "observe_value",
    "snapshot",
    "snapshot_object",
]
