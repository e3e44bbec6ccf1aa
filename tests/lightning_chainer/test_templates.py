"""File-name templates: Chainer's ``{.updater.iteration}`` and ``{iteration}`` give Chainer's names."""

from __future__ import annotations

import pytest
from helpers import chainer_trainers

from lightning_chainer.templates import (
    canonical_field,
    check_entry_template,
    check_number_template,
    format_number_template,
    literal_template,
)


@pytest.mark.parametrize(
    "template",
    [
        "snapshot_iter_{.updater.iteration}",
        "model_epoch_{.updater.epoch}",
        "snap_{.updater.epoch_detail}",
        "s_{0.updater.iteration:06d}_{0.updater.epoch_detail:.3f}",
        "{.updater.iteration!r}.pt",
    ],
)
def test_names_are_chainers_format_of_its_trainer_in_either_spelling(template: str) -> None:
    ours = template.replace("0.updater.", "").replace(".updater.", "")
    for i, trainer in chainer_trainers([1, 3, 8, 13, 24], iters_per_epoch=8):
        trainer.updater.epoch = i // 8
        args = (i, i // 8, trainer.updater.epoch_detail)
        assert format_number_template(check_number_template(template, "t"), *args) == template.format(trainer)
        assert format_number_template(check_number_template(ours, "t"), *args) == template.format(trainer)


def test_canonical_fields_and_literal_names() -> None:
    assert [canonical_field(f) for f in (".updater.epoch", "0.updater.iteration", "name", "")] == [
        "epoch",
        "iteration",
        "name",
        "",
    ]
    assert literal_template("a{b}.png").format() == "a{b}.png"


def test_entry_templates_take_the_entrys_keys_only() -> None:
    assert check_entry_template("log_{epoch}_{main/loss}", "LogReport(filename=...)", None) == "log_{epoch}_{main/loss}"
    with pytest.raises(ValueError, match=r"names \{0\}, but a log entry fills only its own keys"):
        check_entry_template("log_{0}", "LogReport(filename=...)", None)
    with pytest.raises(TypeError, match=r"must be a str template, got int\.$"):
        check_number_template(3, "snapshot(filename=...)")  # type: ignore[arg-type]
