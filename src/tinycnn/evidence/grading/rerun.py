"""A submission's claim re-run on seeds, K runs of its final step, each in its own sandboxed child:

- as written: the final step's notebook executed headless (nbclient), with the seed forced over
  the notebook's own constant (a `torch.manual_seed(1)` of its own seeds the forced seed instead)
  and MNIST written from tinycnn's copy where the notebook's torchvision dataset looks for it
  (`<root>/MNIST/raw/`, so nothing is downloaded; the child has no network where the OS allows);
- with one recipe for the class: the final model class trained by tinycnn's engine with the
  settings of a TOML file, the same for every student (fast, and comparable across them).

Either way each seed's logged test accuracies come back, or the error that stopped it (the cell,
for a notebook) or the time limit it ran past.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from tinycnn.errors import ConfigError
from tinycnn.evidence.challenge import wilson_interval
from tinycnn.evidence.checklist import Rule
from tinycnn.evidence.cluster import isolated_on_cluster
from tinycnn.evidence.grading.logs import read_text
from tinycnn.evidence.grading.sandbox import run_isolated
from tinycnn.evidence.grading.submission import Submission
from tinycnn.train.config import TrainConfig, read_toml

SCORED = 3
DATA_ROOT = re.compile(r"""\bMNIST\(\s*(?:root\s*=\s*)?['"]([^'"]+)['"]""")

# The first cell of a re-run notebook: the forced seed wins over the notebook's own.
FORCE_SEED = """\
import random as _random, numpy as _np, torch as _torch
_SEED = {seed}
_random.seed(_SEED); _np.random.seed(_SEED); _torch.manual_seed(_SEED)
_seed_once = _torch.manual_seed
_torch.manual_seed = lambda *_args, **_kwargs: _seed_once(_SEED)  # the notebook's constant seeds _SEED
_torch.cuda.manual_seed = _torch.cuda.manual_seed_all = lambda *_args, **_kwargs: None
"""

AS_WRITTEN = r"""
import fcntl, json, re, socket, struct, sys
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
from tinycnn.train.data import IDX_NAMES, load_mnist, write_idx
notebook, seed, seconds, roots = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
mnist = load_mnist()
for root in roots:  # where the notebook's torchvision MNIST looks: its files are there, none downloaded
    for key, name in IDX_NAMES.items():
        write_idx(getattr(mnist, key), Path(notebook).parent / root / "MNIST" / "raw" / name)
nb = nbformat.read(notebook, as_version=4)
for cell in nb.cells:  # a re-run's log is only what it prints: no saved output of the author's survives
    if cell.cell_type == "code":
        cell.outputs, cell.execution_count = [], None
nb.cells.insert(0, nbformat.v4.new_code_cell(sys.argv[5].format(seed=seed)))
client = NotebookClient(nb, timeout=seconds, kernel_name="python3", resources={"metadata": {"path": str(Path(notebook).parent)}})
error = ""
try:
    client.execute()
except CellExecutionError as e:
    cell = next((i for i, c in enumerate(nb.cells) if any(o.get("output_type") == "error" for o in c.get("outputs", []))), 0)
    error = f"cell {cell}: " + (re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", str(e)).strip().splitlines() or ["error"])[-1][:200]
except Exception as e:  # a kernel that died, a cell past its time
    error = f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
text = "\n".join(str(o.get("text") or o.get("data", {}).get("text/plain", "")) for c in nb.cells[1:]
                 if c.cell_type == "code" for o in c.get("outputs", []))
print(json.dumps({"log": text, "error": error}))
"""

RECIPE = r"""
import json, sys
from pathlib import Path
if len(sys.argv) > 5:  # a class defined in a notebook: the module written for it, in the copy
    Path(sys.argv[1]).write_text(sys.argv[5])
from tinycnn.train.config import TrainConfig, read_toml
from tinycnn.train.engine import fit
settings = json.loads(sys.argv[3])
cfg = TrainConfig.from_dict({**settings, "model": f"{sys.argv[1]}:{sys.argv[2]}", "seed": int(sys.argv[4])})
print(json.dumps({"test": [epoch["eval_acc"] for epoch in fit(cfg).history], "error": ""}))
"""


@dataclass
class SeedRun:
    seed: int
    test: list[float] = field(default_factory=list)
    seconds: float = 0.0
    error: str = ""

    def holds(self, target: float) -> bool:
        return not self.error and len(self.test) >= SCORED and min(self.test[-SCORED:]) >= target


def read_recipe(path: Path) -> dict:
    """A recipe file's training settings ([train] as in an experiment file, or at the top level),
    checked as TrainConfig checks them; the model is each student's, never the recipe's."""
    raw = read_toml(path, "recipe", {f.name for f in dataclasses.fields(TrainConfig)} | {"train"}, set())
    settings = raw.get("train", raw)
    if "model" in settings or "seed" in settings:
        raise ConfigError(
            f"{path}: a recipe sets training settings only: the model is the student's, the seeds --rerun's"
        )
    TrainConfig.from_dict(settings, where=str(path))
    return settings


def rerun(
    sub: Submission, runs: int, recipe: Path | None, seconds: float, progress=None, cluster: str | None = None
) -> tuple[str, list[SeedRun]]:
    """Seeds 0..runs-1 of the final step, here one after the other or side by side on the workers
    of the Dask scheduler at `cluster`: (how it was run, each seed's run)."""
    final = sub.final
    settings = read_recipe(recipe) if recipe else None
    source = next((n for n in sub.notebooks if final and final.run in n.runs), None)
    if settings is None and source is None:
        raise ConfigError(f"{sub.folder}: --rerun runs the final step's notebook, and it has none (or use --recipe)")
    if settings is not None and (final is None or final.model is None):
        raise ConfigError(f"{sub.folder}: --recipe trains the final step's model, and no model class is tied to it")
    if settings is not None:
        model = final.model
        extra = [model.source] if model.source else []
        jobs = [
            (RECIPE, [model.file, model.name, json.dumps(settings), str(seed), *extra], seconds, True)
            for seed in range(runs)
        ]
    else:
        notebook = source.path.relative_to(sub.folder)
        roots = sorted(set(DATA_ROOT.findall(source.code))) or ["data"]
        jobs = [
            (
                AS_WRITTEN,
                [str(notebook), str(seed), str(int(seconds)), json.dumps(roots), FORCE_SEED],
                seconds + 60,
                True,
            )
            for seed in range(runs)
        ]
    tick = progress.update if progress is not None else None
    if cluster:
        results = isolated_on_cluster(cluster, sub.folder, jobs, tick)
    else:
        results = []
        for code, args, limit, mnist in jobs:
            start = time.perf_counter()
            results.append((run_isolated(code, sub.folder, args, limit, mnist=mnist), time.perf_counter() - start))
            if tick:
                tick()
    done = []
    for seed, (ran, wall) in enumerate(results):
        answer = ran.output or {}
        test = answer["test"] if "test" in answer else [e.test for e in read_text(answer.get("log", "")).epochs]
        done.append(SeedRun(seed, test, wall, ran.error or answer.get("error", "")))
    where = f" on the Dask cluster at {cluster}" if cluster else ""
    return (f"recipe {recipe.name}" if recipe else f"{source.path.name} as written") + where, done


def rerun_rule(how: str, runs: list[SeedRun], target: float) -> Rule:
    holding = sum(run.holds(target) for run in runs)
    low, high = wilson_interval(holding, len(runs))
    each = "; ".join(
        f"seed {r.seed}: "
        + (f"ERROR {r.error}" if r.error else " / ".join(f"{a:.2f}" for a in r.test[-SCORED:]) or "no log")
        + f" ({r.seconds:.0f} s)"
        for r in runs
    )
    seeds = f"{len(runs)} seed{'s' * (len(runs) != 1)}"
    return Rule(
        "rerun",
        holding == len(runs),
        f"{how}, {seeds}: {holding}/{len(runs)} hold >= {target:.2f}% on "
        f"the last {SCORED} epochs (95% interval {100 * low:.0f}-{100 * high:.0f}%); {each}",
        details=[{"seed": r.seed, "test": r.test, "seconds": r.seconds, "error": r.error} for r in runs],
    )
