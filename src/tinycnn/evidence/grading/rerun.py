"""A submission's claim re-run on seeds, K runs of its final step, each in its own sandboxed child:

- as written: the final step's notebook executed headless (nbclient) with the course environment's
  Python (course_env.py), prepared as notebook_run.py says: outputs cleared, shell and magic lines
  neutralised, the seed forced over the notebook's own, MNIST wherever its torchvision looks
  (nothing downloaded; the child has no network where the OS allows);
- with one recipe for the class: the final model class trained by tinycnn's engine with the
  settings of a TOML file, the same for every student (fast, and comparable across them).

Either way each seed's logged test accuracies come back, or the error that stopped it (the cell,
for a notebook) or the time limit it ran past.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from tinycnn.errors import ConfigError
from tinycnn.evidence.challenge import wilson_interval
from tinycnn.evidence.checklist import Rule
from tinycnn.evidence.cluster import isolated_on_cluster
from tinycnn.evidence.grading.notebook_run import EXECUTE, interpreted, prepared
from tinycnn.evidence.grading.sandbox import Job, run_job
from tinycnn.evidence.grading.submission import Submission
from tinycnn.evidence.parallel import default_workers, run_tasks, sigterm_raises
from tinycnn.train.config import TrainConfig, read_toml
from tinycnn.train.recipes import RECIPES, recipe

SCORED = 3

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
    error: str = ""  # what left its log incomplete
    epoch_seconds: float = 0.0  # a notebook's training cells' seconds per logged epoch
    after: str = ""  # an error after its last epoch (a plot on newer libraries): reported, the log stands
    unpublished: bool = False  # it failed before any epoch: not reproducible as published

    def holds(self, target: float) -> bool:
        return not self.error and len(self.test) >= SCORED and min(self.test[-SCORED:]) >= target


def read_recipe(given: str) -> dict:
    """A named recipe's training settings (recipes.py: its model and layout left out), or a recipe
    file's ([train] as in an experiment file, or at the top level), checked as TrainConfig checks
    them; the model is each student's, never the recipe's."""
    path = Path(given)
    if not path.exists() and given not in RECIPES:
        raise ConfigError(f"--recipe {given}: neither a recipe file nor a named recipe ({', '.join(RECIPES)})")
    if not path.exists():
        settings = recipe(given).to_dict()
        defaults = TrainConfig().to_dict()
        return {k: v for k, v in settings.items() if k not in ("model", "layout", "seed") and v != defaults[k]}
    raw = read_toml(path, "recipe", {f.name for f in dataclasses.fields(TrainConfig)} | {"train"}, set())
    settings = raw.get("train", raw)
    if "model" in settings or "seed" in settings:
        raise ConfigError(
            f"{path}: a recipe sets training settings only: the model is the student's, the seeds --rerun's"
        )
    TrainConfig.from_dict(settings, where=str(path))
    return settings


def jobs_of(sub: Submission, runs: int, settings: dict | None, seconds: float, python: str | None,
            requirements: str | None) -> tuple[str, list[Job], list[str]]:
    """(what runs, a sandbox Job per seed, the notebook lines neutralised)."""
    final = sub.final
    source = next((n for n in sub.notebooks if final and final.run in n.runs), None)
    if settings is None and source is None:
        raise ConfigError(f"{sub.folder}: --rerun runs the final step's notebook, and it has none (or use --recipe)")
    if settings is not None:
        if final is None or final.model is None:
            raise ConfigError(f"{sub.folder}: --recipe trains the final step's model, and no model class is tied to it")
        model = final.model
        extra = [model.source] if model.source else []
        args = [model.file, model.name, json.dumps(settings)]
        return "recipe", [Job(RECIPE, [*args, str(seed), *extra], seconds, mnist=True) for seed in range(runs)], []
    notebook = source.path.relative_to(sub.folder)
    runnable = notebook.with_name(f"{notebook.stem}.tinycnn-rerun.ipynb")
    jobs, neutralised = [], []
    for seed in range(runs):
        text, neutralised = prepared(source.path, notebook, seed)
        jobs.append(Job(EXECUTE, [str(runnable), str(int(seconds))], seconds + 60, idx=True,
                        extra={str(runnable): text}, python=python, requirements=requirements))
    return f"{source.path.name} as written", jobs, neutralised


def rerun(sub: Submission, runs: int, recipe_given: str | None, seconds: float, progress=None, cluster: str | None = None,
          python: str | None = None, requirements: str | None = None) -> tuple[str, list[SeedRun]]:
    """Seeds 0..runs-1 of the final step, here (a recipe's seeds side by side on the cores they
    leave free, a notebook's one after the other) or side by side on the workers of the Dask
    scheduler at `cluster`: (how it was run, each seed's run). A notebook runs with the
    course environment's `python` (or one built from `requirements`, on each worker for a cluster)."""
    settings = read_recipe(recipe_given) if recipe_given else None
    how, jobs, neutralised = jobs_of(sub, runs, settings, seconds, python, requirements)
    tick = progress.update if progress is not None else None
    # a recipe's seed takes processes x threads cores, so seeds run side by side on the rest; a
    # notebook as written trains with PyTorch's default threads (every core), so one at a time
    side_by_side = 1
    if settings is not None:
        cfg = TrainConfig.from_dict(settings)
        side_by_side = default_workers(len(jobs)) // (cfg.processes * cfg.threads)
    if cluster:
        results = isolated_on_cluster(cluster, sub.folder, jobs, tick)
    elif side_by_side > 1:
        results = run_tasks(timed_run, [(job, sub.folder) for job in jobs], side_by_side,
                            on_result=(lambda *_: tick()) if tick else None)
    else:
        results = []
        for job in jobs:
            results.append(timed_run(job, sub.folder))
            if tick:
                tick()
    done = []
    for seed, (ran, wall) in enumerate(results):
        answer = ran.output or {}
        if "test" in answer:  # a recipe's run
            done.append(SeedRun(seed, answer["test"], wall, ran.error or answer.get("error", "")))
            continue
        seen = interpreted(answer)
        done.append(SeedRun(seed, seen.test, wall, ran.error or seen.error, seen.epoch_seconds, seen.after,
                            seen.unpublished and not ran.error))
    where = f" on the Dask cluster at {cluster}" if cluster else ""
    if side_by_side > 1 and not cluster:
        where += f" ({side_by_side} seeds at a time)"
    if neutralised:
        where += f" (neutralised: {'; '.join(sorted(set(neutralised)))})"
    return (f"recipe {Path(recipe_given).name}" if recipe_given else how) + where, done


def timed_run(job: Job, folder: Path) -> tuple:
    """(the sandbox's answer, the seed's wall seconds): a worker's task when seeds run side by side.
    A worker stopped by its parent (Ctrl-C, an error in another seed) kills its child on the way
    out: the child runs in a session of its own, so nothing else would."""
    start = time.perf_counter()
    with sigterm_raises():
        return run_job(job, folder), time.perf_counter() - start


def seed_line(r: SeedRun) -> str:
    if r.unpublished:
        said = f"not reproducible as published: {r.error}"
    elif r.error:
        said = f"ERROR {r.error}" + (f" after {len(r.test)} epochs" if r.test else "")
    else:
        said = " / ".join(f"{a:.2f}" for a in r.test[-SCORED:]) or "no log"
    timing = f"{r.seconds:.0f} s" + (f", {r.epoch_seconds:.1f} s an epoch" if r.epoch_seconds else "")
    return f"seed {r.seed}: {said} ({timing})" + (f"; then {r.after}" if r.after else "")


def rerun_rule(how: str, runs: list[SeedRun], target: float) -> Rule:
    holding = sum(run.holds(target) for run in runs)
    low, high = wilson_interval(holding, len(runs))
    each = "; ".join(seed_line(r) for r in runs)
    seeds = f"{len(runs)} seed{'s' * (len(runs) != 1)}"
    return Rule(
        "rerun",
        holding == len(runs),
        f"{how}, {seeds}: {holding}/{len(runs)} hold >= {target:.2f}% on "
        f"the last {SCORED} epochs (95% interval {100 * low:.0f}-{100 * high:.0f}%); {each}",
        details=[dataclasses.asdict(r) for r in runs],
    )
