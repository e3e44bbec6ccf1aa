"""The prediction command: a tiny run's snapshot classifies its test split, IDX files, image files and folders;
its accuracy is the training run's test accuracy; bad input ends in one sentence and exit status 2."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO, make_mnist
from PIL import Image
from test_cli import train

from mnist_lightning.__main__ import main as module_main
from mnist_lightning.idx import IMAGE_MAGIC, LABEL_MAGIC, read_idx
from mnist_lightning.images import load_image
from mnist_lightning.predict import main
from mnist_lightning.trained import load_trained, model_file_contents

PREDICT = str(REPO / "scripts" / "predict.py")


@dataclass(frozen=True)
class TrainedRun:
    """What the shared tiny run left: its data folder, last snapshot and printed test accuracy."""

    data: Path
    snapshot: Path
    test_accuracy: str

    @property
    def raw(self) -> Path:
        return self.data / "MNIST" / "raw"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    """One epoch (2 iterations) of train.py on a tiny MNIST, shared by every test here."""
    root = tmp_path_factory.mktemp("predict")
    data = make_mnist(root / "data")
    result = train(["--data-dir", str(data), "-e", "1", "-o", str(root / "out"), "--no-progress", "--noplot"], root)
    assert result.returncode == 0, result.stderr
    accuracy = re.search(r"^test/main/accuracy: (\S+)$", result.stdout, re.M)
    assert accuracy is not None, result.stdout
    return TrainedRun(data, root / "out" / "snapshot_iter_2", accuracy.group(1))


def predict(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, PREDICT, *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=os.environ
    )


def accuracy_of(stdout: str) -> str:
    found = re.search(r"^accuracy: (\S+) \(\d+ of \d+ labelled inputs\)$", stdout, re.M)
    assert found is not None, stdout
    return found.group(1)


def test_the_test_split_gives_the_training_runs_test_accuracy(run: TrainedRun, tmp_path: Path) -> None:
    out, matrix = tmp_path / "predictions.csv", tmp_path / "confusion.png"
    args = [str(run.snapshot), "--data-dir", str(run.data), "--output", str(out), "--confusion-matrix", str(matrix)]
    result = predict(args, tmp_path)
    assert result.returncode == 0, result.stderr
    assert accuracy_of(result.stdout) == run.test_accuracy
    rows = list(csv.DictReader(out.open()))
    labels = read_idx(run.raw / "t10k-labels-idx1-ubyte", LABEL_MAGIC)
    assert list(rows[0]) == ["input", "prediction", "probability", "label"]
    assert [row["label"] for row in rows] == [str(k) for k in labels]
    assert [row["input"] for row in rows] == [f"mnist test[{i}]" for i in range(len(labels))]
    correct = sum(row["prediction"] == row["label"] for row in rows)
    assert f"{correct / len(rows):.4f}" == run.test_accuracy
    assert all(0.1 <= float(row["probability"]) <= 1.0 for row in rows)  # the top class of 10 has at least 1/10
    assert matrix.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["confusion.png", "predictions.csv"]  # no temp files


def test_an_idx_file_with_its_labels_beside_it_and_one_without(
    run: TrainedRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images = run.raw / "t10k-images-idx3-ubyte"
    assert main([str(run.snapshot), str(images), "--output", str(tmp_path / "p.json"), "-b", "7"]) == 0
    assert accuracy_of(capsys.readouterr().out) == run.test_accuracy  # batches of 7: the same predictions
    rows = json.loads((tmp_path / "p.json").read_text())
    assert rows[3]["input"] == f"{images}[3]" and set(rows[3]) == {"input", "prediction", "probability", "label"}
    alone = tmp_path / "alone" / "t10k-images-idx3-ubyte"
    alone.parent.mkdir()
    shutil.copy(images, alone)
    assert main([str(run.snapshot), str(alone)]) == 0
    table = capsys.readouterr().out
    assert "accuracy" not in table
    header, first = table.splitlines()[1:3]
    assert header.split() == ["input", "prediction", "probability"]
    assert first.split()[0] == f"{alone}[0]" and [r["prediction"] for r in rows[:1]] == [first.split()[1]]


def as_png(image: np.ndarray, path: Path, scale: int = 4, invert: bool = False) -> Path:
    """A 28x28 example drawn larger (and black on white with ``invert``), as someone would photograph it."""
    big = Image.fromarray(image).resize((28 * scale, 28 * scale), Image.Resampling.NEAREST)
    (Image.fromarray(255 - np.asarray(big)) if invert else big).save(path)
    return path


def test_a_folder_predicts_its_images_in_name_order_and_lists_its_bad_files(run: TrainedRun, tmp_path: Path) -> None:
    images = read_idx(run.raw / "t10k-images-idx3-ubyte", IMAGE_MAGIC)
    folder = tmp_path / "scans"
    folder.mkdir()
    for i, name in enumerate(["b.png", "a.png", "c.jpg"]):
        as_png(images[i], folder / name, invert=True)
    (folder / "notes.txt").write_text("not an image\n")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    (folder / ".hidden").write_text("passed over\n")
    (folder / "sub").mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "mnist_lightning", "predict", str(run.snapshot), str(folder), "--invert"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1, result.stderr
    skipped = result.stderr.strip().splitlines()
    assert len(skipped) == 2 and all(line.startswith("skipped: ") and line.endswith(".") for line in skipped)
    assert "broken.png" in skipped[0] and "notes.txt is not an image file" in skipped[1]
    lines = result.stdout.splitlines()
    names = [line.split()[0] for line in lines[2:]]
    assert names == [str(folder / n) for n in ("a.png", "b.png", "c.jpg")]
    # Each prediction is the model's on the converted image, fed as the training run fed its inputs.
    trained = load_trained(run.snapshot)
    converted = torch.from_numpy(np.stack([load_image(n, invert=True) for n in names]))
    expected = trained.model(trained.preprocessing(converted)).argmax(1).tolist()
    assert [int(line.split()[1]) for line in lines[2:]] == expected


def test_a_model_file_predicts_as_its_snapshot_does(
    run: TrainedRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trained = load_trained(run.snapshot)
    path = tmp_path / "model_best"
    torch.save(model_file_contents(trained.model, "mnist", normalize=False), path)
    outputs = []
    for model in (run.snapshot, path):
        assert main([str(model), "--data-dir", str(run.data), "--accelerator", "cpu"]) == 0
        outputs.append(capsys.readouterr().out.splitlines()[1:])
    assert outputs[0] == outputs[1] and accuracy_of("\n".join(outputs[0])) == run.test_accuracy


def bad_inputs(run: TrainedRun, tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    """Command lines that must end in one sentence and exit status 2, with what the sentence says."""
    text = tmp_path / "digit.png"
    text.write_text("7\n")
    random_bytes = tmp_path / "random.ckpt"
    random_bytes.write_bytes(np.random.default_rng(0).bytes(3000))
    (tmp_path / "empty").mkdir()
    os.symlink(tmp_path / "gone.png", tmp_path / "link.png")
    no_labels = tmp_path / "unlabelled-images-idx3-ubyte"
    shutil.copy(run.raw / "t10k-images-idx3-ubyte", no_labels)
    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    (only_bad / "x.txt").write_text("x\n")
    snap = str(run.snapshot)
    return {
        "not an image": ([snap, str(text)], r"digit\.png is not an image file PIL can read"),
        "missing path": ([snap, str(tmp_path / "absent.png")], r"absent\.png: no such file\.$"),
        "unreadable": ([snap, str(tmp_path / "link.png")], r"link\.png: a symbolic link to a missing file\.$"),
        "empty folder": ([snap, str(tmp_path / "empty")], r"empty holds no file to classify"),
        "only bad files": ([snap, str(only_bad)], r"none of the inputs could be read"),
        "snapshot of something else": ([str(random_bytes)], r"random\.ckpt is not a snapshot or model file"),
        "missing snapshot": ([str(tmp_path / "nope")], r"nope: no such file\.$"),
        "labels file": ([snap, str(run.raw / "t10k-labels-idx1-ubyte")], r"is an IDX labels file: give its images"),
        "output type": ([snap, "--output", str(tmp_path / "p.txt")], r"give a file name ending in \.csv or \.json"),
        "output folder": ([snap, "--output", str(tmp_path / "no" / "p.csv")], r"the folder .*/no does not exist"),
        "matrix without labels": (
            [snap, str(no_labels), "--confusion-matrix", str(tmp_path / "m.png")],
            r"--confusion-matrix needs labels, and none of the inputs has one",
        ),
        "no data": ([snap, "--data-dir", str(tmp_path / "empty")], r"not found in .*empty/MNIST/raw"),
    }


def test_bad_input_ends_in_one_sentence_and_status_2(
    run: TrainedRun, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The data folder of "no data" must stay empty: no download from here.
    monkeypatch.setattr("mnist_lightning.datasets.TorchvisionDownload.__call__", lambda self, data_dir: None)
    for case, (args, pattern) in bad_inputs(run, tmp_path).items():
        assert main(args) == 2, case
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        assert re.search(pattern, lines[-1]), (case, captured.err)
        assert lines[-1].startswith("error: ") and lines[-1].endswith("."), (case, lines)
        assert len(lines) == 1 or case == "only bad files", (case, lines)
        assert captured.out == "", (case, captured.out)
    written = [p.name for p in tmp_path.iterdir() if p.name in ("p.txt", "m.png") or p.name.startswith(".")]
    assert written == [] and not (tmp_path / "no").exists()


def test_a_subprocess_error_is_one_line_without_a_traceback(tmp_path: Path) -> None:
    result = predict([str(tmp_path / "absent")], tmp_path)
    assert result.returncode == 2 and result.stderr == f"error: {tmp_path / 'absent'}: no such file.\n"


def test_help_describes_the_image_conversion_and_every_entry_point_reaches_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    pyproject = (REPO / "pyproject.toml").read_text().splitlines()
    assert 'mnist-lightning-predict = "mnist_lightning.predict:main"' in pyproject
    for entry in (lambda: main(["--help"]), lambda: module_main(["predict", "--help"])):
        with pytest.raises(SystemExit) as done:
            entry()
        assert done.value.code == 0
        usage = " ".join(capsys.readouterr().out.split())
        assert "usage: predict.py [-h]" in usage and "--invert" in usage
        assert "fitted into a 20x20 box keeping its aspect ratio, and centred by its centre of mass" in usage
    with pytest.raises(SystemExit):
        module_main(["--help"])
    assert "--batchsize" in capsys.readouterr().out  # without a command word, training as before
