"""Experiments: one step of the challenge (or beyond) as a file, and how its seeds are run.

An experiment file (TOML) holds the why (title, target), the how ([train]: every training setting;
seeds; budget: the most parameters its model may have, checked before training, 7,999 unless
given; tuning: the names whose validation runs, reports/validation/<name>-*, chose its settings,
its own unless given) and what was learned (analysis); `{placeholders}` in target and analysis are filled from
the metrics by the report. `run_experiment` trains the seeds in parallel single-thread worker
processes, one per core, into an experiment folder (its format: records.py). Seeds already
complete are skipped and interrupted ones resume, so rerunning a stopped command finishes it.
A seed's numbers are the same alone or beside others (each worker is `tinycnn train --seed N`).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from tinycnn.errors import ConfigError, Diverged
from tinycnn.evidence import records
from tinycnn.evidence.challenge import MAX_PARAMS
from tinycnn.evidence.cluster import run_on_cluster
from tinycnn.evidence.parallel import Messages, run_tasks
from tinycnn.evidence.runner import prepare_folder, train_run, writable_folder
from tinycnn.models.model import count_parameters
from tinycnn.models.spec import ModelSpec
from tinycnn.models.user_file import absolute
from tinycnn.train.config import TrainConfig, changed_settings, read_toml, repo_path
from tinycnn.train.data import MNIST, find_mnist, load_mnist, split_for
from tinycnn.train.engine import Events, Training, resolve_device

EXPERIMENT_KEYS = {"title", "target", "analysis", "seeds", "train", "budget", "tuning"}
VALIDATION_HOLDOUT = 10_000   # --validate: train on the first 50,000 images, score the last 10,000
REPORTS = Path("reports")


@dataclass
class Experiment:
    name: str
    title: str
    target: str
    analysis: str
    train: TrainConfig
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    path: str = ""
    budget: int = MAX_PARAMS - 1  # the most parameters its model may have (the challenge: fewer than 8,000)
    tuning: list[str] = field(default_factory=list)  # whose validation runs chose it ([] = its own name's)

    @property
    def tuned_by(self) -> list[str]:
        return self.tuning or [self.name]


def load_experiment(path: str | Path) -> Experiment:
    path = Path(path)
    raw = read_toml(path, "experiment", EXPERIMENT_KEYS, EXPERIMENT_KEYS - {"seeds", "budget", "tuning"})
    if not isinstance(raw["train"], dict):
        raise ConfigError(f"{path}: [train] must be a table")
    seeds = raw.get("seeds", [0, 1, 2, 3, 4])
    if not (isinstance(seeds, list) and seeds and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                                                       for s in seeds)):
        raise ConfigError(f"{path}: seeds must be a non-empty list of integers >= 0")
    budget = raw.get("budget", MAX_PARAMS - 1)
    if not (isinstance(budget, int) and not isinstance(budget, bool) and budget > 0):
        raise ConfigError(f"{path}: budget must be a whole number of parameters > 0")
    tuning = raw.get("tuning", [])
    if not (isinstance(tuning, list) and all(isinstance(t, str) and t for t in tuning)):
        raise ConfigError(f"{path}: tuning must be a list of experiment names")
    for key in ("title", "target", "analysis"):
        if not isinstance(raw[key], str):
            raise ConfigError(f"{path}: {key} must be a string")
    try:
        train = TrainConfig.from_dict(raw["train"], where=f"{path} [train]")
    except ConfigError as e:
        raise ConfigError(f"{path} [train]: {e}" if str(path) not in str(e) else str(e), e.key) from None
    train = train.replace(model=absolute(train.model, path.parent))  # FILE.py:NAME is relative to this file
    return Experiment(name=path.stem, title=raw["title"], target=raw["target"].strip(),
                      analysis=raw["analysis"].strip(), train=train, seeds=seeds, path=str(path), budget=budget,
                      tuning=tuning)


def load_experiments(folder: Path) -> list[Experiment]:
    """Every experiment file in `folder` (sweep files, *_sweep.toml, are not experiments)."""
    return [load_experiment(p) for p in sorted(Path(folder).glob("*.toml")) if not p.name.endswith("_sweep.toml")]


def check_budget(exp: Experiment, cfg: TrainConfig) -> int:
    """The model's parameter count; ConfigError before any training when it is over the budget."""
    spec = ModelSpec.of(cfg)
    params = count_parameters(spec.build())
    if params > exp.budget:
        raise ConfigError(f"{spec.label} has {params:,} parameters, over the budget of {exp.budget:,} "
                          f"in {exp.path} (raise it there with budget = N)", key="model")
    return params


# ---------------------------------------------------------------------------- where runs go
def run_config(exp: Experiment, overrides: dict, validate: bool) -> TrainConfig:
    cfg = TrainConfig.from_dict({**exp.train.to_dict(), **overrides})
    return cfg.replace(holdout=VALIDATION_HOLDOUT) if validate else cfg


def settings_label(exp: Experiment, cfg: TrainConfig) -> str:
    """The settings of `cfg` that differ from the file, e.g. "ema=0.999" ("as-file" if none)."""
    changed = changed_settings(cfg.to_dict(), exp.train.to_dict(), ignore=("seed", "holdout"))
    return "+".join(f"{k}={v}" for k, v in sorted(changed.items())) or "as-file"


def default_folder(exp: Experiment, cfg: TrainConfig, validate: bool) -> Path:
    """reports/<name>/ beside the file's experiments/ folder (its project's, from any working
    folder) for the file as written; validation runs by their settings, so the report lists each
    tuning variant and rerunning the same command resumes the same folder."""
    reports = Path(exp.path).parent.parent / REPORTS
    if validate:
        return reports / "validation" / f"{exp.name}-{settings_label(exp, cfg)}"
    if cfg.replace(seed=exp.train.seed) != exp.train:
        raise ConfigError(f"settings differ from {exp.path} ({settings_label(exp, cfg)}); its report folder "
                          f"holds only runs of the file as written: add --out FOLDER (or --validate for tuning)")
    return reports / exp.name


def seeds_to_train(folder: Path, cfg: TrainConfig, seeds: list[int], force: bool) -> list[int]:
    """The seeds without a finished record; a record or run of other settings is an error unless `force`."""
    todo = []
    for seed in seeds:
        expected = cfg.replace(seed=seed).to_dict()
        path, run = records.seed_path(folder, seed), records.seed_run_folder(folder, seed)
        found = (records.read_metrics(path)["config"] if path.exists()
                 else records.run_config(run) if records.holds_a_run(run) else None)
        changed = sorted(changed_settings(expected, found)) if found is not None else []
        if changed and not force:
            raise ConfigError(f"{folder} holds seed {seed} trained with other settings ({', '.join(changed)}): "
                              f"pass --force to replace it, or --out another folder")
        if force or not path.exists() or changed:
            todo.append(seed)
    return todo


# ---------------------------------------------------------------------------- running the seeds
@dataclass(frozen=True)
class StepsDone:
    """A worker trained `steps` more batches."""
    steps: int


@dataclass(frozen=True)
class EpochDone:
    """A worker finished an epoch: its history entry."""
    record: dict


class ProgressMessages(Events):
    """A worker's training events, sent to the parent as StepsDone and EpochDone."""

    def __init__(self, messages: Messages):
        self.messages, self.last_step = messages, 0

    def epoch_start(self, epoch: int, steps: int) -> None:
        self.last_step = 0

    def step(self, step: int, loss: float, acc: float) -> None:
        self.messages.put(StepsDone(step - self.last_step))
        self.last_step = step

    def epoch_end(self, training: Training) -> None:
        self.messages.put(EpochDone(training.history[-1]))


class RunEvents:
    """What `run_experiment` tells its caller: the steps it will train, then each worker's messages."""

    def planned(self, steps: int, seeds: list[int]) -> None:
        pass

    def message(self, seed: int, message: StepsDone | EpochDone) -> None:
        pass


def resumes(run: Path, cfg: TrainConfig, force: bool) -> bool:
    """A seed's run folder was stopped mid-run with these very settings: it continues, not restarts."""
    return not force and records.run_status(run) == "running" and records.run_config(run) == cfg.to_dict()


def train_seed(cfg: TrainConfig, folder: Path, data_dir: str | None, force: bool, messages: Messages) -> dict:
    """Worker body: one seed into <folder>/seed<N>/ (resumed if it was interrupted), then seed<N>.json."""
    run = records.seed_run_folder(folder, cfg.seed)
    resume = None
    if resumes(run, cfg, force):
        resume = records.load_checkpoint(run)
    else:
        prepare_folder(run, force=True)
    source = find_mnist(data_dir)
    try:
        record = train_run(cfg, run, load_mnist(source=source), str(source), ProgressMessages(messages), resume)
    except Diverged:
        record = records.read_metrics(run / records.METRICS)  # recorded as diverged; the other seeds go on
    records.write_seed(folder, cfg.seed, record)
    return record


def steps_to_train(cfg: TrainConfig, folder: Path, todo: list[int], data: MNIST, force: bool) -> int:
    """Training batches left for the seeds in `todo` (an interrupted seed resumes after its last epoch)."""
    per_epoch = math.ceil(len(split_for(cfg, data)[1]) / cfg.batch_size)
    total = 0
    for seed in todo:
        run = records.seed_run_folder(folder, seed)
        done = len(records.read_metrics(run / records.METRICS)["history"]) if resumes(run, cfg.replace(seed=seed), force) else 0
        total += (cfg.epochs - done) * per_epoch
    return total


def run_experiment(exp: Experiment, cfg: TrainConfig, seeds: list[int], folder: Path, workers: int,
                   data_dir: str | None = None, force: bool = False, events: RunEvents | None = None,
                   cluster: str | None = None, allow_mixed_kernels: bool = False) -> dict[int, dict]:
    """Train every seed not yet finished in `folder`, in worker processes here or on the Dask
    scheduler at `cluster`; returns {seed: metrics record} for all seeds."""
    events = events or RunEvents()
    data = load_mnist(source=find_mnist(data_dir))  # fail fast, and build the cache once, before any worker
    resolve_device(cfg.device)
    writable_folder(folder)
    todo = seeds_to_train(folder, cfg, seeds, force)
    events.planned(steps_to_train(cfg, folder, todo, data, force), todo)
    if todo:
        workers = min(workers, len(todo))
        start = time.perf_counter()
        if cluster:
            progress = {"steps": StepsDone, "epoch": EpochDone}
            run_on_cluster(cluster, [cfg.replace(seed=seed) for seed in todo], folder, data_dir,
                           lambda seed, kind, payload: events.message(seed, progress[kind](payload)), allow_mixed_kernels)
        else:
            run_tasks(train_seed, [(cfg.replace(seed=seed), folder, data_dir, force) for seed in todo], workers,
                      on_message=lambda index, message: events.message(todo[index], message))
        records.write_experiment_run(folder, records.ExperimentRun(
            repo_path(exp.path), seeds, cfg.to_dict(), time.perf_counter() - start, workers, todo))
    return records.read_seeds(folder, seeds)
