"""What ``predict.py`` writes: the table, ``--output`` as CSV or JSON, the accuracy, ``--confusion-matrix``.

Every file is written whole or not at all (``lightning_chainer.files.atomic_write``).
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from lightning_chainer.files import atomic_write
from mnist_lightning.inputs import NO_LABEL

#: The file types ``--output`` writes, by extension.
OUTPUT_FORMATS = (".csv", ".json")
COLUMNS = ("input", "prediction", "probability", "label")


@dataclass(frozen=True)
class Predictions:
    """The classes predicted for named examples, with the probability of each and the labels where known.

    Args:
        names: one name per example.
        predictions: int64 (N,) predicted classes.
        probabilities: float (N,) softmax probability of each predicted class.
        labels: int64 (N,) labels, ``NO_LABEL`` where unknown.
        class_names: one name per class, in label order.
    """

    names: list[str]
    predictions: np.ndarray
    probabilities: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]

    @property
    def labelled(self) -> np.ndarray:
        """Which examples have a label."""
        return self.labels != NO_LABEL

    def accuracy(self) -> tuple[int, int]:
        """(correct, labelled): how many labelled examples were predicted right, out of how many."""
        mask = self.labelled
        return int((self.predictions[mask] == self.labels[mask]).sum()), int(mask.sum())

    def rows(self) -> list[dict[str, Any]]:
        """One dict per example: input, prediction and label as class names, and the probability."""
        rows: list[dict[str, Any]] = []
        for name, predicted, probability, label in zip(
            self.names, self.predictions.tolist(), self.probabilities.tolist(), self.labels.tolist(), strict=True
        ):
            row = {"input": name, "prediction": self.class_names[predicted], "probability": round(probability, 6)}
            if label != NO_LABEL:
                row["label"] = self.class_names[label]
            rows.append(row)
        return rows

    def confusion(self) -> np.ndarray:
        """Counts (classes, classes) of the labelled examples: row = label, column = prediction."""
        classes = len(self.class_names)
        mask = self.labelled
        flat = self.labels[mask] * classes + self.predictions[mask]
        return np.bincount(flat, minlength=classes * classes).reshape(classes, classes)


def _columns(predictions: Predictions) -> tuple[str, ...]:
    """The output's columns: ``label`` only when some example has one."""
    return COLUMNS if predictions.labelled.any() else COLUMNS[:-1]


def table(predictions: Predictions) -> str:
    """The predictions as an aligned text table, one line per example after a header line.

    Args:
        predictions: what to show.
    """
    columns = _columns(predictions)
    cells = [list(columns)]
    for row in predictions.rows():
        line = [row["input"], row["prediction"], f"{row['probability']:.4f}", row.get("label", "")]
        cells.append(line[: len(columns)])
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() + "\n" for line in cells)


def csv_text(predictions: Predictions) -> str:
    """The predictions as CSV: columns input, prediction, probability, and label when some example has one.

    Args:
        predictions: what to write.
    """
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=_columns(predictions), lineterminator="\n")
    writer.writeheader()
    writer.writerows(predictions.rows())
    return buffer.getvalue()


def json_text(predictions: Predictions) -> str:
    """The predictions as a JSON list of objects with the CSV's columns (``label`` only where known).

    Args:
        predictions: what to write.
    """
    return json.dumps(predictions.rows(), indent=1) + "\n"


def write_predictions(path: str, predictions: Predictions) -> None:
    """Write the predictions to ``path`` as CSV or JSON, by its extension, atomically.

    Args:
        path: a ``.csv`` or ``.json`` file.
        predictions: what to write.

    Raises:
        WriteError: the file could not be written.
    """
    extension = os.path.splitext(path)[1].lower()
    atomic_write(path, json_text(predictions) if extension == ".json" else csv_text(predictions))


def accuracy_line(predictions: Predictions) -> str:
    """``accuracy: 0.9797 (9797 of 10000 labelled inputs)``; the test command prints its accuracy to 4 places too.

    Args:
        predictions: with at least one label.
    """
    correct, labelled = predictions.accuracy()
    return f"accuracy: {correct / labelled:.4f} ({correct} of {labelled} labelled inputs)"


def confusion_png(predictions: Predictions, title: str) -> bytes:
    """A PNG of the confusion matrix of the labelled examples, each cell's count written in it.

    Args:
        predictions: with at least one label.
        title: the figure's title.
    """
    from matplotlib.figure import Figure

    matrix = predictions.confusion()
    classes = len(predictions.class_names)
    side = max(4.0, 0.5 * classes + 2.0)
    figure = Figure(figsize=(side, side))
    axes = figure.add_subplot(111)
    axes.imshow(matrix, cmap="Blues")
    ticks = range(classes)
    axes.set_xticks(ticks, predictions.class_names, rotation=90 if classes > 10 else 0)
    axes.set_yticks(ticks, predictions.class_names)
    axes.set_xlabel("prediction")
    axes.set_ylabel("label")
    axes.set_title(title)
    threshold = matrix.max() / 2
    for (row, column), count in np.ndenumerate(matrix):
        color = "white" if count > threshold else "black"
        axes.text(column, row, str(count), ha="center", va="center", color=color, fontsize=7)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def write_confusion_matrix(path: str, predictions: Predictions, title: str) -> None:
    """Draw the confusion matrix and write it to ``path`` (a PNG) atomically.

    Args:
        path: the PNG file.
        predictions: with at least one label.
        title: the figure's title.

    Raises:
        WriteError: the file could not be written.
    """
    atomic_write(path, confusion_png(predictions, title))
