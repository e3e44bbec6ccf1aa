"""What ``predict.py`` classifies: IDX image files, image files and folders of them -> uint8 examples and labels.

- An **IDX images file** (its header's magic number 2051, as in ``t10k-images-idx3-ubyte``) gives all its images.
  Its labels come from the labels file beside it, ``...-images-idx3-ubyte`` -> ``...-labels-idx1-ubyte``, when
  there is one.
- An **image file** (PNG, JPEG, ...) gives one example converted as MNIST's digits were (``images.py``); it has no
  label.
- A **folder** gives its files in name order: IDX images files and image files alike. Hidden files (a leading
  ``.``), subfolders and the labels files of its IDX images files are passed over. A file of it that cannot be
  read is skipped and named in :attr:`Examples.skipped`; the others are classified.

A path given by itself that cannot be read raises :class:`InputError` (or ``DataError`` for a damaged IDX file) in
one sentence, as does a folder holding no file at all.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mnist_lightning.checks import display
from mnist_lightning.idx import IMAGE_MAGIC, LABEL_MAGIC, DataError, read_idx
from mnist_lightning.images import ImageError, load_image
from mnist_lightning.pixels import Preprocessing

IMAGES_SUFFIX, LABELS_SUFFIX = "-images-idx3-ubyte", "-labels-idx1-ubyte"
#: ``labels`` holds this for an example without a label.
NO_LABEL = -1


class InputError(ValueError):
    """An input path that cannot be classified; the message is one sentence naming it."""


@dataclass
class Examples:
    """Examples to classify, in input order, and the files of folders that were skipped.

    Args:
        names: one name per example: the file, or ``file[i]`` for the i-th image of an IDX file.
        images: uint8 arrays (n, C, H, W), one per file read.
        labels: int64 arrays (n,), one per file read, :data:`NO_LABEL` where unknown.
        skipped: one sentence per unreadable file of a folder.
    """

    names: list[str] = field(default_factory=list)
    images: list[np.ndarray] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def add(self, names: list[str], images: np.ndarray, labels: np.ndarray) -> None:
        self.names += names
        self.images.append(images)
        self.labels.append(labels)

    def arrays(self, input_shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
        """All images as one uint8 (N, C, H, W) array and all labels as one int64 (N,) array."""
        if not self.images:
            return np.zeros((0, *input_shape), np.uint8), np.zeros(0, np.int64)
        return np.concatenate(self.images), np.concatenate(self.labels)


def labels_file(images_file: Path) -> Path | None:
    """The labels file that belongs beside an IDX images file, by torchvision's names; None for another name.

    Args:
        images_file: a file named ``...-images-idx3-ubyte``.
    """
    if not images_file.name.endswith(IMAGES_SUFFIX):
        return None
    return images_file.with_name(images_file.name[: -len(IMAGES_SUFFIX)] + LABELS_SUFFIX)


def _magic(path: Path) -> int:
    """The first four bytes of a regular file, as an IDX header's big-endian magic number."""
    with path.open("rb") as f:
        return int.from_bytes(f.read(4).rjust(4, b"\xff"), "big")


def _check_file(path: Path) -> None:
    """Raise InputError unless ``path`` is a readable regular file (never opening a FIFO, which would block)."""
    where = display(str(path))
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        broken = path.is_symlink()
        raise InputError(f"{where}: {'a symbolic link to a missing file' if broken else 'no such file'}.") from None
    except OSError as error:
        raise InputError(f"{where} cannot be looked up ({error.strerror}).") from None
    if not stat.S_ISREG(mode):
        raise InputError(f"{where} is not a regular file.")
    if not os.access(path, os.R_OK):
        raise InputError(f"{where} is not readable (permission denied).")


def read_idx_examples(path: Path, preprocessing: Preprocessing) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The images of an IDX images file as (names, uint8 (N, 1, H, W), labels), with its labels file's labels.

    Args:
        path: an IDX images file.
        preprocessing: the model's; its input shape and class count check the file.
    """
    where = display(str(path))
    images = read_idx(path, IMAGE_MAGIC)
    channels, height, width = preprocessing.input_shape
    if channels != 1 or images.ndim != 3 or images.shape[1:] != (height, width):
        raise InputError(
            f"{where} holds images of shape {images.shape[1:]}, but the model takes {preprocessing.input_shape}."
        )
    labels = np.full(len(images), NO_LABEL, np.int64)
    partner = labels_file(path)
    if partner is not None and os.path.lexists(partner):
        found = read_idx(partner, LABEL_MAGIC).astype(np.int64)
        if found.shape != labels.shape:
            raise InputError(f"{where} has {len(images)} images but {display(str(partner))} has {len(found)} labels.")
        classes = len(preprocessing.class_names)
        if found.size and found.max() >= classes:
            raise InputError(f"{display(str(partner))} holds label {found.max()}, expected labels 0-{classes - 1}.")
        labels = found
    return [f"{where}[{i}]" for i in range(len(images))], images[:, None], labels


def read_file(path: Path, preprocessing: Preprocessing, invert: bool) -> tuple[list[str], np.ndarray, np.ndarray]:
    """One file's examples: every image of an IDX images file, or the one image of an image file.

    Args:
        path: the file.
        preprocessing: the model's (input shape, classes).
        invert: image files hold dark digits on a light background.
    """
    _check_file(path)
    where = display(str(path))
    try:
        magic = _magic(path)
    except OSError as error:
        raise InputError(f"{where} cannot be read ({error.strerror}).") from None
    if magic == LABEL_MAGIC:
        raise InputError(f"{where} is an IDX labels file: give its images file (...{IMAGES_SUFFIX}).")
    if magic == IMAGE_MAGIC:
        return read_idx_examples(path, preprocessing)
    image = load_image(path, preprocessing.input_shape, invert)
    return [where], image[None], np.full(1, NO_LABEL, np.int64)


def folder_files(folder: Path) -> list[Path]:
    """The files of ``folder`` to classify, in name order (see the module's docstring for what is passed over).

    Args:
        folder: the folder.
    """
    try:
        entries = sorted(folder.iterdir(), key=lambda p: p.name)
    except OSError as error:
        raise InputError(f"{display(str(folder))} cannot be listed ({error.strerror}).") from None
    names = {p.name for p in entries}
    files = []
    for entry in entries:
        if entry.name.startswith(".") or entry.is_dir():
            continue
        images_name = entry.name[: -len(LABELS_SUFFIX)] + IMAGES_SUFFIX if entry.name.endswith(LABELS_SUFFIX) else None
        if images_name is not None and images_name in names:
            continue
        files.append(entry)
    return files


def read_inputs(paths: list[str], preprocessing: Preprocessing, invert: bool = False) -> Examples:
    """The examples of every path in order: IDX images files, image files and folders of them.

    Args:
        paths: the INPUT arguments.
        preprocessing: the model's (input shape, classes).
        invert: image files hold dark digits on a light background.

    Raises:
        InputError: in one sentence, for a path given by itself that cannot be classified, or an empty folder.
        DataError: for a damaged IDX file given by itself.
    """
    examples = Examples()
    for text in paths:
        path = Path(text)
        if not path.is_dir():
            examples.add(*read_file(path, preprocessing, invert))
            continue
        files = folder_files(path)
        if not files:
            raise InputError(
                f"{display(text)} holds no file to classify (hidden files and subfolders are passed over)."
            )
        for file in files:
            try:
                examples.add(*read_file(file, preprocessing, invert))
            except (InputError, ImageError, DataError) as error:
                examples.skipped.append(str(error))
    return examples
