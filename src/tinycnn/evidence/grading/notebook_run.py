"""One seed of a notebook re-run as its author ran it, in the course's environment (course_env.py).

Before it runs (here, on the copy): every saved output is cleared, so the log is only what this run
prints; shell and magic lines (`!pip install`, `!git clone`, `%matplotlib inline`, `%%capture`) and
Colab's `drive.mount` are neutralised and listed; a first cell forces the seed over the notebook's
own (torch, numpy, random, CUDA), lets a hard-coded `.cuda()` stay on the CPU where there is no GPU,
and puts tinycnn's MNIST files wherever torchvision's MNIST is asked to look (a literal root, a
variable, a helper module: the class itself is patched), so nothing is downloaded.

After (in the child's answer): each cell's printed text and its seconds (nbclient's timing), and the
error, if any, with its cell. A log that stops before an error in a later cell (a plot on newer
libraries) is still the run's result; an error before any epoch is a finding of its own: the
notebook is not reproducible as published.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from tinycnn.evidence.grading.logs import read_text
from tinycnn.evidence.grading.sandbox import MNIST_DIR

DATA_ROOT = re.compile(r"""\bMNIST\(\s*(?:root\s*=\s*)?['"]([^'"]+)['"]""")
NEUTRALISED = re.compile(r"^([ \t]*)((?:[!%].*)|(?:.*\bdrive\.mount\(.*)|(?:.*\bgoogle\.colab\b.*))$", re.M)
SHELL_CELL = re.compile(r"^\s*%%(?!capture|time)\w+")

SETUP = """\
import os as _os, random as _random
import numpy as _np, torch as _torch
_SEED = {seed}
_random.seed(_SEED); _np.random.seed(_SEED); _torch.manual_seed(_SEED)
_seed_once = _torch.manual_seed
_torch.manual_seed = lambda *_args, **_kwargs: _seed_once(_SEED)  # the notebook's constant seeds _SEED
_torch.cuda.manual_seed = _torch.cuda.manual_seed_all = lambda *_args, **_kwargs: None
if not _torch.cuda.is_available():  # a hard-coded .cuda() stays on the CPU
    _torch.nn.Module.cuda = lambda self, *_args, **_kwargs: self
    _torch.Tensor.cuda = lambda self, *_args, **_kwargs: self
_FILES = _os.path.abspath({mnist!r})


def _place_mnist(root, name="MNIST"):  # tinycnn's IDX files where torchvision's layout has them
    raw = _os.path.join(_os.path.expanduser(str(root)), name, "raw")
    _os.makedirs(raw, exist_ok=True)
    for _file in _os.listdir(_FILES):
        if not _os.path.exists(_os.path.join(raw, _file)):
            _os.symlink(_os.path.join(_FILES, _file), _os.path.join(raw, _file))


for _root in {roots!r}:  # roots written as literals, for a notebook that reads the files itself
    _place_mnist(_root)
try:
    import torchvision.datasets as _datasets
    _mnist_init = _datasets.MNIST.__init__

    def _offline_mnist(self, root, *args, **kwargs):
        _place_mnist(root, type(self).__name__)
        kwargs["download"] = False
        _mnist_init(self, root, *args[:3], **kwargs)

    _datasets.MNIST.__init__ = _offline_mnist
except ImportError:  # no torchvision: the notebook reads MNIST its own way
    pass
"""

# Runs in the child, with the course environment's Python: the prepared notebook, headless.
EXECUTE = r"""
import fcntl, json, re, socket, struct, sys
from datetime import datetime
from pathlib import Path
try:  # without network (unshare --net) the loopback is down, and the kernel talks to nbclient over it
    flags = struct.unpack("16sh", fcntl.ioctl(socket.socket(socket.AF_INET, socket.SOCK_DGRAM), 0x8913,
                                              struct.pack("16sh", b"lo", 0)))[1]  # SIOCGIFFLAGS
    fcntl.ioctl(socket.socket(socket.AF_INET, socket.SOCK_DGRAM), 0x8914, struct.pack("16sh", b"lo", flags | 1))
except OSError:  # not in a namespace of its own: the loopback is up already
    pass
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
notebook, seconds = sys.argv[1], int(sys.argv[2])
nb = nbformat.read(notebook, as_version=4)
client = NotebookClient(nb, timeout=seconds, kernel_name="python3", resources={"metadata": {"path": str(Path(notebook).parent)}})
error, at = "", None
try:
    client.execute()
except CellExecutionError as e:
    at = next((i for i, c in enumerate(nb.cells) if any(o.get("output_type") == "error" for o in c.get("outputs", []))), None)
    error = (re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", str(e)).strip().splitlines() or ["error"])[-1][:200]
except Exception as e:  # a kernel that died, a cell past its time
    error = f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
def seconds_of(cell):
    timing = cell.get("metadata", {}).get("execution", {})
    try:
        return (datetime.fromisoformat(timing["shell.execute_reply"].replace("Z", "+00:00"))
                - datetime.fromisoformat(timing["iopub.execute_input"].replace("Z", "+00:00"))).total_seconds()
    except (KeyError, ValueError):
        return 0.0
cells = [{"index": i, "seconds": seconds_of(c),
          "text": "\n".join(str(o.get("text") or o.get("data", {}).get("text/plain", "")) for o in c.get("outputs", []))}
         for i, c in enumerate(nb.cells) if c.cell_type == "code" and i > 0]
print(json.dumps({"cells": cells, "error": error, "error_cell": at}))
"""


def prepared(notebook: Path, where: Path, seed: int) -> tuple[str, list[str]]:
    """The notebook as it will run (JSON text), and the lines neutralised in it; `where`: its path
    in the submission (its kernel runs in its folder, MNIST's files are at the top)."""
    nb = nbformat.read(notebook, as_version=4)
    neutralised: list[str] = []

    def blank(match: re.Match) -> str:
        neutralised.append(match[2].strip())
        return f"{match[1]}pass  # neutralised by tinycnn's re-run"

    for cell in (c for c in nb.cells if c.cell_type == "code"):
        if SHELL_CELL.match(cell.source):
            neutralised.append(cell.source.strip().splitlines()[0])
            cell.source = "pass  # a shell cell, neutralised by tinycnn's re-run"
        cell.source = NEUTRALISED.sub(blank, cell.source)
        cell.outputs, cell.execution_count = [], None
    mnist = str(Path(*[".."] * (len(where.parts) - 1), MNIST_DIR))
    roots = sorted({root for c in nb.cells if c.cell_type == "code" for root in DATA_ROOT.findall(c.source)})
    nb.cells.insert(0, nbformat.v4.new_code_cell(SETUP.format(seed=seed, mnist=mnist, roots=roots)))
    return nbformat.writes(nb), neutralised


@dataclass
class Ran:
    """What one seed's run printed: its test accuracies, seconds per epoch and how it ended."""

    test: list[float] = field(default_factory=list)
    epoch_seconds: float = 0.0
    error: str = ""  # an error that leaves the log incomplete (before or during training)
    after: str = ""  # an error in a cell after the last epoch: reported beside a log that stands
    unpublished: bool = False  # failed before any epoch: not reproducible as published


def interpreted(answer: dict) -> Ran:
    cells, at = answer.get("cells", []), answer.get("error_cell")
    ran, last, training = Ran(), None, 0.0
    for cell in cells:
        epochs = read_text(cell["text"]).epochs
        if epochs:
            ran.test += [e.test for e in epochs]
            last, training = cell["index"], training + cell["seconds"]
    ran.epoch_seconds = training / len(ran.test) if ran.test else 0.0
    error = answer.get("error", "")
    where = f"cell {at}: {error}" if at is not None else error
    if error and last is not None and at is not None and at > last:
        ran.after = where
    elif error:
        ran.error, ran.unpublished = where, not ran.test
    return ran
