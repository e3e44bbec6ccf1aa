"""Chainer's trainer extensions and triggers as Lightning callbacks, for any LightningModule that uses ``self.log``."""

from lightning_chainer.extension import Extension
from lightning_chainer.extensions.autoload import SnapshotError
from lightning_chainer.extensions.dump_graph import DumpGraph, dump_graph
from lightning_chainer.extensions.evaluator import Evaluator
from lightning_chainer.extensions.exponential_shift import ExponentialShift
from lightning_chainer.extensions.fail_on_non_number import FailOnNonNumber, NonNumberError
from lightning_chainer.extensions.hyperparameter_shift import HyperparameterShift
from lightning_chainer.extensions.inverse_shift import InverseShift
from lightning_chainer.extensions.linear_shift import LinearShift
from lightning_chainer.extensions.log_report import LogReport
from lightning_chainer.extensions.lr_scheduler import LRScheduler
from lightning_chainer.extensions.micro_average import MicroAverage
from lightning_chainer.extensions.multistep_shift import MultistepShift
from lightning_chainer.extensions.observe_lr import ObserveValue, observe_lr, observe_value
from lightning_chainer.extensions.parameter_statistics import ParameterStatistics
from lightning_chainer.extensions.plot_report import PlotReport
from lightning_chainer.extensions.polynomial_shift import PolynomialShift
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
from lightning_chainer.extensions.step_shift import StepShift
from lightning_chainer.extensions.tensorboard_report import TensorBoardReport
from lightning_chainer.extensions.unchain_variables import unchain_variables
from lightning_chainer.extensions.variable_statistics_plot import VariableStatisticsPlot
from lightning_chainer.extensions.warmup_shift import WarmupShift
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
    OnceTrigger,
    TimeTrigger,
    get_trigger,
)

__all__ = [
    "PRIORITY_EDITOR",
    "PRIORITY_READER",
    "PRIORITY_SNAPSHOT",
    "PRIORITY_WRITER",
    "BestValueTrigger",
    "DumpGraph",
    "EarlyStoppingTrigger",
    "Evaluator",
    "ExponentialShift",
    "Extension",
    "FailOnNonNumber",
    "HyperparameterShift",
    "IntervalTrigger",
    "InverseShift",
    "LRScheduler",
    "LinearShift",
    "LogReport",
    "ManualScheduleTrigger",
    "MaxValueTrigger",
    "MicroAverage",
    "MinValueTrigger",
    "MultistepShift",
    "NonNumberError",
    "ObserveValue",
    "OnceTrigger",
    "ParameterStatistics",
    "PlotReport",
    "PolynomialShift",
    "PrintReport",
    "ProgressBar",
    "Snapshot",
    "SnapshotError",
    "SnapshotObject",
    "Step",
    "StepShift",
    "Summary",
    "TensorBoardReport",
    "TimeTrigger",
    "VariableStatisticsPlot",
    "WarmupShift",
    "WriteError",
    "apply_autoload",
    "dump_graph",
    "find_latest_snapshot",
    "get_trigger",
    "list_snapshots",
    "load_snapshot_object",
    "observe_lr",
    "observe_value",
    "snapshot",
    "snapshot_object",
    "unchain_variables",
]
