"""examples/train_mnist.py: Chainer 7.8.1's MNIST example whose trainer.extend(...) block is Chainer's, line for line,
and whose run writes the log, table and files that scripts/train_chainer.py (real Chainer) writes."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, load_script

EXAMPLE = REPO / "examples" / "train_mnist.py"
CHAINER_BLOCK = REPO / "tests" / "data" / "chainer_train_mnist_extend_block.txt"
FIRST = "    # Evaluate the model with the test dataset for each epoch"
LAST = "    trainer.extend(extensions.ProgressBar())"
#: Chainer's one ChainerX workaround in the block: torch has no ChainerX device, so the port has no such test and
#: its DumpGraph line stands one level out.
CHAINERX_GUARD = "    if device.xp is not chainerx:"


def chainer_block() -> list[str]:
    """The lines of Chainer's block, as stored (the header above the line of dashes left out)."""
    lines = CHAINER_BLOCK.read_text().splitlines()
    return lines[next(i for i, line in enumerate(lines) if line.startswith("# ---")) + 1 :]


def code(lines: list[str]) -> list[str]:
    """The code lines: comments and blank lines left out, trailing spaces cut."""
    return [line.rstrip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def test_the_examples_extend_block_is_chainers_line_for_line() -> None:
    theirs = chainer_block()
    assert theirs[0] == FIRST and theirs[-1] == LAST
    guard = theirs.index(CHAINERX_GUARD)
    expected = code(theirs[:guard] + [theirs[guard + 1][4:]] + theirs[guard + 2 :])
    lines = EXAMPLE.read_text().splitlines()
    ours = lines[lines.index(FIRST) : lines.index(LAST) + 1]
    assert code(ours) == expected
    assert len(expected) == len(code(theirs)) - 1 > 20


@pytest.fixture
def runs(tiny_mnist: Path, tmp_path: Path) -> tuple[Path, str, Path, str]:
    """The example and train_chainer.py, each one epoch of the tiny MNIST: (out, stdout) of each."""
    flags = ["-e", "1", "-u", "10", "-b", "50", "--data-dir", str(tiny_mnist)]
    ours = tmp_path / "ours"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), *flags, "-o", str(ours)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    theirs = tmp_path / "theirs"
    script = load_script("train_chainer")
    args = script.build_parser().parse_args(
        [*flags, "-m", "mlp", "--validation", "test", "--no-progress", "-o", str(theirs)]
    )
    trainer = script.build_trainer(args)
    # Chainer's PrintReport writes to the sys.stdout of the time Chainer was imported: give it a stream of its own.
    table = io.StringIO()
    trainer.get_extension("PrintReport")._out = table
    trainer.run()
    return ours, result.stdout, theirs, table.getvalue()


def header(stdout: str) -> str:
    return next(line for line in stdout.splitlines() if line.startswith("epoch "))


def test_the_example_writes_the_log_table_and_files_chainers_example_writes(runs: tuple[Path, str, Path, str]) -> None:
    ours, our_stdout, theirs, their_stdout = runs
    our_log, their_log = (json.loads((folder / "log").read_text()) for folder in (ours, theirs))
    assert [list(entry) for entry in our_log] == [list(entry) for entry in their_log]
    assert [(e["epoch"], e["iteration"]) for e in our_log] == [(e["epoch"], e["iteration"]) for e in their_log]
    assert header(our_stdout) == header(their_stdout)
    # Chainer's example also dumps the graph (train_chainer.py leaves DumpGraph out), rendered when dot is there.
    graph = {"cg.dot", "cg.png"} if shutil.which("dot") else {"cg.dot"}
    assert sorted(os.listdir(ours)) == sorted({*os.listdir(theirs), *graph})
