"""Chainer's trainer extensions and triggers as Lightning callbacks, for any LightningModule that uses ``self.log``."""

from mnist_lightning.extensions.autoload import SnapshotError
from mnist_lightning.extensions.evaluator import Evaluator
from mnist_lightning.extensions.exponential_shift import ExponentialShift
from mnist_lightning.extensions.fail_on_non_number import FailOnNonNumber, NonNumberError
from mnist_lightning.extensions.files import WriteError
from mnist_lightning.extensions.hyperparameter_shift import HyperparameterShift
from mnist_lightning.extensions.linear_shift import LinearShift
from mnist_lightning.extensions.log_report import LogReport
from mnist_lightning.extensions.micro_average import MicroAverage
from mnist_lightning.extensions.observation import (
    PRIORITY_EDITOR,
    PRIORITY_READER,
    PRIORITY_SNAPSHOT,
    PRIORITY_WRITER,
    Extension,
    Step,
    Summary,
)
from mnist_lightning.extensions.observe_lr import ObserveValue, observe_lr, observe_value
from mnist_lightning.extensions.plot_report import PlotReport
from mnist_lightning.extensions.print_report import PrintReport
from mnist_lightning.extensions.progress_bar import ProgressBar
from mnist_lightning.extensions.snapshot import (
    Snapshot,
    SnapshotObject,
    apply_autoload,
    find_latest_snapshot,
    list_snapshots,
    load_snapshot_object,
    snapshot,
    snapshot_object,
)
from mnist_lightning.extensions.triggers import (
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
