"""Someone else's code, run where it can do little harm: a child process, in a copy of the
submission, with a wall-clock limit, a memory limit, a throwaway HOME and, where the OS allows
(`unshare --net`, as root or with user namespaces), no network.

What this protects against: a submission that loops, eats memory, writes into the teacher's
folder or HOME, or downloads. What it does not: code that means harm can still read what the
teacher's user may read and use the CPU until its time is up; for that, run tinycnn in a container.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tinycnn.evidence.grading.course_env import built_python
from tinycnn.train.data import CACHE_NAME, IDX_NAMES, default_data_dir, find_mnist, load_mnist, write_idx

MNIST_DIR = ".tinycnn-mnist"  # in a copy: the four IDX files a re-run notebook's torchvision MNIST reads

MEMORY = 6 * 2**30  # bytes of address space: torch reserves much more than it touches
SECONDS = 300


@dataclass
class Ran:
    ok: bool
    output: dict | None  # the child's JSON answer
    error: str  # one line: why it did not answer


@dataclass
class Job:
    """One sandboxed run, as data: here or on a Dask worker (which builds the course environment itself)."""

    code: str  # tinycnn's own child code; it prints one JSON object last
    args: list[str]
    seconds: float
    mnist: bool = False  # a copy of this user's MNIST cache in the child's HOME (tinycnn's engine reads it)
    idx: bool = False  # MNIST's four IDX files in the copy, for a notebook's torchvision (notebook_run.py)
    extra: dict[str, str] = field(default_factory=dict)  # files written into the copy first
    python: str | None = None  # the interpreter (default: tinycnn's own)
    requirements: str | None = None  # or the course environment built from this list


def gpu_present() -> bool:
    """An NVIDIA GPU this machine's processes can open (what a course notebook's `cuda` flag finds)."""
    return Path("/dev/nvidiactl").exists()


def run_job(job: Job, folder: Path) -> Ran:
    python = job.python or (str(built_python(job.requirements)) if job.requirements else None)
    # CUDA reserves far more address space than it uses: with a GPU a notebook runs under the wall-clock
    # limit alone, so that its `cuda` flag finds the GPU as it did for its author.
    memory = None if job.idx and gpu_present() else MEMORY
    return run_isolated(job.code, folder, job.args, job.seconds, memory, mnist=job.mnist, extra=job.extra,
                        idx=job.idx, python=python)


def network_off() -> list[str]:
    """The command prefix that runs a child without network, or [] where the OS does not allow it."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "--net", "true"], capture_output=True).returncode == 0:
        return [unshare, "--net"]
    return []


def limits(memory: int | None) -> None:  # in the child, before it runs anything
    if memory is not None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    os.setsid()


def run_isolated(
    code: str,
    folder: Path,
    args: list[str],
    seconds: float = SECONDS,
    memory: int | None = MEMORY,
    mnist: bool = False,
    extra: dict[str, str] | None = None,
    idx: bool = False,
    python: str | None = None,
) -> Ran:
    """Run `code` (tinycnn's own, trusted) with `args` in a copy of `folder`; it prints one JSON
    object last. The student's code runs only inside it, and only on the copy; -I keeps the copy's
    files from shadowing tinycnn or torch (a student's torch.py) and ignores PYTHON* variables.
    `mnist`: the child gets a copy of this user's MNIST cache in its own (it cannot touch this one).
    `extra`: files written into the copy first ({path in the copy: text}; a notebook class's module).
    `idx`: MNIST's IDX files in the copy's .tinycnn-mnist/; `python`: the child's interpreter."""
    with tempfile.TemporaryDirectory(prefix="tinycnn-sandbox-") as tmp:
        copy = Path(tmp) / "submission"
        shutil.copytree(
            folder,
            copy,
            symlinks=True,
            ignore=shutil.ignore_patterns(".git", "__pycache__", "runs", "*.safetensors", "*.pt"),
        )  # what code needs, not a project's results
        for name, text in (extra or {}).items():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            (copy / name).write_text(text)
        if idx:
            data = load_mnist(source=find_mnist())  # here, trusted
            for key, name in IDX_NAMES.items():
                write_idx(getattr(data, key), copy / MNIST_DIR / name)
        home = Path(tmp) / "home"
        (home / ".cache" / "tinycnn").mkdir(parents=True)
        if mnist:
            source = find_mnist()  # here, trusted: the bundled copy decoded into this user's cache once
            load_mnist(source=source)
            if (cached := default_data_dir() / CACHE_NAME).is_file():
                shutil.copyfile(cached, home / ".cache" / "tinycnn" / CACHE_NAME)
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(home),
            "MPLBACKEND": "agg",
            "XDG_CACHE_HOME": str(home / ".cache"),
            "PYTHONDONTWRITEBYTECODE": "1",
            # where the GPU's driver libraries are found, and which GPUs the job may see
            **{k: os.environ[k] for k in ("LD_LIBRARY_PATH", "CUDA_VISIBLE_DEVICES") if k in os.environ},
        }
        try:
            done = subprocess.run(
                [*network_off(), python or sys.executable, "-I", "-c", code, *args],
                cwd=copy,
                env=env,
                capture_output=True,
                text=True,
                timeout=seconds,
                preexec_fn=lambda: limits(memory),
            )
        except subprocess.TimeoutExpired:
            return Ran(False, None, f"stopped after {seconds:.0f} s (the time limit)")
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        return Ran(False, None, last)
    return Ran(True, json.loads(lines[-1]), "")
