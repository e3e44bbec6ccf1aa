"""scripts/export.py (src/mnist_lightning/export.py, export_formats.py): a tiny run's snapshot and model_best as
ONNX and .pt2, the preprocessing JSON beside them, the check on the real test split, missing packages."""

from __future__ import annotations

import json
import sys
from importlib import metadata
from pathlib import Path

import onnxruntime
import pytest
import torch
from conftest import make_mnist

from mnist_lightning import cli, export
from mnist_lightning.__main__ import main as python_m
from mnist_lightning.datasets import get_dataset
from mnist_lightning.interrupts import InterruptWatch
from mnist_lightning.trained import load_trained


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The output folder of one tiny training run: an epoch of two steps (snapshot_iter_2, model_best)."""
    root = tmp_path_factory.mktemp("export")
    data = make_mnist(root / "data")
    argv = ["--data-dir", str(data), "-e", "1", "-b", "40", "--limit-train-batches", "2", "-o", str(root / "out")]
    argv += ["--no-progress", "--noplot", "--accelerator", "cpu"]
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        assert cli.run(cli.build_parser().parse_args(argv), InterruptWatch(), argv) == 0
    return root / "out"


def test_onnx_of_a_snapshot_passes_the_check_on_the_whole_test_split(
    run: Path, mnist_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "lenet.onnx"
    argv = [str(run / "snapshot_iter_2"), "--format", "onnx", "--output", str(output), "--check"]
    assert export.main([*argv, "--data-dir", str(mnist_dir)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"wrote {output} (onnx) and its preprocessing {output}.json"
    assert lines[1].startswith(
        "check passed: onnxruntime against PyTorch on the 10,000 mnist test images: the same class for 10,000, "
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lenet.onnx", "lenet.onnx.json"]
    described = json.loads((tmp_path / "lenet.onnx.json").read_text())
    assert described["input_shape"] == ["N", 1, 28, 28] and described["output_shape"] == ["N", 10]
    assert (described["format"], described["input_name"], described["output_name"]) == ("onnx", "input", "logits")
    assert (described["mean"], described["std"], described["scale"]) == (None, None, 1 / 255)
    # N is dynamic: one image and three give their logits, as PyTorch does.
    session = onnxruntime.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    assert isinstance(session.get_inputs()[0].shape[0], str)
    trained = load_trained(run / "snapshot_iter_2")
    images, _ = get_dataset("mnist").read(mnist_dir, "test")
    for n in (1, 3):
        x = trained.preprocessing(torch.from_numpy(images[:n].copy()))
        (logits,) = session.run(["logits"], {"input": x.numpy()})
        with torch.no_grad():
            torch.testing.assert_close(torch.from_numpy(logits), trained.predictor(x), rtol=0, atol=1e-4)


def test_pt2_of_model_best_loads_and_matches_on_a_few_images(run: Path, tmp_path: Path) -> None:
    output = tmp_path / "best.pt2"
    assert export.main([str(run / "model_best"), "--format", "pt2", "-o", str(output)]) == 0
    assert json.loads((tmp_path / "best.pt2.json").read_text())["format"] == "pt2"
    module = torch.export.load(output).module()
    trained = load_trained(run / "model_best")
    x = trained.preprocessing(torch.randint(0, 256, (5, 1, 28, 28), dtype=torch.uint8))
    with torch.no_grad():
        assert torch.equal(module(x), trained.predictor(x))


def test_the_check_fails_on_another_models_file(run: Path, tmp_path: Path) -> None:
    """The file of one model checked against another (the snapshot's weights, moved) differs, and says so."""
    trained = load_trained(run / "snapshot_iter_2")
    export.export(trained, "pt2", str(tmp_path / "model.pt2"))
    with torch.no_grad():
        for parameter in trained.predictor.parameters():
            parameter.add_(0.01)
    images, labels = get_dataset("mnist").read(run.parent / "data", "test")
    result = export.check(trained, "pt2", str(tmp_path / "model.pt2"), images, labels)
    assert not result.passed and result.max_difference > export.LOGIT_TOLERANCE
    assert export.check_line(result, "pt2", "mnist").startswith("check FAILED: torch.export.load against PyTorch")


@pytest.mark.parametrize(("hidden", "flags"), [("onnxruntime", ["--check"]), ("onnxscript", [])])
def test_onnx_without_the_export_packages_names_the_install_command(
    run: Path,
    tmp_path: Path,
    hidden: str,
    flags: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(sys.modules, hidden, None)  # import raises ImportError, as when it is not installed
    argv = [str(run / "snapshot_iter_2"), "--format", "onnx", "-o", str(tmp_path / "m.onnx"), *flags]
    assert export.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: --format onnx") and err.endswith(".\n")
    assert f"and {hidden} cannot be imported: install them with pip install -e '.[export]'." in err
    assert list(tmp_path.iterdir()) == []


def test_check_without_the_test_split_writes_nothing(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [str(run / "model_best"), "--format", "pt2", "-o", str(tmp_path / "m.pt2"), "--check"]
    assert export.main([*argv, "--data-dir", str(tmp_path / "absent")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "t10k-images-idx3-ubyte" in err
    assert list(tmp_path.iterdir()) == []


def test_the_command_is_python_m_mnist_lightning_export_and_a_console_script(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        python_m(["export", "--help"])
    assert exited.value.code == 0 and "--format {onnx,pt2}" in capsys.readouterr().out
    (script,) = metadata.entry_points(group="console_scripts", name="mnist-lightning-export")
    assert script.load() is export.main
