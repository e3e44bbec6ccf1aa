"""The data set registry: Fashion-MNIST and KMNIST from generated IDX files, their checks, and a set of one's own."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_mnist, write_idx

from mnist_lightning.data import ImageDataModule
from mnist_lightning.datasets import DATASETS, FASHION_MNIST, KMNIST, MNIST, ImageDataset, get_dataset
from mnist_lightning.idx import DataError

FOLDERS = {"fashion-mnist": "FashionMNIST", "kmnist": "KMNIST"}


@pytest.fixture(params=sorted(FOLDERS))
def generated(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[ImageDataset, Path]:
    """(entry, data folder) for a 200/50-image Fashion-MNIST or KMNIST in torchvision's layout."""
    name = request.param
    return DATASETS[name], make_mnist(tmp_path / "data", folder=FOLDERS[name])


def test_registry_holds_the_three_sets() -> None:
    assert list(DATASETS) == ["mnist", "fashion-mnist", "kmnist"]
    for entry in (MNIST, FASHION_MNIST, KMNIST):
        assert entry.shape == (1, 28, 28) and entry.classes == 10 and len(entry.mean) == len(entry.std) == 1
    assert FASHION_MNIST.class_names[0] == "T-shirt/top" and FASHION_MNIST.class_names[9] == "Ankle boot"
    with pytest.raises(ValueError, match="unknown dataset 'cifar': choose one of mnist, fashion-mnist, kmnist"):
        get_dataset("cifar")


def test_generated_files_load_as_images_with_a_channel(generated: tuple[ImageDataset, Path]) -> None:
    entry, data = generated
    entry.prepare(data)
    images, labels = entry.read(data, "train")
    assert images.shape == (200, 1, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (200,) and labels.dtype == np.int64 and 0 <= labels.min() <= labels.max() <= 9
    test_images, _ = entry.read(data, "test")
    assert test_images.shape == (50, 1, 28, 28)
    written = (data / FOLDERS[entry.name] / "raw" / "train-images-idx3-ubyte").read_bytes()
    assert np.array_equal(images[:, 0], np.frombuffer(written, np.uint8, offset=16).reshape(-1, 28, 28))


def test_a_bad_label_file_is_named_in_one_sentence(generated: tuple[ImageDataset, Path]) -> None:
    entry, data = generated
    path = data / FOLDERS[entry.name] / "raw" / "t10k-labels-idx1-ubyte"
    labels = np.frombuffer(path.read_bytes(), np.uint8, offset=8).copy()
    labels[0] = 12
    write_idx(path, labels)
    with pytest.raises(DataError) as raised:
        entry.prepare(data)
    message = str(raised.value)
    assert message.startswith(f"{path} holds label 12, expected labels 0-9: replace it with the file from https://")
    assert message.endswith(".") and "\n" not in message


def test_missing_files_name_the_set_and_its_folder(tmp_path: Path) -> None:
    (tmp_path / "MNIST" / "raw").mkdir(parents=True)  # MNIST's files do not stand in for KMNIST's
    with pytest.raises(DataError, match=r"^KMNIST files train-images-idx3-ubyte, .* not found in .*/KMNIST/raw: "):
        KMNIST.read(tmp_path, "train")


def test_a_download_is_asked_of_the_sets_own_torchvision_class(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets

    asked: list[tuple[str, bool]] = []

    def fake(name: str) -> object:
        def download(root: str, train: bool, download: bool = False) -> None:
            asked.append((name, train))
            make_mnist(Path(root), folder=name)

        return download

    for name in ("MNIST", "FashionMNIST", "KMNIST"):
        monkeypatch.setattr(torchvision.datasets, name, fake(name))
    FASHION_MNIST.prepare(tmp_path / "data")
    assert asked == [("FashionMNIST", True), ("FashionMNIST", False)]
    assert FASHION_MNIST.read(tmp_path / "data", "test")[0].shape == (50, 1, 28, 28)


def test_a_failed_download_leaves_no_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets

    def offline(root: str, train: bool, download: bool = False) -> None:
        raise RuntimeError("no network in this test")

    monkeypatch.setattr(torchvision.datasets, "KMNIST", offline)
    with pytest.raises(DataError, match="KMNIST files .* not found in"):
        KMNIST.prepare(tmp_path / "data")
    assert not (tmp_path / "data").exists()


def test_datamodule_tells_the_image_shape_and_classes_without_reading_files(rgb: ImageDataset) -> None:
    for name in DATASETS:
        dm = ImageDataModule("nowhere", dataset=name)
        assert dm.input_shape == DATASETS[name].shape and dm.num_classes == DATASETS[name].classes
    dm = ImageDataModule("nowhere", dataset="rgb")
    assert dm.input_shape == (3, 8, 8) and dm.num_classes == 3


def test_datamodule_normalises_by_the_sets_own_mean_and_std(tmp_path: Path) -> None:
    data = make_mnist(tmp_path / "data", folder="FashionMNIST")
    plain, scaled = (ImageDataModule(data, dataset="fashion-mnist", normalize=n) for n in (False, True))
    for dm in (plain, scaled):
        dm.prepare_data()
        dm.setup()
    (x, _), (xn, _) = next(iter(plain.test_dataloader())), next(iter(scaled.test_dataloader()))
    assert torch.equal(xn, (x - 0.2860) / 0.3530)
    assert scaled.hparams["dataset"] == "fashion-mnist"


def rgb_loader(data_dir: object, split: str) -> tuple[np.ndarray, np.ndarray]:
    """A three-channel 8x8 set made in memory: 40 training and 12 test images, labels 0-2."""
    n = 40 if split == "train" else 12
    rng = np.random.default_rng(0 if split == "train" else 1)
    return rng.integers(0, 256, (n, 3, 8, 8)).astype(np.uint8), np.arange(n, dtype=np.int64) % 3


RGB = ImageDataset(
    name="rgb",
    title="RGB",
    load=rgb_loader,
    prepare=lambda data_dir: None,
    shape=(3, 8, 8),
    mean=(0.25, 0.5, 0.75),
    std=(0.5, 0.25, 0.125),
    class_names=("red", "green", "blue"),
)


@pytest.fixture
def rgb(monkeypatch: pytest.MonkeyPatch) -> ImageDataset:
    """The three-channel set above, registered for one test."""
    monkeypatch.setitem(DATASETS, "rgb", RGB)
    return RGB


@pytest.mark.parametrize("pipeline", ["tensor", "torchvision"])
def test_a_registered_set_of_three_channels_is_normalised_per_channel(rgb: ImageDataset, pipeline: str) -> None:
    dm = ImageDataModule("unused", dataset="rgb", normalize=True, pipeline=pipeline, batch_size=8, seed=3)
    dm.prepare_data()
    dm.setup()
    x, t = next(iter(dm.val_dataloader()))
    images, labels = rgb_loader(None, "train")
    mean, std = torch.tensor(RGB.mean).view(3, 1, 1), torch.tensor(RGB.std).view(3, 1, 1)
    expected = (torch.from_numpy(images[dm.val_idx.numpy()]).float() / 255 - mean) / std
    assert x.shape == (8, 3, 8, 8) and torch.equal(x, expected)
    assert torch.equal(t, torch.from_numpy(labels[dm.val_idx.numpy()]))
    assert sum(len(t) for _, t in dm.train_dataloader()) == 32


@pytest.mark.parametrize(
    ("images", "labels", "pattern"),
    [
        (np.zeros((4, 1, 8, 8), np.uint8), np.zeros(4, np.int64), r"holds uint8 images of shape \(1, 8, 8\), expected"),
        (np.zeros((4, 3, 8, 8), np.float32), np.zeros(4, np.int64), r"holds float32 images"),
        (np.zeros((4, 3, 8, 8), np.uint8), np.zeros(3, np.int64), r"has 4 images but int64 labels of shape \(3,\)"),
        (np.zeros((4, 3, 8, 8), np.uint8), np.full(4, 3, np.int64), r"holds label 3, expected labels 0-2"),
    ],
)
def test_a_loader_that_breaks_its_promise_is_named(images: np.ndarray, labels: np.ndarray, pattern: str) -> None:
    broken = ImageDataset(
        name="broken",
        title="Broken",
        load=lambda data_dir, split: (images, labels),
        prepare=lambda data_dir: None,
        shape=(3, 8, 8),
        mean=(0.5,) * 3,
        std=(0.5,) * 3,
        class_names=("a", "b", "c"),
    )
    with pytest.raises(DataError, match=f"^the Broken train set {pattern}"):
        broken.read("unused", "train")
