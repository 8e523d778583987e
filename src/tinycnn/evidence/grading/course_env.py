"""The course's own Python for re-running a notebook as written: torchvision and the rest of what
real notebooks import, which tinycnn's own environment cannot hold (the registry's torchvision is
built against the CUDA build of torch, not the CPU build tinycnn pins). Either an interpreter the
teacher names (`--python PATH`: the class's own environment), or one tinycnn builds once from a
requirements list (the default course stack below, or `--requirements FILE`) into the user's cache,
under the list's SHA-256 (and the interpreter's version), so a later re-run, and a Dask worker given
the same list, finds the same environment. tinycnn is never installed there: its children reach
tinycnn's own package through a folder put last on their path.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import tinycnn
from tinycnn.errors import ConfigError, DataError
from tinycnn.train.data import default_data_dir

# What a course notebook imports, pinned: torch with the CUDA build the registry's torchvision needs
# (it runs on the CPU too), the summary table, bars, plots, and the kernel the re-run executes.
DEFAULT_REQUIREMENTS = """\
torch==2.14.1
torchvision==0.29.1
torchsummary==1.5.1
torchinfo==1.8.0
tqdm
matplotlib
numpy
pandas
nbclient
nbformat
ipykernel
"""
READY = "ready"  # written last: an environment without it is half-built, and built again


def envs_root() -> Path:
    """Where built environments live: $TINYCNN_COURSE_ENVS, else the user's tinycnn cache."""
    return Path(os.environ.get("TINYCNN_COURSE_ENVS") or default_data_dir() / "course-envs")


def requirements_text(path: Path | None) -> str:
    if path is None:
        return DEFAULT_REQUIREMENTS
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"--requirements {path}: {e.strerror}") from None
    if not any(line.strip() and not line.lstrip().startswith("#") for line in text.splitlines()):
        raise ConfigError(f"--requirements {path}: names no package")
    return text


def env_key(requirements: str) -> str:
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    return hashlib.sha256(f"{version}\n{requirements}".encode()).hexdigest()[:16]


def tinycnn_path() -> Path:
    """A folder holding only a link to tinycnn's package: put last on a child's path, it adds
    tinycnn and nothing else of tinycnn's environment."""
    folder = envs_root() / "tinycnn-path"
    link = folder / "tinycnn"
    target = Path(tinycnn.__file__).resolve().parent
    if not (link.is_symlink() and link.resolve() == target):
        folder.mkdir(parents=True, exist_ok=True)
        spare = folder / f".tinycnn-{os.getpid()}"
        spare.unlink(missing_ok=True)
        spare.symlink_to(target, target_is_directory=True)
        spare.replace(link)
    return folder


def checked_python(python: str) -> Path:
    """An interpreter the teacher names: it must run and have what a re-run needs (nbclient, ipykernel)."""
    path = Path(shutil.which(python) or python)
    if not path.is_file():
        raise ConfigError(f"--python {python}: no such interpreter")
    probe = subprocess.run([str(path), "-c", "import nbclient, ipykernel, nbformat"], capture_output=True, text=True)
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["it does not run"])[-1]
        raise ConfigError(f"--python {python}: cannot re-run notebooks ({last}); it needs nbclient, ipykernel, nbformat")
    return path


def built_python(requirements: str, say=None) -> Path:
    """The course environment for `requirements`, built on first use (minutes, gigabytes), reused after."""
    folder = envs_root() / env_key(requirements)
    python = folder / "bin" / "python"
    if (folder / READY).is_file():
        return python
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f"{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two re-runs (or workers) at once: one builds, the other waits
        if not (folder / READY).is_file():
            build(folder, requirements, say)
    return python


def build(folder: Path, requirements: str, say=None) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    (say or (lambda line: print(line, file=sys.stderr, flush=True)))(
        f"building the course environment in {folder} from {len(requirements.split())} requirements "
        f"(once; the default stack downloads about 5.5 GB)"
    )
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True, capture_output=True)
    (folder / "requirements.txt").write_text(requirements)
    start, done = time.monotonic(), threading.Event()
    ticker = threading.Thread(target=tick, args=(start, done), daemon=True)
    ticker.start()
    try:
        pip = subprocess.run([str(folder / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                              "-r", str(folder / "requirements.txt")], capture_output=True, text=True)
    finally:
        done.set()
        ticker.join()
    if pip.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        last = ([line for line in pip.stderr.splitlines() if line.strip()] or ["pip failed"])[-1]
        raise DataError(f"the course environment could not be built: {last.strip()}")
    (folder / READY).write_text(f"{time.monotonic() - start:.0f} s\n")
    print(f"course environment ready in {time.monotonic() - start:.0f} s", file=sys.stderr, flush=True)


def tick(start: float, done: threading.Event) -> None:
    """A progress line while pip works (it prints nothing with -q for a minute or more)."""
    while not done.wait(10):
        print(f"  installing ... {time.monotonic() - start:.0f} s", file=sys.stderr, flush=True)


def course_python(requirements: Path | None, say=None) -> Path:
    """The course environment built from a list (the default course stack without one)."""
    return built_python(requirements_text(requirements), say)
