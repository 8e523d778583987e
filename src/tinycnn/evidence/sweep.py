"""`tinycnn sweep`: search architectures and training settings under a parameter budget with Optuna.

A sweep file (TOML) declares:
  budget        the parameter limit; a sampled model over it is rejected before any training
  layout        a TinyNet layout template whose {placeholders} are search dimensions,
                e.g. "c{c1},c{c2},{transition}m,c{c3},c{c4},c{c5}" (see model.py for the tokens)
  [train]       fixed training settings (TrainConfig keys); `holdout` must be > 0: trials are
                scored on the validation split held out from the training images, never the test set.
                model = "model.py:Net" (relative to the sweep file) tunes a model of your own: its
                training settings only, with layout = "" (a layout rebuilds registered models)
  [space]       one entry per dimension: {choices = [...]}, {int = [lo, hi], step = 1, log = false}
                or {float = [lo, hi], log = false}; names are layout placeholders or TrainConfig keys
  enqueue       start points tried first: a list of tables of [space] values
  study, storage  the Optuna study name and storage URL (SQLite file by default, so a sweep can
                stop and resume; a PostgreSQL URL lets several machines share one study)
The study and its storage (SQLite, or PostgreSQL across machines): study.py.
A trial's score is the challenge's (challenge.score) on the validation split. Hopeless trials are
pruned (median rule) after `prune_warmup` epochs; a diverged trial is pruned and marked. Workers
are single-thread processes (parallel.py) sharing the study through its storage. This module
searches and summarises; the report side renders `study_summary`.
"""
from __future__ import annotations

import os
import socket
import string
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import optuna
import torch
from optuna.trial import TrialState

from tinycnn.errors import ConfigError, Diverged
from tinycnn.evidence import study as studies
from tinycnn.evidence.challenge import score
from tinycnn.evidence.parallel import run_tasks
from tinycnn.models.model import count_parameters
from tinycnn.models.spec import ModelSpec
from tinycnn.models.user_file import absolute
from tinycnn.train.config import TrainConfig, read_toml
from tinycnn.train.data import find_mnist, load_mnist
from tinycnn.train.engine import Events, Training, fit

# Optuna marks heartbeats, trial retries and PED-ANOVA "experimental": stable here, and noisy.
warnings.filterwarnings("ignore", message=".*experimental.*", module="optuna")
warnings.filterwarnings("ignore", message=".*is experimental.*")

SWEEP_KEYS = {"title", "budget", "layout", "train", "space", "study", "storage", "prune_warmup",
              "sampler_seed", "heartbeat", "grace_period", "enqueue"}


@dataclass
class Sweep:
    title: str
    budget: int
    layout: str
    train: dict
    space: dict
    study: str
    storage: str
    prune_warmup: int = 5        # epochs every trial runs before the median rule may stop it
    sampler_seed: int = 0        # TPE base seed; every process adds its own offset (parallel TPE is
                                 # not trial-for-trial reproducible anyway)
    heartbeat: int = 30          # seconds between a running trial's heartbeats
    grace_period: int = 120      # a trial silent this long is failed and retried once (resume)
    enqueue: list = field(default_factory=list)  # start points tried first (dicts of space values)
    path: str = ""
    layout_keys: list[str] = field(default_factory=list)


def load_sweep(path: str | Path) -> Sweep:
    path = Path(path)
    raw = read_toml(path, "sweep", SWEEP_KEYS, {"title", "budget", "layout", "train", "space"})
    # a model of your own, FILE.py:NAME, is relative to the sweep file (as in experiment files): as
    # the fixed [train] model, among [space] model choices, or as an enqueued start point
    def here(spec):
        return absolute(spec, path.parent) if isinstance(spec, str) else spec

    if isinstance(raw["train"], dict) and "model" in raw["train"]:
        raw["train"]["model"] = here(raw["train"]["model"])
    model_space = raw["space"].get("model") if isinstance(raw["space"], dict) else None
    if isinstance(model_space, dict) and isinstance(model_space.get("choices"), list):
        model_space["choices"] = [here(choice) for choice in model_space["choices"]]
    for point in raw.get("enqueue", []):
        if isinstance(point, dict) and "model" in point:
            point["model"] = here(point["model"])
    name = raw.get("study", path.stem)
    sweep = Sweep(title=raw["title"], budget=raw["budget"], layout=raw["layout"], train=raw["train"],
                  space=raw["space"], study=name,
                  storage=raw.get("storage", f"sqlite:///reports/sweeps/{name}.db"),
                  path=str(path), **{k: raw[k] for k in ("prune_warmup", "sampler_seed", "heartbeat",
                                                          "grace_period", "enqueue") if k in raw})
    sweep.layout_keys = [f for _, f, _, _ in string.Formatter().parse(sweep.layout) if f]
    fields = set(TrainConfig.__dataclass_fields__)
    for key, spec in sweep.space.items():
        if key not in sweep.layout_keys and key not in fields:
            raise ConfigError(f"{path} [space]: {key!r} is neither a layout placeholder nor a training setting")
        if not isinstance(spec, dict) or len({"choices", "int", "float"} & set(spec)) != 1:
            raise ConfigError(f"{path} [space] {key}: give exactly one of choices = [...], int = [lo, hi], "
                              f"float = [lo, hi]")
    for point in sweep.enqueue:
        if not isinstance(point, dict) or set(point) - set(sweep.space):
            raise ConfigError(f"{path}: enqueue entries must be tables of [space] names, not {point!r}")
    absent = [k for k in sweep.layout_keys if k not in sweep.space]
    if absent:
        raise ConfigError(f"{path}: layout placeholder(s) {', '.join(absent)} have no [space] entry")
    base = TrainConfig.from_dict(sweep.train, where=f"{path} [train]")
    if base.holdout <= 0:
        raise ConfigError(f"{path} [train]: holdout must be > 0: trials are scored on a validation split, "
                          f"never on the test set")
    return sweep


def suggest(trial, sweep: Sweep) -> dict:
    values = {}
    for key, spec in sweep.space.items():
        if "choices" in spec:
            values[key] = trial.suggest_categorical(key, spec["choices"])
        elif "int" in spec:
            lo, hi = spec["int"]
            values[key] = trial.suggest_int(key, lo, hi, step=spec.get("step", 1), log=spec.get("log", False))
        else:
            lo, hi = spec["float"]
            values[key] = trial.suggest_float(key, lo, hi, log=spec.get("log", False))
    return values


def trial_config(sweep: Sweep, values: dict) -> TrainConfig:
    layout = sweep.layout.format(**{k: values[k] for k in sweep.layout_keys})
    settings = {k: v for k, v in values.items() if k not in sweep.layout_keys}
    return TrainConfig.from_dict({**sweep.train, **settings, "layout": layout})


class PruneEvents(Events):
    """Reports each epoch's validation accuracy to the trial; stops a hopeless trial early."""

    def __init__(self, trial, epochs: int):
        self.trial, self.epochs = trial, epochs

    def epoch_end(self, training: Training) -> None:
        record = training.history[-1]
        self.trial.report(record["eval_acc"], record["epoch"])
        if record["epoch"] < self.epochs and self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {record['epoch']}")


def objective(trial, sweep: Sweep, data) -> float:
    cfg = trial_config(sweep, suggest(trial, sweep))
    spec = ModelSpec.of(cfg)
    params = count_parameters(spec.build())
    trial.set_user_attr("layout", spec.layout or spec.label)  # a model of your own has no layout
    trial.set_user_attr("params", params)
    if params > sweep.budget:
        trial.set_user_attr("rejected", f"{params} parameters > budget {sweep.budget}")
        raise optuna.TrialPruned(f"over budget: {params} > {sweep.budget}")
    try:
        result = fit(cfg, data, PruneEvents(trial, cfg.epochs))
    except Diverged as d:
        trial.set_user_attr("diverged", str(d))
        raise optuna.TrialPruned(str(d)) from None
    trial.set_user_attr("last", [r["eval_acc"] for r in result.history[-3:]])
    return score(result.history)


def open_study(sweep: Sweep, worker: int = 0):
    # Every process needs its own sampler seed: two processes with one seed and one history
    # propose the same trials. constant_liar keeps parallel workers off each other's points.
    sampler = optuna.samplers.TPESampler(seed=sweep.sampler_seed + 1000 * worker + os.getpid() % 1000,
                                         n_startup_trials=8, constant_liar=True)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=sweep.prune_warmup)
    return studies.open_study(sweep, sampler, pruner)


def finished(study) -> int:
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def sweep_worker(path: str, trials: int, worker: int, data_dir) -> None:
    """One worker process: claim and run trials until the study holds `trials` finished ones."""
    torch.set_num_threads(1)
    sweep = load_sweep(path)
    study = open_study(sweep, worker)
    data = load_mnist(source=find_mnist(data_dir))
    while (trial := claim(study, sweep, trials)) is not None:
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        run_trial(study, trial, sweep, data)


def claim(study, sweep: Sweep, target: int):
    """The next trial for this worker, or None once the study holds `target` finished trials.

    Under the storage's claim lock, so workers never start more trials between them than the target
    (Optuna's MaxTrialsCallback only stops a worker after its own trial, so they overshoot). A trial
    whose worker died is failed once its heartbeat is older than the grace period, and queued again;
    while the remaining trials run elsewhere, a worker waits in case one of them fails.
    """
    while True:
        with studies.claim_lock(sweep.storage):
            optuna.storages.fail_stale_trials(study)
            states = Counter(t.state for t in study.get_trials(deepcopy=False))
            done = states[TrialState.COMPLETE] + states[TrialState.PRUNED]
            if done >= target:
                return None
            if done + states[TrialState.RUNNING] < target:
                with warnings.catch_warnings():  # "heartbeat ... with Study.optimize": run_trial keeps it
                    warnings.filterwarnings("ignore", message="Heartbeat of storage")
                    return study.ask()  # a queued trial (start point or retry) first, else a new one
        time.sleep(min(sweep.heartbeat, 5))


def run_trial(study, trial, sweep: Sweep, data) -> None:
    """Run one claimed trial with its heartbeat going, and record how it ended. A Ctrl-C or a stop
    (not an Exception) leaves the trial running: once its heartbeat is stale it is failed and run
    again, like the trial of a killed worker."""
    # Optuna's own heartbeat thread (what study.optimize uses), so a killed worker's trial goes stale.
    with optuna.storages._heartbeat.get_heartbeat_thread(trial._trial_id, study._storage):
        try:
            value = objective(trial, sweep, data)
        except optuna.TrialPruned:
            study.tell(trial, state=TrialState.PRUNED)
            return
        except Exception:
            study.tell(trial, state=TrialState.FAIL)
            raise
    study.tell(trial, value)


def run_sweep(path: str | Path, trials: int, workers: int = 1, data_dir=None, log=print) -> None:
    """Run (or resume) the study until it holds `trials` finished trials."""
    sweep = load_sweep(path)
    load_mnist(source=find_mnist(data_dir))  # fail fast, build the cache once
    study = open_study(sweep)
    with studies.claim_lock(sweep.storage):  # another machine's worker may be starting too
        if not study.get_trials(deepcopy=False):
            for point in sweep.enqueue:  # hand-picked start points; unspecified dimensions are sampled
                study.enqueue_trial(point, skip_if_exists=True)
    log(f"study {sweep.study!r} in {studies.label(sweep.storage)}: {finished(study)} finished trials, "
        f"target {trials}")
    if workers <= 1:
        sweep_worker(str(path), trials, 0, data_dir)
    else:
        run_tasks(sweep_worker, [(str(path), trials, i, data_dir) for i in range(workers)], workers)
    log(f"study {sweep.study!r}: {finished(study)} finished trials")


# ---------------------------------------------------------------------------- summary
@dataclass
class TrialSummary:
    number: int
    value: float | None
    params: int
    layout: str
    last: list[float]
    settings: dict         # sampled training settings (not layout placeholders)
    pruned_after: int | None


@dataclass
class StudySummary:
    sweep: Sweep
    trials: int                      # all trials, whatever their state
    states: Counter                  # TrialState -> count
    complete: list[TrialSummary]     # best score first
    pruned: list[TrialSummary]       # by the median rule (not the budget rejections)
    rejected: int                    # over the budget, never trained
    diverged: int
    importances: dict[str, float] = field(default_factory=dict)  # PED-ANOVA, with >= 2 complete


def summarise(trial, sweep: Sweep) -> TrialSummary:
    return TrialSummary(trial.number, trial.value, trial.user_attrs["params"], trial.user_attrs["layout"],
                        trial.user_attrs.get("last", []),
                        {k: v for k, v in trial.params.items() if k not in sweep.layout_keys},
                        max(trial.intermediate_values) if trial.intermediate_values else None)


def study_summary(sweep: Sweep, importances: bool = True) -> StudySummary:
    """What a study holds, as data for its report page and for report texts."""
    study = studies.load_study(sweep)
    trials = study.get_trials(deepcopy=False)
    complete = sorted((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: -t.value)
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    rejected = [t for t in pruned if "rejected" in t.user_attrs]
    summary = StudySummary(sweep, len(trials), Counter(t.state for t in trials),
                           [summarise(t, sweep) for t in complete],
                           [summarise(t, sweep) for t in pruned if t not in rejected], len(rejected),
                           sum("diverged" in t.user_attrs for t in pruned))
    if importances and len(complete) >= 2:
        summary.importances = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.PedAnovaImportanceEvaluator())
    return summary

