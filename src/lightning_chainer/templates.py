"""File-name templates in both spellings: Chainer's ``snapshot_iter_{.updater.iteration}`` and ``{iteration}``.

Chainer names a snapshot with ``filename.format(trainer)``, so its templates read the numbers off the trainer's
updater (``{.updater.iteration}``); this library's templates name them directly (``{iteration}``). Both give the
same names: :func:`format_number_template` formats a template with a stand-in for Chainer's trainer and with the
numbers as keywords. A template naming anything else is refused when its extension is constructed, in one
sentence, rather than with an ``IndexError`` at the first file an epoch later.
"""

from __future__ import annotations

import string
from types import SimpleNamespace

#: The template fields that number a file, finest first: names sort by them (newest last) before the mtime.
NUMBER_FIELDS = ("iteration", "epoch_detail", "epoch")

#: Chainer's spellings of the number fields (``str.format(trainer)``: an empty or ``0`` index, then attributes).
_CHAINER_SPELLINGS = {f"{index}.updater.{name}": name for name in NUMBER_FIELDS for index in ("", "0")}

_SUPPORTED = (
    "{.updater.iteration}, {.updater.epoch} or {.updater.epoch_detail} (or {iteration}, {epoch}, {epoch_detail})"
)


def canonical_field(field: str) -> str:
    """The number a template field names: Chainer's ``.updater.iteration`` is ``iteration``; others unchanged.

    Args:
        field: a replacement field's name as ``string.Formatter().parse`` gives it.
    """
    return _CHAINER_SPELLINGS.get(field, field)


def template_fields(template: str, owner: str) -> list[str]:
    """The field names of ``template``, those of nested format specs included, as written.

    Args:
        template: a ``str.format`` template.
        owner: the argument, e.g. ``snapshot(filename=...)``, named when the template cannot be parsed.

    Raises:
        TypeError: ``template`` is not a string.
        ValueError: the braces do not form a template (one sentence).
    """
    if not isinstance(template, str):
        raise TypeError(f"{owner} must be a str template, got {type(template).__name__}.")
    try:
        return _fields(template)
    except ValueError as error:
        raise ValueError(
            f"{owner} {template!r} is not a valid template ({error}): write a literal brace as '{{{{' or '}}}}'."
        ) from None


def _fields(template: str) -> list[str]:
    fields = []
    for _literal, field, spec, _conversion in string.Formatter().parse(template):
        if field is not None:
            fields.append(field)
            fields.extend(_fields(spec or ""))
    return fields


def _chainer_trainer(iteration: int, epoch: int, epoch_detail: float) -> SimpleNamespace:
    """What ``{.updater.iteration}`` and its kind read from Chainer's trainer."""
    return SimpleNamespace(updater=SimpleNamespace(iteration=iteration, epoch=epoch, epoch_detail=epoch_detail))


def format_number_template(template: str, iteration: int, epoch: int, epoch_detail: float) -> str:
    """The file name ``template`` gives at this point of training, as Chainer's ``template.format(trainer)``.

    Args:
        template: a template checked by :func:`check_number_template`.
        iteration: Chainer's ``updater.iteration``.
        epoch: completed epochs (``updater.epoch``).
        epoch_detail: fractional epochs (``updater.epoch_detail``).
    """
    trainer = _chainer_trainer(iteration, epoch, epoch_detail)
    return template.format(trainer, iteration=iteration, epoch=epoch, epoch_detail=epoch_detail)


def check_number_template(template: str, owner: str) -> str:
    """Return ``template`` when every field is a number field in either spelling; else one sentence.

    Args:
        template: the file name template, e.g. ``snapshot_iter_{.updater.iteration}``.
        owner: the argument named in the error, e.g. ``snapshot(filename=...)``.

    Raises:
        ValueError: a field names something a snapshot cannot fill (``{}``, ``{0}``, ``{.updater.foo}``), or a
            format spec does not fit its number.
    """
    for field in template_fields(template, owner):
        if canonical_field(field) not in NUMBER_FIELDS:
            raise ValueError(f"{owner} {template!r} names {{{field}}}, which a snapshot cannot fill: use {_SUPPORTED}.")
    try:
        format_number_template(template, 1, 0, 0.5)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{owner} {template!r} cannot be formatted ({error}): use {_SUPPORTED}.") from None
    return template


def check_entry_template(template: str, owner: str, known: set[str] | None) -> str:
    """Return ``template`` when it can be formatted with a log entry (``template.format(**entry)``, as Chainer).

    Args:
        template: the file name template, e.g. ``log_{epoch}``.
        owner: the argument named in the error, e.g. ``LogReport(filename=...)``.
        known: the keys every entry will hold, or None when any observed key may appear.

    Raises:
        ValueError: a positional field (``{}``, ``{0}``, ``{.updater.epoch}``) or, with ``known``, a key no entry
            holds.
    """
    for field in template_fields(template, owner):
        name = _field_name(field)
        if name == "" or name.isdigit():
            raise ValueError(
                f"{owner} {template!r} names {{{field}}}, but a log entry fills only its own keys: "
                "use {epoch}, {iteration}, {elapsed_time} or an observed key."
            )
        if known is not None and name not in known:
            raise ValueError(
                f"{owner} {template!r} names {{{field}}}, which no entry holds: use one of "
                f"{', '.join('{' + k + '}' for k in sorted(known))}."
            )
    return template


def _field_name(field: str) -> str:
    """The key a field looks up first: ``epoch`` of ``epoch.real``, ``''`` of ``.updater.epoch`` or ``[0]``."""
    for i, char in enumerate(field):
        if char in ".[":
            return field[:i]
    return field


def literal_template(name: str) -> str:
    """A template that formats to ``name`` itself, braces included (a plot's file name is not formatted).

    Args:
        name: a file name.
    """
    return name.replace("{", "{{").replace("}", "}}")
