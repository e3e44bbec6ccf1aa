"""Image classification sets stored as four IDX files in torchvision's layout: finding, checking and reading them.

MNIST, Fashion-MNIST and KMNIST all ship as ``<data_dir>/<Folder>/raw/`` holding ``train-images-idx3-ubyte``,
``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``. :class:`IDXFiles` describes
one such folder; every check says in one sentence which file is wrong and what to do. NumPy only, so that the Chainer
reference script reads exactly the same arrays as the Lightning DataModule without importing torch.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"
#: The four file names, as torchvision writes them after a download.
FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)
IMAGE_MAGIC = 2051
LABEL_MAGIC = 2049
_PUT_VALID = "put a valid IDX file in its place"


class DataError(RuntimeError):
    """The data files are missing, truncated or not what they should be; the message says which and where."""


def _absent(path: Path) -> bool:
    """Whether nothing at all stands at ``path``: a dangling link, a folder or a FIFO there is not absent."""
    try:
        path.lstat()
    except (FileNotFoundError, NotADirectoryError):
        return True
    except OSError:  # an unreadable folder or a link loop above it: check_entry says what it is
        return False
    return False


def _link_target(path: Path) -> str:
    """Where the symbolic link ``path`` points, as written in the link."""
    try:
        return os.readlink(path)
    except OSError:
        return "?"


def _stat_problem(path: Path, error: OSError, put_file: str, or_copy: str) -> str:
    """What stands at ``path`` when following it to a file failed with ``error``, and what to do."""
    if isinstance(error, PermissionError):
        return f"{path} is not readable by this user: make its folder {path.parent} searchable (chmod a+rx) {or_copy}"
    if isinstance(error, FileNotFoundError) and not path.is_symlink():
        return f"{path} not found: {put_file}"
    if isinstance(error, FileNotFoundError):
        return f"{path} is a symbolic link that points to a missing file ({_link_target(path)}): {put_file}"
    if error.errno == errno.ELOOP:
        return f"{path} is a symbolic link loop: {put_file}"
    return f"{path} cannot be looked up ({error.strerror}): {put_file}"


def _kind_problem(path: Path, mode: int, put_file: str) -> str | None:
    """What stands at ``path``, from its mode alone, when it is not a regular file; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return f"{path} is a directory, not an IDX file: {put_file}"
    kinds = {
        stat.S_ISFIFO: "a FIFO",
        stat.S_ISSOCK: "a socket",
        stat.S_ISCHR: "a character device",
        stat.S_ISBLK: "a block device",
    }
    kind = next((name for test, name in kinds.items() if test(mode)), "a special file")
    return f"{path} is {kind}, not a regular file: {put_file}"


def _open_problem(path: Path, put_file: str, or_copy: str) -> str | None:
    """Why the regular file ``path`` cannot be opened for reading, or None when it can."""
    try:
        with path.open("rb"):
            return None
    except PermissionError:
        return f"{path} is not readable by this user: make it readable (chmod a+r) {or_copy}"
    except OSError as error:
        return f"{path} cannot be opened ({error.strerror}): {put_file}"


def check_entry(path: Path, put_file: str = _PUT_VALID, or_copy: str = "or point --data-dir elsewhere") -> None:
    """Raise DataError unless ``path`` is (or links to) a regular file this user may read.

    Only a regular file is ever opened: opening a FIFO would wait for a writer forever.

    Args:
        path: the file to check.
        put_file: what the message tells the user to do about a wrong file.
        or_copy: the alternative the message offers when the file is not readable.
    """
    try:
        problem = _kind_problem(path, path.stat().st_mode, put_file)
    except OSError as error:
        problem = _stat_problem(path, error, put_file, or_copy)
    else:
        problem = problem or _open_problem(path, put_file, or_copy)
    if problem is not None:
        raise DataError(f"{problem}.")


def idx_shape(path: Path, magic: int) -> tuple[int, ...]:
    """The shape in an IDX file's header, after checking its magic number and that its length matches.

    Args:
        path: a regular file (see :func:`check_entry`).
        magic: the magic number its header must start with (``IMAGE_MAGIC`` or ``LABEL_MAGIC``).
    """
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(4)
        if len(head) < 4:
            raise DataError(f"{path} is truncated: {size} bytes, too short for an IDX header.")
        found = int.from_bytes(head, "big")
        if found != magic:
            kind = "image" if magic == IMAGE_MAGIC else "label"
            raise DataError(f"{path} is not an IDX {kind} file: magic number {found}, expected {magic}.")
        dims = f.read(4 * head[3])
    if len(dims) < 4 * head[3]:
        raise DataError(f"{path} is truncated: its header is incomplete.")
    shape = tuple(int.from_bytes(dims[4 * i : 4 * i + 4], "big") for i in range(head[3]))
    expected = 4 + len(dims) + int(np.prod(shape))
    if size != expected:
        raise DataError(
            f"{path} is {'truncated' if size < expected else 'too long'}: {size} bytes, "
            f"expected {expected} for shape {shape}."
        )
    return shape


def read_idx(path: str | os.PathLike, magic: int) -> np.ndarray:
    """Read one uncompressed IDX file of unsigned bytes, checking what it is, its magic number and its length.

    Args:
        path: the IDX file.
        magic: the magic number its header must start with (``IMAGE_MAGIC`` or ``LABEL_MAGIC``).
    """
    path = Path(path)
    check_entry(path)
    shape = idx_shape(path, magic)
    offset = 4 + 4 * len(shape)
    return np.frombuffer(path.read_bytes(), dtype=np.uint8, offset=offset).reshape(shape)


@dataclass(frozen=True)
class IDXFiles:
    """The four IDX files of one data set in ``<data_dir>/<folder>/raw/``, and the checks they must pass.

    Args:
        folder: torchvision's folder name (``MNIST``, ``FashionMNIST``, ``KMNIST``).
        title: the set's name in messages (``Fashion-MNIST``).
        source: where the (gzipped) files can be downloaded by hand.
        classes: labels must lie in ``0 .. classes - 1``.
        image_size: (height, width) of every image.
    """

    folder: str
    title: str
    source: str
    classes: int = 10
    image_size: tuple[int, int] = (28, 28)

    def raw_folder(self, data_dir: str | os.PathLike) -> Path:
        """The folder torchvision's dataset class (``root=data_dir``) reads and downloads into."""
        return Path(data_dir) / self.folder / "raw"

    @property
    def _put_file(self) -> str:
        return f"put the uncompressed file from {self.source} in its place"

    @property
    def _or_copy(self) -> str:
        return f"or copy {self.folder}/raw/ into a folder of yours and point --data-dir there"

    def _check_entry(self, path: Path) -> None:
        check_entry(path, self._put_file, self._or_copy)

    def missing_files(self, data_dir: str | os.PathLike) -> list[str]:
        """Names of the four files with nothing at all in their place: the ones a download may bring.

        Whatever else stands in a file's place (a folder, a FIFO, a broken link) is not missing, and
        :meth:`check_entries` says what it is.
        """
        raw = self.raw_folder(data_dir)
        return [name for name in FILES if _absent(raw / name)]

    def check_entries(self, data_dir: str | os.PathLike) -> None:
        """Raise DataError for the first of the four names that holds anything but a readable regular file.

        Names with nothing in their place are left to :meth:`missing_files`, so this runs before a download too.

        Args:
            data_dir: the folder that holds ``<folder>/raw/``.
        """
        raw = self.raw_folder(data_dir)
        for name in FILES:
            if not _absent(raw / name):
                self._check_entry(raw / name)

    def check_present(self, data_dir: str | os.PathLike) -> None:
        """Raise DataError naming the missing files and their folder, or what stands in a file's place.

        Args:
            data_dir: the folder that holds ``<folder>/raw/``.
        """
        missing = self.missing_files(data_dir)
        if missing:
            raise DataError(
                f"{self.title} file{'s' if len(missing) > 1 else ''} {', '.join(missing)} not found in "
                f"{self.raw_folder(data_dir)}: download them from {self.source} (uncompressed) "
                f"into that folder, or point --data-dir at a folder that holds {self.folder}/raw/."
            )
        self.check_entries(data_dir)

    def _shape(self, path: Path, magic: int) -> tuple[int, ...]:
        self._check_entry(path)
        return idx_shape(path, magic)

    def _check_pair(self, raw: Path, image_file: str, label_file: str) -> int:
        """Check one images/labels pair from its headers; returns the number of images."""
        images = self._shape(raw / image_file, IMAGE_MAGIC)
        labels = self._shape(raw / label_file, LABEL_MAGIC)
        if len(images) != 3 or images[1:] != self.image_size:
            raise DataError(f"{raw / image_file} holds images of shape {images[1:]}, expected {self.image_size}.")
        if len(labels) != 1 or labels[0] != images[0]:
            raise DataError(f"{raw / image_file} has {images[0]} images but {raw / label_file} has {labels[0]} labels.")
        return images[0]

    def _check_labels(self, path: Path) -> None:
        """Read a label file (10-60 KB) whole and check that every label names a class."""
        labels = read_idx(path, LABEL_MAGIC)
        if labels.size and labels.max() >= self.classes:
            raise DataError(
                f"{path} holds label {labels.max()}, expected labels 0-{self.classes - 1}: "
                f"replace it with the file from {self.source}."
            )

    def check(self, data_dir: str | os.PathLike) -> None:
        """Check all four files before training: what they are, their headers, counts and label values.

        The image files are checked from their headers alone (size, shape, count); the two label files are read
        whole, since they are small, so that a bad label fails the run up front rather than after the last epoch.
        A training set smaller than the test set means the two pairs of files were swapped.

        Args:
            data_dir: the folder that holds ``<folder>/raw/``.
        """
        self.check_present(data_dir)
        raw = self.raw_folder(data_dir)
        n_train = self._check_pair(raw, TRAIN_IMAGES, TRAIN_LABELS)
        n_test = self._check_pair(raw, TEST_IMAGES, TEST_LABELS)
        self._check_labels(raw / TRAIN_LABELS)
        self._check_labels(raw / TEST_LABELS)
        if n_train < n_test:
            raise DataError(
                f"{raw / TRAIN_IMAGES} holds {n_train} images, fewer than the {n_test} of {raw / TEST_IMAGES}: "
                "the training and test files look swapped; give the train-* names to the larger pair."
            )

    def prepare(self, data_dir: str | os.PathLike, download: Callable[[str | os.PathLike], None] | None) -> None:
        """Check the four files, first calling ``download`` when some are absent; a failed download leaves no folder.

        Something other than a file in a file's place is reported, never downloaded over.

        Args:
            data_dir: the folder that holds ``<folder>/raw/``.
            download: brings the absent files into ``raw_folder(data_dir)`` (or fails quietly: the check that
                follows says what is missing); None checks only.
        """
        self.check_entries(data_dir)
        if download is not None and self.missing_files(data_dir):
            raw = self.raw_folder(data_dir).resolve()
            created = [p for p in (raw, *raw.parents) if not p.exists()]
            download(data_dir)
            if self.missing_files(data_dir):
                for folder in created:  # deepest first
                    if folder.is_dir() and not any(folder.iterdir()):
                        folder.rmdir()
        self.check(data_dir)

    def load_split(self, data_dir: str | os.PathLike, train: bool) -> tuple[np.ndarray, np.ndarray]:
        """Images (N, H, W) uint8 and labels (N,) int64 of the training or the test set, as the files hold them.

        All four files are checked first (:meth:`check`); only the asked-for images are read whole.

        Args:
            data_dir: the folder that holds ``<folder>/raw/``.
            train: the training set if True, the test set if False.
        """
        self.check(data_dir)
        raw = self.raw_folder(data_dir)
        image_file, label_file = (TRAIN_IMAGES, TRAIN_LABELS) if train else (TEST_IMAGES, TEST_LABELS)
        images = read_idx(raw / image_file, IMAGE_MAGIC)
        labels = read_idx(raw / label_file, LABEL_MAGIC)
        return images, labels.astype(np.int64)

    def load(self, data_dir: str | os.PathLike, split: str) -> tuple[np.ndarray, np.ndarray]:
        """The ``"train"`` or ``"test"`` set as a data set's loader gives it: images (N, 1, H, W) uint8, labels."""
        if split not in ("train", "test"):
            raise ValueError(f"unknown split {split!r}: choose 'train' or 'test'.")
        images, labels = self.load_split(data_dir, train=split == "train")
        return images[:, None], labels
