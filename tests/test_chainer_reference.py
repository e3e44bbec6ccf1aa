"""The Chainer reference script and the framework-neutral weights: same data, same split, same start, real runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from conftest import load_script

from mnist_lightning.chainer_compat import INSTALL_HINT, import_chainer
from mnist_lightning.data import EpochShuffle, ImageDataModule
from mnist_lightning.datasets import MNIST_FILES
from mnist_lightning.models import build_predictor
from mnist_lightning.split import split_indices
from mnist_lightning.weights import FORMAT, WeightsError, layer_shapes, load_npz, read_arrays, save_npz, write_arrays

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "train_chainer.py"
# Chainer's PrintReport header: each name left-aligned in max(10, len(name)) columns, joined by two spaces.
HEADER = "epoch       main/loss   validation/main/loss  main/accuracy  validation/main/accuracy  elapsed_time\n"


def _missing(reason: str) -> None:
    """A missing prerequisite fails under CI (nothing may be skipped there) and skips elsewhere."""
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def tc() -> ModuleType:
    """``scripts/train_chainer.py`` imported as a module; needs Chainer."""
    try:
        import_chainer()
    except ImportError as error:
        _missing(str(error))
    return load_script("train_chainer")


@pytest.fixture(scope="module")
def data_dir() -> Path:
    """The real MNIST: ``$MNIST_DATA_DIR`` or ``<repo>/../shared/data``."""
    path = Path(os.environ.get("MNIST_DATA_DIR", ROOT.parent / "shared" / "data"))
    if not (path / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file():
        _missing(f"MNIST is not in {path}: set MNIST_DATA_DIR to a folder holding MNIST/raw/")
    return path


def run_script(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``scripts/train_chainer.py`` in a fresh interpreter, as a user would."""
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300, env=env, cwd=ROOT
    )


# --- weights.py: the framework-neutral .npz ---------------------------------------------------------------------


@pytest.mark.parametrize(("model", "n_units"), [("lenet", 100), ("mlp", 30)])
def test_weights_round_trip_between_torch_predictors(model: str, n_units: int, tmp_path: Path) -> None:
    torch.manual_seed(0)
    source, target = build_predictor(model, n_units), build_predictor(model, n_units)
    save_npz(source, tmp_path / "w.npz", model, n_units)
    load_npz(target, tmp_path / "w.npz", model, n_units)
    for a, b in zip(source.state_dict().values(), target.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    with np.load(tmp_path / "w.npz") as data:
        assert str(data["format"]) == FORMAT and str(data["model"]) == model and int(data["n_units"]) == n_units
        assert data["layer0/W"].dtype == np.float32
    assert [p.name for p in tmp_path.iterdir()] == ["w.npz"]


def test_weights_schema_layout_for_lenet(tmp_path: Path) -> None:
    """Conv weights are (out, in, kh, kw), linear weights (out, in), in forward order."""
    save_npz(build_predictor("lenet"), tmp_path / "w.npz", "lenet", 100)
    with np.load(tmp_path / "w.npz") as data:
        shapes = {k: data[k].shape for k in data.files if k.startswith("layer")}
    assert shapes == {
        "layer0/W": (6, 1, 5, 5),
        "layer0/b": (6,),
        "layer1/W": (16, 6, 5, 5),
        "layer1/b": (16,),
        "layer2/W": (120, 256),
        "layer2/b": (120,),
        "layer3/W": (64, 120),
        "layer3/b": (64,),
        "layer4/W": (10, 64),
        "layer4/b": (10,),
    }


def test_weights_refuse_another_model_or_width_and_leave_the_predictor_unchanged(tmp_path: Path) -> None:
    save_npz(build_predictor("mlp", 30), tmp_path / "mlp30.npz", "mlp", 30)
    save_npz(build_predictor("lenet"), tmp_path / "lenet.npz", "lenet", 100)
    net = build_predictor("mlp", 40)
    before = [p.detach().clone() for p in net.parameters()]
    with pytest.raises(WeightsError, match="holds weights of model 'mlp' with 30 units, not 40"):
        load_npz(net, tmp_path / "mlp30.npz", "mlp", 40)
    with pytest.raises(WeightsError, match="holds weights of model 'lenet', not 'mlp'"):
        load_npz(net, tmp_path / "lenet.npz", "mlp", 40)
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))
    # LeNet's shapes do not depend on n_units, so its recorded value is not checked.
    load_npz(build_predictor("lenet"), tmp_path / "lenet.npz", "lenet", 7)


def test_weights_errors_are_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="no such weights file"):
        read_arrays(tmp_path / "absent.npz", "lenet", 100)
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(WeightsError, match="is not a NumPy .npz file"):
        read_arrays(tmp_path / "text.npz", "lenet", 100)
    np.savez(tmp_path / "other.npz", W=np.zeros(3))
    with pytest.raises(WeightsError, match="is not an mnist-lightning weights file"):
        read_arrays(tmp_path / "other.npz", "lenet", 100)
    layers = read_arrays_from(build_predictor("mlp", 20), tmp_path)
    layers[1] = (layers[1][0][:, :10], layers[1][1])
    with pytest.raises(WeightsError, match=r"layer1/W has shape \(20, 10\), but mlp needs \(20, 20\)"):
        write_arrays(tmp_path / "bad.npz", "mlp", 20, layers, shapes=layer_shapes(build_predictor("mlp", 20)))
    assert not (tmp_path / "bad.npz").exists()


def read_arrays_from(net: torch.nn.Module, tmp_path: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (W, b) arrays of an MLP with 20 units after a round trip through a file."""
    save_npz(net, tmp_path / "mlp.npz", "mlp", 20)
    return read_arrays(tmp_path / "mlp.npz", "mlp", 20)


@pytest.mark.parametrize("model", ["lenet", "mlp"])
def test_chainer_weights_round_trip(tc: ModuleType, model: str, tmp_path: Path) -> None:
    """torch -> npz -> Chainer -> npz gives back the same arrays, bit for bit."""
    save_npz(build_predictor(model, 30), tmp_path / "torch.npz", model, 30)
    link = tc.build_predictor(model, 30)
    tc.load_weights(link, tmp_path / "torch.npz", model, 30)
    tc.save_weights(link, tmp_path / "chainer.npz", model, 30)
    for (w1, b1), (w2, b2) in zip(
        read_arrays(tmp_path / "torch.npz", model, 30), read_arrays(tmp_path / "chainer.npz", model, 30), strict=True
    ):
        assert np.array_equal(w1, w2) and np.array_equal(b1, b2)


# --- the split -----------------------------------------------------------------------------------------------------


def test_chainer_split_is_the_datamodule_split(tc: ModuleType, data_dir: Path) -> None:
    (x_train, t_train), (x_val, t_val) = tc.load_mnist_arrays(data_dir, seed=0)
    train, val = tc.get_mnist_split(data_dir, seed=0, n_train=5, n_val=3)
    assert len(train) == 5 and len(val) == 3
    assert np.array_equal(train[4][0], x_train[4]) and val[2][1] == t_val[2]
    assert x_train.shape == (48_000, 1, 28, 28) and x_val.shape == (12_000, 1, 28, 28)
    assert x_train.dtype == np.float32 and t_train.dtype == np.int32
    assert float(x_train.min()) == 0.0 and float(x_train.max()) == 1.0

    dm = ImageDataModule(data_dir, batch_size=128, seed=0)
    dm.setup("fit")
    images, labels = MNIST_FILES.load_split(data_dir, train=True)
    assert np.array_equal(dm.train_idx.numpy(), split_indices(60_000, 0.2, 0)[0])
    assert np.array_equal(t_train, labels[dm.train_idx.numpy()])
    assert np.array_equal(x_train[:, 0], images[dm.train_idx.numpy()] / np.float32(255.0))

    # Validation through the DataModule's own loader: the same pixels (bit for bit), labels and order.
    batches = list(dm.val_dataloader())
    assert [len(t) for _, t in batches] == [1000] * 12
    assert np.array_equal(torch.cat([x for x, _ in batches]).numpy(), x_val)
    assert np.array_equal(torch.cat([t for _, t in batches]).numpy(), t_val)

    # The DataModule's first training batch is made of the Chainer training set's examples.
    x0, t0 = next(iter(dm.train_dataloader()))
    order = EpochShuffle(48_000, shuffle=True, seed=0).indices()[:128].numpy()
    assert np.array_equal(x0.numpy(), x_train[order]) and np.array_equal(t0.numpy(), t_train[order])

    (_, other_t_train), _ = tc.load_mnist_arrays(data_dir, seed=1)
    assert not np.array_equal(other_t_train, t_train)


def test_chainer_normalize_is_the_datamodule_normalize(tc: ModuleType, data_dir: Path) -> None:
    """``--normalize`` gives both frameworks the same validation pixels, bit for bit."""
    _, (x_val, t_val) = tc.load_mnist_arrays(data_dir, seed=0, normalize=True)
    dm = ImageDataModule(data_dir, batch_size=128, seed=0, normalize=True)
    dm.setup("fit")
    batches = list(dm.val_dataloader())
    assert np.array_equal(torch.cat([x for x, _ in batches]).numpy(), x_val)
    assert np.array_equal(torch.cat([t for _, t in batches]).numpy(), t_val)
    assert abs(float(x_val.mean())) < 0.01 and abs(float(x_val.std()) - 1) < 0.01


# --- the script, end to end ----------------------------------------------------------------------------------------


def test_script_trains_logs_snapshots_and_plots_from_torch_weights(
    tc: ModuleType, data_dir: Path, tmp_path: Path
) -> None:
    """Two tiny epochs on the real data, starting from torch's weights: Chainer's outputs, and the same start."""
    torch.manual_seed(3)
    net = build_predictor("lenet")
    save_npz(net, tmp_path / "init.npz", "lenet", 100)
    out = tmp_path / "result"
    args = ["--data-dir", str(data_dir), "-e", "2", "-b", "32", "--limit-train-batches", "3", "--limit-val-batches"]
    args += ["1", "-o", str(out), "--no-progress", "--init-from", str(tmp_path / "init.npz")]
    proc = run_script(*args, "--export-init", str(tmp_path / "again.npz"))
    assert proc.returncode == 0, proc.stderr
    assert HEADER in proc.stdout
    assert "total [" not in proc.stdout  # --no-progress: no ProgressBar frames

    log = json.loads((out / "log").read_text())
    assert [(e["epoch"], e["iteration"]) for e in log] == [(0, 0), (1, 3), (2, 6)]
    assert set(log[0]) == {"validation/main/loss", "validation/main/accuracy", "epoch", "iteration", "elapsed_time"}
    assert {"main/loss", "main/accuracy", "validation/main/loss", "validation/main/accuracy"} <= set(log[2])
    assert 0 < log[1]["elapsed_time"] < log[2]["elapsed_time"]
    for name in ("snapshot_iter_3", "snapshot_iter_6"):
        assert (out / name).is_file()
    for name in ("loss.png", "accuracy.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # --init-from then --export-init writes back the very arrays torch saved.
    for (w1, b1), (w2, b2) in zip(
        read_arrays(tmp_path / "init.npz", "lenet", 100), read_arrays(tmp_path / "again.npz", "lenet", 100), strict=True
    ):
        assert np.array_equal(w1, w2) and np.array_equal(b1, b2)

    # Same start: Chainer's pre-training validation equals torch's on the first 1000 validation examples.
    _, val = tc.load_mnist_arrays(data_dir, seed=0, n_val=1000)
    x, t = (torch.from_numpy(a) for a in val)
    with torch.no_grad():
        y = net(x)
    assert log[0]["validation/main/loss"] == pytest.approx(TF.cross_entropy(y, t.long()).item(), rel=1e-5)
    assert log[0]["validation/main/accuracy"] == pytest.approx((y.argmax(1) == t).float().mean().item(), abs=1e-6)


def test_seed_fixes_the_initial_weights_and_the_batch_order(tc: ModuleType, data_dir: Path, tmp_path: Path) -> None:
    """Same --seed, same weights and first batch; another seed changes both."""
    results = []
    for i, seed in enumerate(("5", "5", "6")):
        export = tmp_path / f"init{i}.npz"
        args = tc.build_parser().parse_args(
            ["--data-dir", str(data_dir), "-o", str(tmp_path / f"out{i}"), "--seed", seed, "--export-init", str(export)]
            + ["--no-progress", "--limit-train-batches", "4", "--limit-val-batches", "1", "-b", "16"]
        )
        trainer = tc.build_trainer(args)
        first_batch = trainer.updater.get_iterator("main").next()
        results.append((read_arrays(export, "lenet", 100)[0][0], np.stack([x for x, _ in first_batch])))
    assert np.array_equal(results[0][0], results[1][0]) and np.array_equal(results[0][1], results[1][1])
    assert not np.array_equal(results[0][0], results[2][0]) and not np.array_equal(results[0][1], results[2][1])


def test_script_resumes_from_its_snapshot(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "result"
    common = ["--data-dir", str(data_dir), "-b", "32", "--limit-train-batches", "2", "--limit-val-batches", "1"]
    first = run_script(*common, "-e", "1", "-o", str(out), "--no-progress", "--noplot")
    assert first.returncode == 0, first.stderr
    assert not (out / "loss.png").exists()
    snapshot = str(out / "snapshot_iter_2")
    with_plots = run_script(*common, "-e", "2", "-o", str(out), "--no-progress", "-r", snapshot)
    assert with_plots.returncode == 2
    assert "does not fit this trainer" in with_plots.stderr and "--noplot" in with_plots.stderr
    resumed = run_script(*common, "-e", "2", "-o", str(out), "--no-progress", "--noplot", "-r", snapshot)
    assert resumed.returncode == 0, resumed.stderr
    log = json.loads((out / "log").read_text())
    assert [e["iteration"] for e in log] == [0, 2, 4]


def test_script_without_chainer_prints_the_install_hint(tmp_path: Path) -> None:
    """A ``chainer`` package that fails to import stands in for an environment without Chainer."""
    shadow = tmp_path / "shadow" / "chainer"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError(\"No module named 'chainer'\")\n")
    env = {**os.environ, "PYTHONPATH": str(shadow.parent)}
    proc = run_script("--help", env=env)
    assert proc.returncode == 1
    assert proc.stderr == f"error: {INSTALL_HINT}\n"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--data-dir", "{tmp}/nothing"], "not found in"),
        (["--init-from", "{tmp}/mlp.npz"], "holds weights of model 'mlp', not 'lenet'."),
        (["--resume", "{tmp}/absent"], "--resume {tmp}/absent: no such file."),
        (["--resume", "{tmp}/mlp.npz"], "does not fit this trainer"),
        (["--resume", "{tmp}/text"], "is not a Chainer trainer snapshot."),
        (["--device", "foo"], "--device foo cannot be used"),
        (["--optimizer", "adadelta", "--lr", "0.1"], "Chainer's AdaDelta has no learning rate."),
        (["-o", "{tmp}/mlp.npz"], "is a file, not a folder."),
    ],
)
def test_script_bad_input_ends_in_one_sentence(
    tc: ModuleType, data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    save_npz(build_predictor("mlp"), tmp_path / "mlp.npz", "mlp", 100)
    (tmp_path / "text").write_text("not a snapshot")
    argv = ["--data-dir", str(data_dir), "-o", str(tmp_path / "out"), "--no-progress", "--limit-train-batches", "1"]
    argv += [a.format(tmp=tmp_path) for a in extra]
    capsys.readouterr()
    assert tc.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message.format(tmp=tmp_path) in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_chainer_validation_on_the_test_set_is_the_datamodules(tc: ModuleType, data_dir: Path) -> None:
    """``--validation test``: all 60,000 images train and the 10,000 test images validate, as in Lightning."""
    (x_train, t_train), (x_val, t_val) = tc.load_mnist_arrays(data_dir, validation="test", normalize=True)
    assert x_train.shape == (60_000, 1, 28, 28) and x_val.shape == (10_000, 1, 28, 28)
    _, labels = MNIST_FILES.load_split(data_dir, train=True)
    assert np.array_equal(t_train, labels)
    dm = ImageDataModule(data_dir, validation="test", normalize=True)
    dm.setup("fit")
    batches = list(dm.val_dataloader())
    assert np.array_equal(torch.cat([x for x, _ in batches]).numpy(), x_val)
    assert np.array_equal(torch.cat([t for _, t in batches]).numpy(), t_val)


def test_script_trains_on_another_dataset_and_validates_on_its_test_set(tmp_path: Path) -> None:
    from conftest import make_mnist

    data = make_mnist(tmp_path / "data", folder="FashionMNIST")
    out = tmp_path / "result"
    args = ["--dataset", "fashion-mnist", "--validation", "test", "--data-dir", str(data), "-e", "1", "-b", "40"]
    proc = run_script(*args, "-o", str(out), "--no-progress", "--noplot")
    assert proc.returncode == 0, proc.stderr
    log = json.loads((out / "log").read_text())
    assert [(e["epoch"], e["iteration"]) for e in log] == [(0, 0), (1, 5)]  # 200 images in batches of 40
    missing = run_script("--dataset", "kmnist", "--data-dir", str(data), "-o", str(out), "--no-progress")
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    assert missing.stderr.startswith("error: KMNIST files ") and "/KMNIST/raw: download them from " in missing.stderr
