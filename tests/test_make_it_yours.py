"""docs/make-it-yours.md followed as written on a copy of the repository: a run of the new model on new data."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from conftest import REPO

PAGE = REPO / "docs" / "make-it-yours.md"
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)
ADD = re.compile(r"Add to `([^`]+)`:\s*$")
REPLACE = re.compile(r"In `([^`]+)`, replace the line `([^`]+)` with:\s*$")


def steps(page: str) -> list[tuple[str, str, str | None, str]]:
    """(kind, path, old line, code) for each block: kind is 'run', 'add' or 'replace'."""
    found = []
    for match in BLOCK.finditer(page):
        lead = page[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        language, code = match.groups()
        if language == "bash":
            found.append(("run", "", None, code))
        elif add := ADD.search(lead):
            found.append(("add", add[1], None, code))
        elif replace := REPLACE.search(lead):
            found.append(("replace", replace[1], replace[2], code))
    return found


def copy_repository(target: Path) -> None:
    """The files a clone holds: tracked and untracked-but-not-ignored ones."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, listed):
        source = REPO / os.fsdecode(name)
        if source.is_file():
            (target / os.fsdecode(name)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / os.fsdecode(name))


def write_shapes(folder: Path) -> None:
    """A small three-class set of 16x16 images: a square, a cross or a ring, with noise."""
    rng = np.random.default_rng(0)
    masks = np.zeros((3, 16, 16), np.uint8)
    masks[0, 4:12, 4:12] = 1
    masks[1, 7:9, 2:14] = masks[1, 2:14, 7:9] = 1
    yy, xx = np.mgrid[:16, :16]
    masks[2] = (np.abs(np.hypot(yy - 7.5, xx - 7.5) - 5) < 1.2).astype(np.uint8)
    folder.mkdir(parents=True)
    for split, n in (("train", 300), ("test", 60)):
        labels = rng.integers(0, 3, n)
        images = rng.integers(0, 60, (n, 1, 16, 16)).astype(np.uint8) + masks[labels][:, None] * 190
        np.savez(folder / f"{split}.npz", images=images.astype(np.uint8), labels=labels)


def test_the_page_renames_the_project_adds_data_a_model_and_an_extension_and_trains(tmp_path: Path) -> None:
    copy = tmp_path / "project"
    copy_repository(copy)
    write_shapes(copy / "data" / "shapes")
    env = {
        **os.environ,
        "PYTHONPATH": str(copy / "src"),
        "PYTHONWARNINGS": "ignore",
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    found = steps(PAGE.read_text())
    assert [kind for kind, *_ in found] == ["run", "add", "add", "add", "replace", "run"]
    for kind, path, old, code in found:
        if kind == "run":
            result = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", code], cwd=copy, env=env, capture_output=True, text=True, timeout=600
            )
            assert result.returncode == 0, result.stderr
        elif kind == "add":
            with open(copy / path, "a") as f:
                f.write("\n\n" + code)
        else:
            text = (copy / path).read_text()
            assert text.count(old + "\n") == 1, f"{path} holds the line {old!r} {text.count(old)} times"
            (copy / path).write_text(text.replace(old + "\n", code))
    assert not (copy / "src" / "mnist_lightning").exists()
    assert "mnist_lightning" not in (copy / "scripts" / "train.py").read_text()
    assert "best validation/main/accuracy so far: " in result.stdout
    run = copy / "lightning_logs" / "version_0"
    assert (run / "log").is_file() and (run / "snapshot_iter_2").is_file()
