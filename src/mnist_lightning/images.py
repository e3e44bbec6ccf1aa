"""Image files (PNG, JPEG, ... of any size) -> uint8 examples made the way MNIST's were.

MNIST's digits are white on black: each was fitted into a 20x20 box keeping its aspect ratio (anti-aliased, so
grey levels appear), then placed in the 28x28 field so that its centre of mass lies at the centre. An image file is
converted the same way, with the steps a scan or a photo needs and MNIST's clean scans did not (1 to 3):

1. grayscale (16-bit files scaled to 8 bits); transparent pixels become the background (black, or white with
   ``invert``);
2. ``invert`` for a dark digit on a light background (a scan of ink on paper);
3. the background level (the median of the border pixels) is subtracted and the contrast stretched so that the
   brightest pixel is 255, as MNIST's strokes are;
4. the box around the pixels brighter than :data:`NOISE` (so that faint speckle does not widen it) is cropped and
   resized so that its longer side is 20 pixels, its shorter side in proportion (Lanczos);
5. it is pasted into a black 28x28 field with its centre of mass at the field's centre (pixel (14, 14)).

For a field of another size the box keeps MNIST's proportion (20/28 of each side).
"""

from __future__ import annotations

import os
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

#: MNIST's digit box and field: 20 of 28 pixels.
BOX, FIELD = 20, 28
#: Pixels at most this bright (out of 255, after the background is removed and the contrast stretched) do not widen
#: the digit's box: an eighth of full white, above a JPEG's ringing around the edge of a slightly darker patch.
NOISE = 32


class ImageError(ValueError):
    """An image file that cannot be read or holds no digit; the message is one sentence naming it."""


def read_grayscale(path: str | os.PathLike, invert: bool = False) -> np.ndarray:
    """The image in ``path`` as uint8 (H, W) grayscale, light digit on dark: steps 1 and 2 of the module's list.

    Args:
        path: an image file PIL reads (PNG, JPEG, BMP, GIF, TIFF, WebP, ...); of an animation, the first frame.
        invert: the file holds a dark digit on a light background.

    Raises:
        ImageError: the file is not an image, is damaged, or is too large to decode.
    """
    where = os.fspath(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image = ImageOps.exif_transpose(image)  # a phone photo's "rotate" tag, applied
                gray = _flatten(image, background=255 if invert else 0)
    except UnidentifiedImageError:
        raise ImageError(f"{where} is not an image file PIL can read (PNG, JPEG, BMP, ...).") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"{where} is too large to decode safely: scale it down first.") from None
    except PermissionError:
        raise ImageError(f"{where} is not readable (permission denied).") from None
    except (OSError, SyntaxError, ValueError, EOFError):
        raise ImageError(f"{where} could not be decoded: it is damaged or truncated.") from None
    return 255 - gray if invert else gray


def _flatten(image: Image.Image, background: int) -> np.ndarray:
    """Grayscale pixels of ``image``, transparent parts shown over ``background``."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (background, background, background, 255))
        image = Image.alpha_composite(canvas, rgba)
    if image.mode.startswith("I"):  # 16-bit grayscale: PIL's convert("L") would clip it, not scale it
        return np.rint(np.clip(np.asarray(image, dtype=np.float64), 0, 65535) / 257).astype(np.uint8)
    return np.asarray(image.convert("L"), dtype=np.uint8)


def _border_median(gray: np.ndarray) -> int:
    """The median of the outermost rows and columns: the background's level, whatever the digit covers."""
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    return int(np.median(border))


def fit_digit(gray: np.ndarray, size: tuple[int, int] = (FIELD, FIELD), where: str = "the image") -> np.ndarray:
    """A light-on-dark grayscale image -> uint8 (H, W) of ``size``, made as MNIST was: steps 3 to 5.

    Args:
        gray: uint8 (h, w) grayscale, the digit lighter than the background.
        size: (H, W) of the field; MNIST's is (28, 28).
        where: how a message names the image.

    Raises:
        ImageError: no pixel is brighter than the background.
    """
    pixels = np.clip(gray.astype(np.float64) - _border_median(gray), 0.0, None)
    peak = pixels.max()
    if peak <= 0:
        raise ImageError(
            f"{where} holds no digit: no pixel is brighter than its background "
            "(--invert reads a dark digit on a light background)."
        )
    pixels *= 255.0 / peak
    rows = np.flatnonzero((pixels > NOISE).any(axis=1))
    cols = np.flatnonzero((pixels > NOISE).any(axis=0))
    crop = pixels[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    digit = _resize_into_box(np.rint(crop).astype(np.uint8), size)
    return _centre_by_mass(digit, size)


def _resize_into_box(crop: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``crop`` scaled so that it fills MNIST's box (20/28 of the field) along its longer side, aspect kept."""
    box_h, box_w = (max(1, round(side * BOX / FIELD)) for side in size)
    h, w = crop.shape
    scale = min(box_h / h, box_w / w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    if (new_h, new_w) == (h, w):
        return crop
    return np.asarray(Image.fromarray(crop).resize((new_w, new_h), Image.Resampling.LANCZOS))


def _centre_by_mass(digit: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``digit`` pasted into a black field of ``size`` so that its centre of mass lies at the field's centre."""
    height, width = size
    weights = digit.astype(np.float64)
    total = weights.sum()
    cy = (weights.sum(axis=1) * np.arange(digit.shape[0])).sum() / total
    cx = (weights.sum(axis=0) * np.arange(digit.shape[1])).sum() / total
    # MNIST's centres of mass lie at (14, 14) in pixel indices, half the field; round half up.
    top, left = int(np.floor(height / 2 - cy + 0.5)), int(np.floor(width / 2 - cx + 0.5))
    field = np.zeros(size, dtype=np.uint8)
    # A shift that pushes part of the digit past the edge (a lopsided shape) cuts that part off.
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + digit.shape[0], height), min(left + digit.shape[1], width)
    if y0 < y1 and x0 < x1:
        field[y0:y1, x0:x1] = digit[y0 - top : y1 - top, x0 - left : x1 - left]
    return field


def load_image(
    path: str | os.PathLike, input_shape: tuple[int, int, int] = (1, FIELD, FIELD), invert: bool = False
) -> np.ndarray:
    """The image file ``path`` as one uint8 example (1, H, W), converted as MNIST's digits were.

    Args:
        path: an image file PIL reads, of any size.
        input_shape: (C, H, W) of the model's examples; C must be 1.
        invert: the file holds a dark digit on a light background.

    Raises:
        ImageError: in one sentence, for a file that is not an image, is damaged, or holds no digit.
    """
    channels, height, width = input_shape
    if channels != 1:
        raise ImageError(f"image files are converted for one-channel models; this model takes {channels} channels.")
    gray = read_grayscale(path, invert)
    return fit_digit(gray, (height, width), os.fspath(path))[None]
