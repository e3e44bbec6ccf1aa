"""Output folders and atomic writes: inside their own folder, whole or not at all, one error type on failure.

Every file is written under a hidden temporary name in its own folder, ``.{name}.{token}.tmp`` (``token``: 8
characters of ``[a-z0-9_]``), flushed to disk and renamed over ``name`` with ``os.replace``. A reader sees the old
file or the new one, never part of one, and nothing goes through ``$TMPDIR``. A killed process leaves at most such a
temp file; the extension owning the name removes it when its next run starts (:func:`remove_temp_files`). Any
``OSError`` of a write becomes a :class:`WriteError` naming the final file, with the temp file removed.
"""

from __future__ import annotations

import contextlib
import os
import re
import string
import tempfile
from typing import TYPE_CHECKING

from lightning_chainer.templates import NUMBER_FIELDS, canonical_field

if TYPE_CHECKING:
    import lightning.pytorch as pl

TEMP_SUFFIX = ".tmp"

_FIELD_PATTERNS = {
    "iteration": r"(\d+)",
    "epoch": r"(\d+)",
    "epoch_detail": r"(\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)",
}


class WriteError(OSError):
    """A file could not be written: ``path`` is its final name (never the temp name), ``reason`` the OS's words.

    The message is ``could not write {path}: {reason}``; ``errno`` is the failed call's, when it had one.
    """

    def __init__(self, path: str, reason: str, errno: int | None = None) -> None:
        super().__init__(f"could not write {path}: {reason}")
        self.path = path
        self.reason = reason
        self.errno = errno

    def __str__(self) -> str:
        return f"could not write {self.path}: {self.reason}"

    def __reduce__(self) -> tuple[type, tuple[str, str, int | None]]:
        # OSError pickles its args; this class is rebuilt from its own fields (DDP ranks may send it).
        return type(self), (self.path, self.reason, self.errno)

    @classmethod
    def from_os_error(cls, path: str | os.PathLike, error: OSError) -> WriteError:
        """The WriteError for ``path`` that ``error`` (raised by any step of its write) means.

        Args:
            path: the file's final name.
            error: what the failed call raised; a WriteError is returned as it is.
        """
        if isinstance(error, WriteError):
            return error
        reason = os.strerror(error.errno) if error.errno else (str(error) or type(error).__name__)
        return cls(os.fspath(path), reason, error.errno)


def _file_mode() -> int:
    """The mode ``open`` gives a new file under the current umask (``mkstemp`` makes 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.remove(path)


def atomic_write(path: str | os.PathLike, data: str | bytes | bytearray | memoryview) -> None:
    """Write ``data`` to ``path`` through a temp file in the same folder, fsync, then ``os.replace``.

    Args:
        path: the file to write; its folder is made when missing.
        data: text (written as UTF-8) or bytes.

    Raises:
        WriteError: when any step fails; the temp file is removed and an existing ``path`` is left as it was.
    """
    path = os.fspath(path)
    payload = data.encode() if isinstance(data, str) else data
    folder = os.path.dirname(path) or "."
    tmp = None
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=TEMP_SUFFIX, dir=folder)
        with os.fdopen(fd, "wb") as f:
            os.fchmod(fd, _file_mode())  # the result should look like any other file the run writes
            f.write(payload)
            f.flush()
            os.fsync(fd)  # on disk before it takes the real name, not only in the page cache
        os.replace(tmp, path)
    except BaseException as error:
        if tmp is not None:
            _remove_quietly(tmp)
        if isinstance(error, OSError) and not isinstance(error, WriteError):
            raise WriteError.from_os_error(path, error) from error
        raise


def append_file(path: str | os.PathLike, data: str | bytes) -> None:
    """Append ``data`` to ``path`` (made when missing): all of it, or nothing.

    Args:
        path: the file to extend.
        data: text (written as UTF-8) or bytes.

    Raises:
        WriteError: when the file cannot be opened or extended; it is cut back to its earlier length, so it never
            ends in half a line.
    """
    path = os.fspath(path)
    view = memoryview(data.encode() if isinstance(data, str) else data)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    except OSError as error:
        raise WriteError.from_os_error(path, error) from error
    try:
        size = os.fstat(fd).st_size
        try:
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except OSError as error:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            raise WriteError.from_os_error(path, error) from error
    finally:
        os.close(fd)


def template_regex(template: str) -> tuple[re.Pattern[str], list[str]]:
    """A pattern matching the names ``template.format(...)`` makes, and the field of each of its groups.

    ``{iteration}`` and ``{epoch}`` match digits, ``{epoch_detail}`` a decimal number, other fields any text.
    Chainer's spellings (``{.updater.iteration}``, ...) are the same fields, so either spelling finds the files
    of the other.

    Args:
        template: a file name template such as ``snapshot_iter_{.updater.iteration}`` or ``..._{iteration}``.
    """
    parts: list[str] = []
    fields: list[str] = []
    for literal, field, _spec, _conversion in string.Formatter().parse(template):
        parts.append(re.escape(literal))
        if field is not None:
            field = canonical_field(field)
            parts.append(_FIELD_PATTERNS.get(field, "(.+?)"))
            fields.append(field)
    return re.compile("".join(parts)), fields


def name_numbers(name: str, template: str) -> tuple[float, ...] | None:
    """The numbers of ``name`` in :data:`NUMBER_FIELDS` order, () when the template has none, None if no match.

    Args:
        name: a file name (no folder).
        template: the template the file would have been named by.
    """
    pattern, fields = template_regex(template)
    match = pattern.fullmatch(name)
    if match is None:
        return None
    found = dict(zip(fields, match.groups(), strict=True))
    return tuple(float(found[f]) for f in NUMBER_FIELDS if f in found)


def _in_subfolder(folder: str, template: str) -> tuple[str, str]:
    """A template such as ``plots/loss.png`` names files of ``folder/plots``: the folder to list and the name part."""
    return os.path.join(folder, os.path.dirname(template)), os.path.basename(template)


def named_files(folder: str, template: str) -> list[str]:
    """The files in ``folder`` named by ``template``, oldest first, hidden (temp) files left out.

    Oldest means the lowest number in the name (iteration, else epoch_detail, else epoch); the modification time
    orders only names with equal numbers, i.e. templates without a number field.

    Args:
        folder: the folder to look in (a missing one holds no file).
        template: the file name template, e.g. ``snapshot_iter_{iteration}``.
    """
    folder, template = _in_subfolder(folder, template)
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    keyed = []
    for name in names:
        path = os.path.join(folder, name)
        numbers = None if name.startswith(".") else name_numbers(name, template)
        if numbers is not None and os.path.isfile(path):
            keyed.append((numbers, os.path.getmtime(path), name, path))
    return [path for *_, path in sorted(keyed)]


def is_temp_file(name: str, template: str) -> bool:
    """Whether ``name`` is a temp file of a file named by ``template`` (``.{name}.{token}.tmp``).

    A temp name without the token (``.{name}.tmp``) is recognised too.

    Args:
        name: a file name (no folder).
        template: the file name template of the final files.
    """
    pattern, _ = template_regex(template)
    return re.fullmatch(r"\." + pattern.pattern + r"(?:\.[a-z0-9_]{8})?" + re.escape(TEMP_SUFFIX), name) is not None


def remove_temp_files(folder: str, template: str) -> list[str]:
    """Remove what killed writes of ``template``'s files left in ``folder``; returns the removed paths.

    Args:
        folder: the output folder (a missing one holds nothing).
        template: the file name template whose temp files to remove; other files are left alone.
    """
    folder, template = _in_subfolder(folder, template)
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    removed = []
    for name in names:
        path = os.path.join(folder, name)
        if is_temp_file(name, template) and os.path.isfile(path):
            _remove_quietly(path)
            removed.append(path)
    return removed


def resolve_out(trainer: pl.Trainer, out: str | None) -> str:
    """``out``, else the ExtensionsManager's ``out`` (Chainer's ``trainer.out``), else the logger's run folder
    (``trainer.log_dir``), else ``'result'``; rank 0's choice on every rank.

    Args:
        trainer: the trainer whose manager or logger names the folder.
        out: the folder an extension was given, or None.
    """
    if out is None:
        # Imported here: the manager's module imports the extensions, which import this one.
        from lightning_chainer.manager import ExtensionsManager

        managers = [cb.out for cb in trainer.callbacks if isinstance(cb, ExtensionsManager)]
        out = managers[0] if managers else trainer.log_dir if trainer.loggers else "result"
    return str(trainer.strategy.broadcast(out or "result"))
