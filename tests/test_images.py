"""Image files -> MNIST-style examples: grayscale, the digit fitted into 20x20, centred by mass in 28x28."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from mnist_lightning.images import ImageError, fit_digit, load_image


def ring(height: int = 20, width: int = 14) -> np.ndarray:
    """An anti-aliased "0": an ellipse outline filling a height x width box, white on black."""
    big = Image.new("L", (width * 8, height * 8), 0)
    ImageDraw.Draw(big).ellipse((0, 0, width * 8 - 1, height * 8 - 1), outline=255, width=24)
    return np.asarray(big.resize((width, height), Image.Resampling.BOX))


def mnist_like(digit: np.ndarray) -> np.ndarray:
    """``digit`` (its longer side 20) pasted into 28x28 with its centre of mass at (14, 14), as MNIST's are."""
    weights = digit.astype(np.float64)
    cy = (weights.sum(1) * np.arange(digit.shape[0])).sum() / weights.sum()
    cx = (weights.sum(0) * np.arange(digit.shape[1])).sum() / weights.sum()
    top, left = int(np.floor(14 - cy + 0.5)), int(np.floor(14 - cx + 0.5))
    field = np.zeros((28, 28), np.uint8)
    field[top : top + digit.shape[0], left : left + digit.shape[1]] = digit
    return field


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    weights = image.astype(np.float64)
    total = weights.sum()
    return (weights.sum(1) * np.arange(image.shape[0])).sum() / total, (
        weights.sum(0) * np.arange(image.shape[1])
    ).sum() / total


def box(image: np.ndarray) -> tuple[int, int]:
    """(height, width) of the box around the non-zero pixels."""
    rows, cols = np.flatnonzero(image.any(1)), np.flatnonzero(image.any(0))
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def save(array: np.ndarray, path: Path, mode: str | None = None) -> Path:
    image = Image.fromarray(array)
    (image.convert(mode) if mode else image).save(path)
    return path


def test_an_image_already_made_as_mnist_was_comes_back_unchanged(tmp_path: Path) -> None:
    digit = ring()
    assert digit.max() == 255 and box(digit) == (20, 14)
    field = mnist_like(digit)
    example = load_image(save(field, tmp_path / "zero.png"))
    assert example.shape == (1, 28, 28) and example.dtype == np.uint8
    assert np.array_equal(example[0], field)


def test_a_large_off_centre_digit_is_fitted_into_20x20_keeping_its_aspect_and_centred_by_mass(tmp_path: Path) -> None:
    canvas = np.zeros((300, 400), np.uint8)
    tall = np.asarray(Image.fromarray(ring()).resize((70, 100), Image.Resampling.LANCZOS))
    canvas[20:120, 300:370] = tall
    example = load_image(save(canvas, tmp_path / "big.png"))[0]
    height, width = box(example)
    assert height == 20 and width == round(70 * 20 / 100)
    cy, cx = centre_of_mass(example)
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5
    assert example.max() == 255


def test_invert_reads_dark_digits_on_light_paper_as_the_same_example(tmp_path: Path) -> None:
    canvas = np.zeros((120, 90), np.uint8)
    canvas[30:70, 20:48] = np.asarray(Image.fromarray(ring()).resize((28, 40)))
    white_on_black = load_image(save(canvas, tmp_path / "white.png"))
    # A grey paper (level 220) with ink strokes, saved as RGB: the paper level is the background.
    paper = (220 - canvas.astype(np.int64) * 200 // 255).astype(np.uint8)
    scan = load_image(save(paper, tmp_path / "scan.png", "RGB"), invert=True)
    assert np.abs(scan.astype(np.int64) - white_on_black).max() <= 3
    assert box(scan[0])[0] == 20
    with pytest.raises(ImageError, match="no pixel is brighter than its background .*--invert"):
        load_image(tmp_path / "scan.png")


def test_transparent_pixels_are_background_with_or_without_invert(tmp_path: Path) -> None:
    digit = ring()
    expected = fit_digit(digit)
    rgba = np.zeros((*digit.shape, 4), np.uint8)
    rgba[..., 3] = digit  # strokes opaque, the rest transparent
    rgba[..., :3] = 255
    assert np.array_equal(load_image(save(rgba, tmp_path / "white.png"))[0], expected)
    rgba[..., :3] = 0
    assert np.array_equal(load_image(save(rgba, tmp_path / "black.png"), invert=True)[0], expected)


def test_faint_speckle_does_not_widen_the_box_and_sixteen_bit_files_are_scaled(tmp_path: Path) -> None:
    digit = ring()
    noisy = np.zeros((60, 60), np.uint8)
    noisy[20:40, 23:37] = digit
    rng = np.random.default_rng(0)
    speckle = rng.random(noisy.shape) < 0.05
    noisy[speckle & (noisy == 0)] = 20
    assert box(load_image(save(noisy, tmp_path / "noisy.png"))[0]) == (20, 14)
    wide = Image.fromarray(noisy.astype(np.uint16) * 257)
    assert wide.mode.startswith("I")
    wide.save(tmp_path / "sixteen.png")
    assert np.array_equal(load_image(tmp_path / "sixteen.png"), load_image(tmp_path / "noisy.png"))


def test_jpeg_ringing_around_a_slightly_darker_patch_of_paper_does_not_widen_the_box(tmp_path: Path) -> None:
    paper = np.full((150, 200), 230, np.uint8)
    ink = 255 - np.asarray(Image.fromarray(mnist_like(ring())).resize((112, 112), Image.Resampling.BICUBIC))
    paper[20:132, 40:152] = np.minimum(230, ink.astype(np.int64) * 4 // 5 + 20).astype(np.uint8)  # patch at 224
    Image.fromarray(paper).save(tmp_path / "scan.jpg", quality=85)
    example = load_image(tmp_path / "scan.jpg", invert=True)[0]
    clean = load_image(save(mnist_like(ring()), tmp_path / "clean.png"))[0]
    assert box(example > 32) == box(clean > 32) == (20, 14)


def test_other_field_sizes_keep_mnists_proportions() -> None:
    example = fit_digit(ring(), (56, 56))
    assert example.shape == (56, 56) and box(example)[0] == 40


@pytest.mark.parametrize(
    ("write", "pattern"),
    [
        (lambda p: p.write_text("7\n"), r"is not an image file PIL can read \(PNG, JPEG, BMP, \.\.\.\)\.$"),
        (
            lambda p: p.write_bytes(_png_bytes(p)[:300]),
            r"could not be decoded: it is damaged or truncated\.$",
        ),
        (lambda p: save(np.zeros((30, 30), np.uint8), p), r"holds no digit: .*--invert reads a dark digit"),
        (lambda p: save(np.full((30, 30), 128, np.uint8), p), r"holds no digit"),
    ],
    ids=["text", "truncated", "black", "flat grey"],
)
def test_files_that_hold_no_readable_digit_end_in_one_sentence(write, pattern: str, tmp_path: Path) -> None:
    path = tmp_path / "input.png"
    write(path)
    with pytest.raises(ImageError, match=pattern) as error:
        load_image(path)
    message = str(error.value)
    assert message.startswith(str(path)) and "\n" not in message


def _png_bytes(path: Path) -> bytes:
    """A PNG of a noisy 200x200 digit, large enough that its first 300 bytes are not all of it."""
    image = np.random.default_rng(1).integers(0, 256, (200, 200), dtype=np.uint8)
    save(image, path)
    return path.read_bytes()


def test_a_model_with_three_channels_is_refused(tmp_path: Path) -> None:
    path = save(mnist_like(ring()), tmp_path / "zero.png")
    with pytest.raises(ImageError, match="converted for one-channel models; this model takes 3 channels"):
        load_image(path, (3, 32, 32))
