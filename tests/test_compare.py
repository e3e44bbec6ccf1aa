"""scripts/compare.py on two small Chainer-format logs written here (no training)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from conftest import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "compare.py"

LIGHTNING_LOG = [
    {
        "main/loss": 0.5,
        "main/accuracy": 0.85,
        "validation/main/loss": 0.2,
        "validation/main/accuracy": 0.94,
        "epoch": 1,
        "iteration": 375,
        "elapsed_time": 10.0,
    },
    {
        "main/loss": 0.1,
        "main/accuracy": 0.97,
        "validation/main/loss": 0.08,
        "validation/main/accuracy": 0.975,
        "epoch": 2,
        "iteration": 750,
        "elapsed_time": 18.0,
    },
]
CHAINER_LOG = [
    {
        "validation/main/loss": 2.33,
        "validation/main/accuracy": 0.0844,
        "epoch": 0,
        "iteration": 0,
        "elapsed_time": 2.0,
    },
    {
        "main/loss": 0.4,
        "main/accuracy": 0.88,
        "validation/main/loss": 0.15,
        "validation/main/accuracy": 0.955,
        "epoch": 1,
        "iteration": 375,
        "elapsed_time": 32.0,
    },
    {
        "main/loss": 0.12,
        "main/accuracy": 0.965,
        "validation/main/loss": 0.09,
        "validation/main/accuracy": 0.972,
        "epoch": 2,
        "iteration": 750,
        "elapsed_time": 56.0,
    },
]


@pytest.fixture(scope="module")
def compare() -> ModuleType:
    """``scripts/compare.py`` imported as a module."""
    return load_script("compare")


@pytest.fixture
def runs(tmp_path: Path) -> tuple[Path, Path]:
    """Two output folders holding a Lightning log and a Chainer log (Chainer's layout: indent 4, no newline)."""
    folders = []
    for name, log in (("lightning", LIGHTNING_LOG), ("chainer", CHAINER_LOG)):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "log").write_text(json.dumps(log, indent=4))
        folders.append(folder)
    return folders[0], folders[1]


def table_rows(text: str) -> dict[str, list[str]]:
    """First cell -> the other cells of each table line (the header line is keyed by 'epoch')."""
    return {cells[0]: cells[1:] for cells in (line.split() for line in text.splitlines()) if cells}


def test_table_epoch_by_epoch(compare: ModuleType, runs: tuple[Path, Path], tmp_path: Path, capsys) -> None:
    out = tmp_path / "plots"
    assert compare.main([str(runs[0]), str(runs[1]), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    header = next(line for line in lines if line.lstrip().startswith("epoch"))
    for column in ("train loss L", "train loss C", "val loss L", "val loss C", "val acc L", "val acc C", "C/L"):
        assert column in header
    rows = table_rows(text)
    # Chainer's pre-training validation (epoch 0) has no Lightning counterpart and no training time.
    assert rows["0"] == ["-", "-", "-", "2.330000", "-", "0.0844", "-", "-", "-"]
    # Seconds per epoch come from elapsed_time differences: Lightning 10 then 8, Chainer 30 (from epoch 0) then 24.
    assert rows["1"] == ["0.500000", "0.400000", "0.200000", "0.150000", "0.9400", "0.9550", "10.00", "30.00", "3.00"]
    assert rows["2"] == ["0.100000", "0.120000", "0.080000", "0.090000", "0.9750", "0.9720", "8.00", "24.00", "3.00"]
    assert rows["mean"] == ["-", "-", "-", "-", "-", "-", "9.00", "27.00", "3.00"]
    png = out / "comparison.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in out.iterdir()] == ["comparison.png"]


def test_log_files_can_be_named_directly_and_png_goes_to_the_current_folder(
    compare: ModuleType, runs: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    assert compare.main([str(runs[0] / "log"), str(runs[1] / "log")]) == 0
    assert (tmp_path / "comparison.png").is_file()
    assert "10.00" in capsys.readouterr().out


def test_seconds_per_epoch_with_sparse_entries(compare: ModuleType) -> None:
    """A log written every 2 epochs gives the mean time of those epochs; the last entry of an epoch counts."""
    rows = compare.per_epoch(
        [
            {"epoch": 0, "iteration": 5, "elapsed_time": 1.0, "main/loss": 9.0},
            {"epoch": 0, "iteration": 10, "elapsed_time": 2.0, "main/loss": 3.0},
            {"epoch": 2, "iteration": 40, "elapsed_time": 12.0},
            {"epoch": 4, "iteration": 80, "elapsed_time": 20.0},
        ]
    )
    assert rows[0]["main/loss"] == 3.0 and "seconds" not in rows[0]
    assert rows[2]["seconds"] == pytest.approx(5.0)
    assert rows[4]["seconds"] == pytest.approx(4.0)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no log file at"),
        ("[{", "is not a Chainer LogReport file (invalid JSON"),
        ('{"epoch": 1}', "expected a JSON list of objects"),
        ("[]", "has no entry with an 'epoch'"),
    ],
)
def test_missing_or_invalid_log_is_one_sentence(
    compare: ModuleType, runs: tuple[Path, Path], tmp_path: Path, content: str | None, message: str, capsys
) -> None:
    log = runs[1] / "log"
    if content is None:
        log.unlink()
    else:
        log.write_text(content)
    assert compare.main([str(runs[0]), str(runs[1]), "-o", str(tmp_path / "plots")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "plots" / "comparison.png").exists()


def test_training_flags_need_run(runs: tuple[Path, Path]) -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(runs[0]), str(runs[1]), "-e", "2"], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "training flags need --run" in proc.stderr


FAKE_TRAINING = """
import json, sys
from pathlib import Path

argv = sys.argv[1:]
if argv == ["--help"]:
    print("usage: train.py {help}")
    sys.exit(0)
out = Path(argv[argv.index("-o") + 1])
out.mkdir(parents=True, exist_ok=True)
(out / "argv.json").write_text(json.dumps(argv))
if "--export-init" in argv:
    Path(argv[argv.index("--export-init") + 1]).write_text("weights")
(out / "log").write_text(json.dumps({log}))
sys.exit({status})
"""


def fake_scripts(folder: Path, help_text: str, status: int = 0) -> Path:
    """Stand-ins for train.py and train_chainer.py that record their flags and write a log."""
    folder.mkdir()
    for name, log in (("train.py", LIGHTNING_LOG), ("train_chainer.py", CHAINER_LOG)):
        code = FAKE_TRAINING.format(help=help_text, log=repr(log), status=status if name == "train.py" else 0)
        (folder / name).write_text(code)
    return folder


def test_run_trains_chainer_first_then_lightning_from_its_initial_weights(
    compare: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setattr(compare, "SCRIPTS", fake_scripts(tmp_path / "scripts", "[--init-from PATH]"))
    lightning_out, chainer_out = tmp_path / "L", tmp_path / "C"
    # training flags before the positionals too: argparse must not take "2" for LIGHTNING_OUT
    argv = ["--run", "-e", "2", "--seed", "3", "-o", str(tmp_path), str(lightning_out), str(chainer_out)]
    assert compare.main([*argv, "--chainer-args", "-d @numpy", "--lightning-args", "--accelerator cpu"]) == 0
    init = str(chainer_out / "init.npz")
    chainer_argv = json.loads((chainer_out / "argv.json").read_text())
    lightning_argv = json.loads((lightning_out / "argv.json").read_text())
    common = ["--epoch", "2", "--seed", "3"]
    assert chainer_argv == [*common, "-o", str(chainer_out), "--export-init", init, "-d", "@numpy"]
    expected = [*common, "-o", str(lightning_out), "--accelerator", "cpu", "--init-from", init]
    assert lightning_argv == expected
    assert (tmp_path / "comparison.png").is_file()
    assert "3.00" in capsys.readouterr().out


def test_run_warns_when_train_py_cannot_start_from_the_same_weights(
    compare: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setattr(compare, "SCRIPTS", fake_scripts(tmp_path / "scripts", "[--seed SEED]"))
    assert compare.main(["--run", str(tmp_path / "L"), str(tmp_path / "C"), "-o", str(tmp_path)]) == 0
    assert "--init-from" not in json.loads((tmp_path / "L" / "argv.json").read_text())
    assert "start from different initial weights" in capsys.readouterr().err


def test_run_stops_when_a_training_fails(compare: ModuleType, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(compare, "SCRIPTS", fake_scripts(tmp_path / "scripts", "[--init-from PATH]", status=3))
    assert compare.main(["--run", str(tmp_path / "L"), str(tmp_path / "C"), "-o", str(tmp_path)]) == 2
    assert "train.py exited with status 3" in capsys.readouterr().err
    assert not (tmp_path / "comparison.png").exists()
