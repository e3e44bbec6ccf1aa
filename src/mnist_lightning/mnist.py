"""MNIST on disk: finding and checking the four IDX files, and the seeded train/validation split.

NumPy only, so that the Chainer reference script reads exactly the same arrays and split as the
Lightning DataModule without importing torch.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import numpy as np

#: The four files in torchvision's layout (``<data_dir>/MNIST/raw/<name>``) with their IDX magic numbers.
TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"
FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)
#: Mean and standard deviation of the training images' pixels in [0, 1], for ``--normalize``.
PIXEL_MEAN = 0.1307
PIXEL_STD = 0.3081
IMAGE_MAGIC = 2051
LABEL_MAGIC = 2049
IMAGE_SIZE = 28
#: Where the four (gzipped) files come from.
FROM = "https://yann.lecun.com/exdb/mnist/"
_PUT_FILE = f"put the uncompressed file from {FROM} in its place"
_OR_COPY = "or copy MNIST/raw/ into a folder of yours and point --data-dir there"


class MNISTDataError(RuntimeError):
    """The MNIST files are missing, truncated or not MNIST; the message says which and where."""


def raw_folder(data_dir: str | os.PathLike) -> Path:
    """The folder torchvision's ``MNIST(root=data_dir)`` reads and downloads into."""
    return Path(data_dir) / "MNIST" / "raw"


def _absent(path: Path) -> bool:
    """Whether nothing at all stands at ``path``: a dangling link, a folder or a FIFO there is not absent."""
    try:
        path.lstat()
    except (FileNotFoundError, NotADirectoryError):
        return True
    except OSError:  # an unreadable folder or a link loop above it: _check_entry says what it is
        return False
    return False


def missing_files(data_dir: str | os.PathLike) -> list[str]:
    """Names of the four IDX files with nothing at all in their place in ``raw_folder(data_dir)``.

    These are the ones a download may bring; whatever else stands in a file's place (a folder, a FIFO, a broken
    link) is not missing, and :func:`check_entries` says what it is.
    """
    raw = raw_folder(data_dir)
    return [name for name in FILES if _absent(raw / name)]


def _link_target(path: Path) -> str:
    """Where the symbolic link ``path`` points, as written in the link."""
    try:
        return os.readlink(path)
    except OSError:
        return "?"


def _stat_problem(path: Path, error: OSError) -> str:
    """What stands at ``path`` when following it to a file failed with ``error``, and what to do."""
    if isinstance(error, PermissionError):
        return f"{path} is not readable by this user: make its folder {path.parent} searchable (chmod a+rx) {_OR_COPY}"
    if isinstance(error, FileNotFoundError) and not path.is_symlink():
        return f"{path} not found: {_PUT_FILE}"
    if isinstance(error, FileNotFoundError):
        return f"{path} is a symbolic link that points to a missing file ({_link_target(path)}): {_PUT_FILE}"
    if error.errno == errno.ELOOP:
        return f"{path} is a symbolic link loop: {_PUT_FILE}"
    return f"{path} cannot be looked up ({error.strerror}): {_PUT_FILE}"


def _kind_problem(path: Path, mode: int) -> str | None:
    """What stands at ``path``, from its mode alone, when it is not a regular file; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return f"{path} is a directory, not an IDX file: {_PUT_FILE}"
    kinds = {
        stat.S_ISFIFO: "a FIFO",
        stat.S_ISSOCK: "a socket",
        stat.S_ISCHR: "a character device",
        stat.S_ISBLK: "a block device",
    }
    kind = next((name for test, name in kinds.items() if test(mode)), "a special file")
    return f"{path} is {kind}, not a regular file: {_PUT_FILE}"


def _open_problem(path: Path) -> str | None:
    """Why the regular file ``path`` cannot be opened for reading, or None when it can."""
    try:
        with path.open("rb"):
            return None
    except PermissionError:
        return f"{path} is not readable by this user: make it readable (chmod a+r) {_OR_COPY}"
    except OSError as error:
        return f"{path} cannot be opened ({error.strerror}): {_PUT_FILE}"


def _check_entry(path: Path) -> None:
    """Raise MNISTDataError unless ``path`` is (or links to) a regular file this user may read.

    Only a regular file is ever opened: opening a FIFO would wait for a writer forever.
    """
    try:
        problem = _kind_problem(path, path.stat().st_mode)
    except OSError as error:
        problem = _stat_problem(path, error)
    else:
        problem = problem or _open_problem(path)
    if problem is not None:
        raise MNISTDataError(f"{problem}.")


def check_entries(data_dir: str | os.PathLike) -> None:
    """Raise MNISTDataError for the first of the four names that holds anything but a readable regular file.

    Names with nothing in their place are left to :func:`missing_files`, so this runs before a download too.

    Args:
        data_dir: the folder that holds ``MNIST/raw/``.
    """
    raw = raw_folder(data_dir)
    for name in FILES:
        if not _absent(raw / name):
            _check_entry(raw / name)


def check_files_present(data_dir: str | os.PathLike) -> None:
    """Raise MNISTDataError naming the missing files and their folder, or what stands in a file's place.

    Args:
        data_dir: the folder that holds ``MNIST/raw/``.
    """
    missing = missing_files(data_dir)
    if missing:
        raise MNISTDataError(
            f"MNIST file{'s' if len(missing) > 1 else ''} {', '.join(missing)} not found in "
            f"{raw_folder(data_dir)}: download them from {FROM} (uncompressed) "
            "into that folder, or point --data-dir at a folder that holds MNIST/raw/."
        )
    check_entries(data_dir)


def _idx_shape(path: Path, magic: int) -> tuple[int, ...]:
    """The shape in an IDX file's header, after checking its magic number and that its length matches."""
    _check_entry(path)
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(4)
        if len(head) < 4:
            raise MNISTDataError(f"{path} is truncated: {size} bytes, too short for an IDX header.")
        found = int.from_bytes(head, "big")
        if found != magic:
            raise MNISTDataError(f"{path} is not an MNIST IDX file: magic number {found}, expected {magic}.")
        dims = f.read(4 * head[3])
    if len(dims) < 4 * head[3]:
        raise MNISTDataError(f"{path} is truncated: its header is incomplete.")
    shape = tuple(int.from_bytes(dims[4 * i : 4 * i + 4], "big") for i in range(head[3]))
    expected = 4 + len(dims) + int(np.prod(shape))
    if size != expected:
        raise MNISTDataError(
            f"{path} is {'truncated' if size < expected else 'too long'}: {size} bytes, "
            f"expected {expected} for shape {shape}."
        )
    return shape


def read_idx(path: str | os.PathLike, magic: int) -> np.ndarray:
    """Read one uncompressed IDX file of unsigned bytes, checking its magic number and its length.

    Args:
        path: the IDX file.
        magic: the magic number its header must start with (``IMAGE_MAGIC`` or ``LABEL_MAGIC``).
    """
    path = Path(path)
    shape = _idx_shape(path, magic)
    offset = 4 + 4 * len(shape)
    return np.frombuffer(path.read_bytes(), dtype=np.uint8, offset=offset).reshape(shape)


def _check_pair(raw: Path, image_file: str, label_file: str) -> int:
    """Check one images/labels pair from its headers; returns the number of images."""
    images = _idx_shape(raw / image_file, IMAGE_MAGIC)
    labels = _idx_shape(raw / label_file, LABEL_MAGIC)
    if len(images) != 3 or images[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise MNISTDataError(
            f"{raw / image_file} holds images of shape {images[1:]}, expected ({IMAGE_SIZE}, {IMAGE_SIZE})."
        )
    if len(labels) != 1 or labels[0] != images[0]:
        raise MNISTDataError(
            f"{raw / image_file} has {images[0]} images but {raw / label_file} has {labels[0]} labels."
        )
    return images[0]


def _check_labels(path: Path) -> None:
    """Read a label file (10-60 KB) whole and check that every label is a digit."""
    labels = read_idx(path, LABEL_MAGIC)
    if labels.size and labels.max() > 9:
        raise MNISTDataError(
            f"{path} holds label {labels.max()}, expected digits 0-9: replace it with the file from {FROM}."
        )


def check_files(data_dir: str | os.PathLike) -> None:
    """Check all four files before training: what they are, their headers, counts and label values.

    The image files are checked from their headers alone (size, shape, count); the two label files are read
    whole, since they are small, so that a bad label fails the run up front rather than after the last epoch.
    A training set smaller than the test set means the two pairs of files were swapped.

    Args:
        data_dir: the folder that holds ``MNIST/raw/``.
    """
    check_files_present(data_dir)
    raw = raw_folder(data_dir)
    n_train = _check_pair(raw, TRAIN_IMAGES, TRAIN_LABELS)
    n_test = _check_pair(raw, TEST_IMAGES, TEST_LABELS)
    _check_labels(raw / TRAIN_LABELS)
    _check_labels(raw / TEST_LABELS)
    if n_train < n_test:
        raise MNISTDataError(
            f"{raw / TRAIN_IMAGES} holds {n_train} images, fewer than the {n_test} of {raw / TEST_IMAGES}: "
            "the training and test files look swapped; give the train-* names to the larger pair."
        )


def load_split(data_dir: str | os.PathLike, train: bool) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 28, 28) uint8 and labels (N,) int64 of the training (60,000) or test (10,000) set.

    All four files are checked first (:func:`check_files`); only the asked-for images are read whole.

    Args:
        data_dir: the folder that holds ``MNIST/raw/``.
        train: the training set if True, the test set if False.
    """
    check_files(data_dir)
    raw = raw_folder(data_dir)
    image_file, label_file = (TRAIN_IMAGES, TRAIN_LABELS) if train else (TEST_IMAGES, TEST_LABELS)
    images = read_idx(raw / image_file, IMAGE_MAGIC)
    labels = read_idx(raw / label_file, LABEL_MAGIC)
    return images, labels.astype(np.int64)


def split_indices(n: int, val_ratio: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint (train, validation) index arrays: the two parts of a seeded permutation of ``range(n)``.

    The permutation comes from NumPy's PCG64 seeded with ``seed`` alone, so it is the same on every
    machine and run and does not touch (or depend on) any global RNG.
    """
    if not 0.0 < val_ratio < 1.0:
        raise ValueError(f"val_ratio must be between 0 and 1, got {val_ratio}.")
    n_val = int(round(n * val_ratio))
    order = np.random.Generator(np.random.PCG64(seed)).permutation(n)
    return order[: n - n_val], order[n - n_val :]
