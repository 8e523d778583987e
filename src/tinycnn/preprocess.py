"""Turn any picture of one digit into the 28x28 input MNIST's own digits look like.

The steps, the way MNIST was made (LeCun et al.: size-normalised into a 20x20 box keeping the
aspect ratio, anti-aliased, centred in 28x28 by the centre of mass):
  1. gray, with transparency composited on white;
  2. ink is bright: invert when the background (the median of the border pixels) is light;
  3. separate ink from background: Otsu's threshold splits the pixels into two classes, and the
     cut goes just above the background class (its median plus 3 robust deviations), so paper
     lit unevenly is dropped while anti-aliased stroke edges keep their shades; then stretch the
     ink to full strength;
  4. crop to the ink's bounding box;
  5. resample so the longer side is 20 px (area averaging: each output pixel is the mean of the
     input area it covers);
  6. place in 28x28 so that the centre of mass is at the centre.
The demo page (web/preprocess.js) does the same arithmetic in JavaScript; a test feeds the same
pictures to both. Everything is plain array arithmetic, so the two can agree.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import DataError

BOX = 20          # the digit's longer side after resampling
SIZE = 28
MIN_CONTRAST = 0.15   # a picture whose darkest and brightest pixels differ less has no digit


def read_picture(path: str | Path) -> np.ndarray:
    """(H, W, 4) float RGBA in [0, 1] from any image file PIL reads; DataError if it is none."""
    try:
        with Image.open(path) as image:
            image.load()
            rgba = image.convert("RGBA")
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise DataError(f"{path}: not an image this program can read ({e})") from None
    return np.asarray(rgba, dtype=np.float64) / 255.0


def gray(rgba: np.ndarray) -> np.ndarray:
    """Luma (ITU-R 601) over a white background: transparent pixels are white paper."""
    alpha = rgba[..., 3]
    luma = rgba[..., 0] * 0.299 + rgba[..., 1] * 0.587 + rgba[..., 2] * 0.114
    return luma * alpha + (1.0 - alpha)


def ink(gray_image: np.ndarray) -> np.ndarray:
    """Ink strength in [0, 1] (bright ink on black), from a gray picture of either polarity."""
    border = np.concatenate([gray_image[0], gray_image[-1], gray_image[1:-1, 0], gray_image[1:-1, -1]])
    x = 1.0 - gray_image if np.median(border) > 0.5 else gray_image
    if x.max() - x.min() < MIN_CONTRAST:
        raise ValueError("no digit found (the picture is blank or has too little contrast)")
    split = otsu(x)
    background = x[x <= split]
    centre = np.median(background)
    spread = 1.4826 * np.median(np.abs(background - centre))  # the MAD, scaled like a standard deviation
    threshold = min(split, centre + 3.0 * spread + 1.0 / 255.0)
    top = np.percentile(x[x > threshold], 90)
    return np.clip((x - threshold) / max(top - threshold, 1e-6), 0.0, 1.0)


def otsu(x: np.ndarray) -> float:
    """Otsu's threshold over 256 bins of [0, 1]: the level that best splits ink from background."""
    bins = np.minimum((x * 255.0 + 0.5).astype(np.int64), 255)
    hist = np.bincount(bins.reshape(-1), minlength=256).astype(np.float64)
    levels = np.arange(256, dtype=np.float64)
    weight_low = np.cumsum(hist)
    sum_low = np.cumsum(hist * levels)
    total, total_sum = weight_low[-1], sum_low[-1]
    weight_high = total - weight_low
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (total_sum * weight_low - total * sum_low) ** 2 / (weight_low * weight_high)
    between[~np.isfinite(between)] = -1.0
    return (int(np.argmax(between)) + 0.5) / 255.0  # pixels above this level are ink


def area_weights(source: int, target: int) -> np.ndarray:
    """(target, source) matrix: output pixel i averages the input span [i, i+1) * source/target."""
    scale = source / target
    weights = np.zeros((target, source))
    for i in range(target):
        start, end = i * scale, (i + 1) * scale
        for j in range(int(np.floor(start)), min(int(np.ceil(end)), source)):
            weights[i, j] = min(end, j + 1) - max(start, j)
    return weights / weights.sum(1, keepdims=True)


def to_mnist(ink_image: np.ndarray) -> np.ndarray:
    """Crop, resample into the 20x20 box, centre by mass in 28x28; float in [0, 1]."""
    rows, cols = np.nonzero(ink_image > 0)
    if len(rows) == 0:
        raise ValueError("no digit found (no ink above the background)")
    crop = ink_image[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    h, w = crop.shape
    scale = BOX / max(h, w)
    new_h, new_w = max(1, int(np.floor(h * scale + 0.5))), max(1, int(np.floor(w * scale + 0.5)))
    small = area_weights(h, new_h) @ crop @ area_weights(w, new_w).T
    mass = small.sum()
    cy = (small.sum(1) * np.arange(new_h)).sum() / mass
    cx = (small.sum(0) * np.arange(new_w)).sum() / mass
    top, left = int(np.floor(SIZE / 2 - 0.5 - cy + 0.5)), int(np.floor(SIZE / 2 - 0.5 - cx + 0.5))
    out = np.zeros((SIZE, SIZE))
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + new_h, SIZE), min(left + new_w, SIZE)
    out[y0:y1, x0:x1] = small[y0 - top:y1 - top, x0 - left:x1 - left]
    return out


def preprocess_rgba(rgba: np.ndarray) -> np.ndarray:
    """(H, W, 4) RGBA in [0, 1] to the 28x28 MNIST-style input, as uint8 pixels (white digit on black)."""
    return np.floor(to_mnist(ink(gray(rgba))) * 255.0 + 0.5).astype(np.uint8)


def preprocess_file(path: str | Path) -> np.ndarray:
    """28x28 uint8 from an image file; DataError naming the file if it holds no digit."""
    try:
        return preprocess_rgba(read_picture(path))
    except ValueError as e:
        raise DataError(f"{path}: {e}") from None
