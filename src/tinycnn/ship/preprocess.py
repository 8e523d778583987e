"""Turn any picture of one digit into the 28x28 input MNIST's own digits look like.

The steps, the way MNIST was made (LeCun et al.: size-normalised into a 20x20 box keeping the
aspect ratio, anti-aliased, centred in 28x28 by the centre of mass):
  0. pictures larger than 1,000 px on a side are first scaled down (area averaging);
  1. gray, with transparency composited on white;
  2. ink is bright: invert when the background (the median of the border pixels) is light;
  3. separate ink from background, also on paper lit unevenly: fit a smooth surface (quadratic in
     x and y) to the background, subtract it, and cut just above what is left of the background
     (its median plus 5 robust deviations), refitting on the pixels below the cut a few times
     (starting from the fainter half of the pixels: ink is the minority);
     anti-aliased stroke edges keep their shades; then stretch the ink to full strength;
  4. crop to the ink's bounding box (isolated specks do not count: a stroke's pixels have inked
     neighbours);
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

from tinycnn.errors import DataError

BOX = 20          # the digit's longer side after resampling
SIZE = 28
MAX_SIDE = 1000   # larger pictures are scaled down first (a phone photo need not be 12 megapixels here)
MIN_CONTRAST = 0.15   # a picture whose darkest and brightest pixels differ less has no digit
BACKGROUND_FITS = 3   # rounds of fitting the lighting to the pixels judged background
NOISE_DEVIATIONS = 5.0  # ink starts this many robust deviations above the background (3 lets about
                        # 0.1% of Gaussian noise through: hundreds of specks on a photo)


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
    terms = surface_terms(*x.shape)
    flat = x.reshape(-1)
    background = flat <= np.median(flat)  # ink is the minority: the fainter half is surely background
    for _ in range(BACKGROUND_FITS):
        chosen = terms[background]
        lighting = terms @ np.linalg.solve(chosen.T @ chosen, chosen.T @ flat[background])
        rest = flat - lighting
        centre = np.median(rest[background])
        spread = 1.4826 * np.median(np.abs(rest[background] - centre))  # the MAD, scaled like a std
        threshold = centre + NOISE_DEVIATIONS * spread + 1.0 / 255.0
        background = rest <= threshold
    if rest.max() - threshold < MIN_CONTRAST:
        raise ValueError("no digit found (nothing stands out from the background)")
    top = np.percentile(rest[rest > threshold], 90)
    return np.clip((rest - threshold) / max(top - threshold, 1e-6), 0.0, 1.0).reshape(x.shape)


def surface_terms(height: int, width: int) -> np.ndarray:
    """(H*W, 6): 1, y, x, y^2, xy, x^2 per pixel, with x and y in [-1, 1]: a smooth lighting model."""
    y = np.repeat(np.linspace(-1.0, 1.0, height), width)
    x = np.tile(np.linspace(-1.0, 1.0, width), height)
    return np.stack([np.ones_like(x), y, x, y * y, x * y, x * x], axis=1)


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
    on = np.pad(ink_image > 0, 1)
    neighbours = sum(np.roll(np.roll(on, dy, 0), dx, 1) for dy in (-1, 0, 1) for dx in (-1, 0, 1)) - on
    rows, cols = np.nonzero((on & (neighbours > 0))[1:-1, 1:-1])
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
    # MNIST's own centre is pixel 14 (not 13.5): so placed, 99.6% of its test digits land exactly
    # where MNIST put them (measured on the first 2,000)
    top, left = int(np.floor(SIZE / 2 - cy + 0.5)), int(np.floor(SIZE / 2 - cx + 0.5))
    out = np.zeros((SIZE, SIZE))
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + new_h, SIZE), min(left + new_w, SIZE)
    out[y0:y1, x0:x1] = small[y0 - top:y1 - top, x0 - left:x1 - left]
    return out


def shrink(image: np.ndarray) -> np.ndarray:
    """Scale a large (H, W) picture down so its longer side is MAX_SIDE (area averaging)."""
    h, w = image.shape
    if max(h, w) <= MAX_SIDE:
        return image
    scale = MAX_SIDE / max(h, w)
    new_h, new_w = max(1, int(np.floor(h * scale + 0.5))), max(1, int(np.floor(w * scale + 0.5)))
    return area_weights(h, new_h) @ image @ area_weights(w, new_w).T


def preprocess_rgba(rgba: np.ndarray) -> np.ndarray:
    """(H, W, 4) RGBA in [0, 1] to the 28x28 MNIST-style input, as uint8 pixels (white digit on black)."""
    return np.floor(to_mnist(ink(shrink(gray(rgba)))) * 255.0 + 0.5).astype(np.uint8)


def preprocess_file(path: str | Path) -> np.ndarray:
    """28x28 uint8 from an image file; DataError naming the file if it holds no digit."""
    try:
        return preprocess_rgba(read_picture(path))
    except ValueError as e:
        raise DataError(f"{path}: {e}") from None
