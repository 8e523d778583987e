"""`tinycnn sweep`: search architectures and training settings under a parameter budget with Optuna.

A sweep file (TOML) declares:
  budget        the parameter limit; a sampled model over it is rejected before any training
  layout        a TinyNet layout template whose {placeholders} are search dimensions,
                e.g. "c{c1},c{c2},{transition}m,c{c3},c{c4},c{c5}" (see model.py for the tokens)
  [train]       fixed training settings (TrainConfig keys); `holdout` must be > 0: trials are
                scored on the validation split held out from the training images, never the test set
  [space]       one entry per dimension: {choices = [...]}, {int = [lo, hi], step = 1, log = false}
                or {float = [lo, hi], log = false}; names are layout placeholders or TrainConfig keys
  study, storage  the Optuna study name and storage URL (SQLite file by default, so a sweep can
                stop and resume; a PostgreSQL URL lets several machines share one study)
A trial's score is the challenge's: the minimum validation accuracy over the last 3 epochs.
Hopeless trials are pruned (median rule) after `prune_warmup` epochs. Workers are separate
single-thread processes sharing the study through its storage.
"""
from __future__ import annotations

import multiprocessing as mp
from collections import Counter
import os
import signal
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from .config import ConfigError, TrainConfig, read_toml, repo_path

# Optuna marks heartbeats, trial retries and PED-ANOVA "experimental": stable here, and noisy.
warnings.filterwarnings("ignore", message=".*experimental.*", module="optuna")
warnings.filterwarnings("ignore", message=".*is experimental.*")

SWEEP_KEYS = {"title", "budget", "layout", "train", "space", "study", "storage", "prune_warmup",
              "sampler_seed", "heartbeat", "grace_period", "enqueue"}
LAST = 3


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
    name = raw.get("study", path.stem)
    sweep = Sweep(title=raw["title"], budget=raw["budget"], layout=raw["layout"], train=raw["train"],
                  space=raw["space"], study=name,
                  storage=raw.get("storage", f"sqlite:///reports/sweeps/{name}.db"),
                  path=str(path), **{k: raw[k] for k in ("prune_warmup", "sampler_seed", "heartbeat",
                                                          "grace_period", "enqueue") if k in raw})
    import string
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


def objective(trial, sweep: Sweep, data) -> float:
    import optuna

    from .engine import fit, model_for
    from .model import count_parameters

    cfg = trial_config(sweep, suggest(trial, sweep))
    params = count_parameters(model_for(cfg))
    trial.set_user_attr("layout", cfg.layout)
    trial.set_user_attr("params", params)
    if params > sweep.budget:
        trial.set_user_attr("rejected", f"{params} parameters > budget {sweep.budget}")
        raise optuna.TrialPruned(f"over budget: {params} > {sweep.budget}")

    def on_epoch(record: dict) -> None:
        trial.report(record["test_acc"], record["epoch"])
        if record["epoch"] < cfg.epochs and trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {record['epoch']}")

    result = fit(cfg, data, on_epoch=on_epoch)
    last = [r["test_acc"] for r in result.history[-LAST:]]
    trial.set_user_attr("last", last)
    return min(last)


def open_study(sweep: Sweep, worker: int = 0):
    import optuna

    if sweep.storage.startswith("sqlite:///"):
        Path(sweep.storage.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    storage = optuna.storages.RDBStorage(
        sweep.storage, heartbeat_interval=sweep.heartbeat, grace_period=sweep.grace_period,
        failed_trial_callback=optuna.storages.RetryFailedTrialCallback(max_retry=1),
        engine_kwargs={"connect_args": {"timeout": 60}} if sweep.storage.startswith("sqlite") else None)
    return optuna.create_study(
        study_name=sweep.study, storage=storage, direction="maximize", load_if_exists=True,
        # Every process needs its own sampler seed: two processes with one seed and one history
        # propose the same trials. constant_liar keeps parallel workers off each other's points.
        sampler=optuna.samplers.TPESampler(seed=sweep.sampler_seed + 1000 * worker + os.getpid() % 1000,
                                           n_startup_trials=8, constant_liar=True),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=sweep.prune_warmup))


def finished(study) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def sweep_worker(path: str, trials: int, worker: int, data_dir) -> None:
    """One worker process: keep taking trials until the study holds `trials` finished ones."""
    import optuna
    import torch

    from .data import load_mnist

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sweep = load_sweep(path)
    study = open_study(sweep, worker)
    data = load_mnist(data_dir)
    stop = optuna.study.MaxTrialsCallback(trials, states=(optuna.trial.TrialState.COMPLETE,
                                                          optuna.trial.TrialState.PRUNED))
    if finished(study) < trials:
        study.optimize(lambda t: objective(t, sweep, data), callbacks=[stop], gc_after_trial=False)


def run_sweep(path: str | Path, trials: int, workers: int = 1, data_dir=None, log=print) -> None:
    """Run (or resume) the study until it holds `trials` finished trials."""
    from .data import load_mnist

    sweep = load_sweep(path)
    load_mnist(data_dir)  # fail fast, build the cache once
    study = open_study(sweep)  # creates the study (and SQLite file) once, before workers race
    if not study.get_trials(deepcopy=False):
        for point in sweep.enqueue:  # hand-picked start points; unspecified dimensions are sampled
            study.enqueue_trial(point, skip_if_exists=True)
    log(f"study {sweep.study!r} in {sweep.storage}: {finished(study)} finished trials, target {trials}")
    if workers <= 1:
        sweep_worker(str(path), trials, 0, data_dir)
    else:
        context = mp.get_context("spawn")
        processes = [context.Process(target=sweep_worker, args=(str(path), trials, i, data_dir))
                     for i in range(workers)]
        # `kill PID` (SIGTERM) must stop the workers too, not only this process: orphaned workers
        # would go on taking trials. Their unfinished trials are retried when the sweep resumes.
        previous = signal.signal(signal.SIGTERM, lambda signum, _: sys.exit(128 + signum))
        try:
            for p in processes:
                p.start()
            for p in processes:
                p.join()
        finally:
            for p in processes:
                if p.is_alive():
                    p.terminate()
                    p.join()
            signal.signal(signal.SIGTERM, previous)
        if any(p.exitcode for p in processes):
            raise RuntimeError(f"a sweep worker failed (exit codes {[p.exitcode for p in processes]})")
    log(f"study {sweep.study!r}: {finished(study)} finished trials")


# ---------------------------------------------------------------------------- report
def load_finished_study(sweep: Sweep):
    """The study, read only: no table creation or migration, so reading never touches the database."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    storage = optuna.storages.RDBStorage(sweep.storage, skip_table_creation=True, skip_compatibility_check=True)
    return optuna.load_study(study_name=sweep.study, storage=storage)


def complete_trials(study) -> list:
    """Complete trials, best score first."""
    from optuna.trial import TrialState

    return sorted((t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE),
                  key=lambda t: -t.value)


def study_facts(sweep: Sweep) -> dict[str, str]:
    """Named facts of a study for report texts: its size and its best trial."""
    study = load_finished_study(sweep)
    complete = complete_trials(study)
    facts = {"trials": str(len(study.get_trials(deepcopy=False))), "complete": str(len(complete))}
    if complete:
        best = complete[0]
        facts.update(best=f"{best.value:.2f}%", best_trial=str(best.number), best_params=f"{best.user_attrs['params']:,}",
                     best_layout=best.user_attrs["layout"],
                     best_last3=" / ".join(f"{a:.2f}" for a in best.user_attrs.get("last", [])))
    return facts


def pruned_when(pruned: list, rejected: list) -> str:
    """When the median rule stopped trials: a rule applied mid-schedule can stop late bloomers."""
    epochs = Counter(max(t.intermediate_values) for t in pruned if t not in rejected and t.intermediate_values)
    return ("Pruned after epoch: " + ", ".join(f"{e} ({n} trial{'s' if n > 1 else ''})" for e, n in sorted(epochs.items()))
            + "; the last value each reached is in the study database.")


def sweep_report(path: str | Path, out_dir: Path = Path("reports/sweeps")) -> Path:
    """Best trials, the params-vs-score frontier and parameter importances, as Markdown + PNGs."""
    import optuna
    from optuna.trial import TrialState

    from .plots import PNG_METADATA, plt

    sweep = load_sweep(path)
    study = load_finished_study(sweep)
    trials = study.get_trials(deepcopy=False)
    complete = complete_trials(study)
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    rejected = [t for t in pruned if "rejected" in t.user_attrs]
    states = Counter(t.state for t in trials)
    running = (f", {states[TrialState.RUNNING]} marked running (under way, or stopped before their first heartbeat, "
               f"which Optuna cannot tell from running)" if states[TrialState.RUNNING] else "")
    out_dir.mkdir(parents=True, exist_ok=True)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    xs, ys = [t.user_attrs["params"] for t in complete], [t.value for t in complete]
    ax.scatter(xs, ys, s=18, color="tab:blue", label="complete trials")
    front, best = [], -1.0
    for t in sorted(complete, key=lambda t: t.user_attrs["params"]):
        if t.value > best:
            front.append(t)
            best = t.value
    ax.step([t.user_attrs["params"] for t in front], [t.value for t in front], where="post", color="tab:red",
            label="frontier (best score at <= params)")
    ax.axhline(99.4, color="grey", linestyle="--", linewidth=1, label="99.4%")
    ax.axvline(sweep.budget, color="tab:orange", linestyle=":", label=f"budget {sweep.budget:,}")
    ax.set(xlabel="parameters", ylabel="validation score: min of last 3 epochs (%)",
           title=f"{sweep.study}: {len(complete)} complete trials")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_dir / f"{sweep.study}_frontier.png", dpi=90, metadata=PNG_METADATA)
    plt.close(fig)

    importance_lines = ["(needs at least two complete trials)"]
    if len(complete) >= 2:
        evaluator = optuna.importance.PedAnovaImportanceEvaluator()
        importances = optuna.importance.get_param_importances(study, evaluator=evaluator)
        importance_lines = [f"PED-ANOVA over the {len(complete)} complete trials: what separates the best of "
                            f"them from the rest (with few trials, little more than a hint).", "",
                            "| dimension | importance |", "|---|---|"] + [
            f"| {k} | {v:.3f} |" for k, v in importances.items()]
        fig, ax = plt.subplots(figsize=(6, 0.4 * len(importances) + 1))
        ax.barh(list(importances)[::-1], list(importances.values())[::-1], color="tab:blue")
        ax.set(xlabel="PED-ANOVA importance", title="what mattered for the top trials")
        fig.tight_layout()
        fig.savefig(out_dir / f"{sweep.study}_importance.png", dpi=90, metadata=PNG_METADATA)
        plt.close(fig)

    rows = ["| trial | score | last 3 epochs | params | layout | settings |", "|---|---|---|---|---|---|"]
    for t in complete[:15]:
        settings = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                             for k, v in t.params.items() if k not in sweep.layout_keys)
        last = " / ".join(f"{a:.2f}" for a in t.user_attrs.get("last", []))
        rows.append(f"| {t.number} | {t.value:.2f}% | {last} | {t.user_attrs['params']:,} | "
                    f"`{t.user_attrs['layout']}` | {settings} |")
    text = "\n".join([
        f"# {sweep.title}", "",
        f"Sweep file: [`{repo_path(sweep.path)}`](../../{repo_path(sweep.path)}); study `{sweep.study}` in "
        f"`{sweep.storage}`. Regenerate with `tinycnn sweep {repo_path(sweep.path)} --report`.", "",
        f"Trials: {len(trials)} in all; {len(complete)} complete, {len(pruned) - len(rejected)} pruned by the "
        f"median rule, {len(rejected)} rejected before training (over the {sweep.budget:,}-parameter budget), "
        f"{states[TrialState.FAIL]} failed (interrupted), {states[TrialState.WAITING]} queued (retries of "
        f"interrupted trials, or start points; they run when the sweep resumes){running}.", "",
        *([pruned_when(pruned, rejected), ""] if len(pruned) > len(rejected) else []),
        "Score: minimum validation accuracy over the last 3 epochs (training on the first 50,000 training "
        "images, validating on the last 10,000; the test set is not used).", "",
        "## Best trials", "", *rows, "",
        f"![frontier]({sweep.study}_frontier.png)", "",
        "## Parameter importances", "", *importance_lines, "",
        *([f"![importance]({sweep.study}_importance.png)", ""] if len(complete) >= 2 else []),
    ])
    report = out_dir / f"{sweep.study}.md"
    report.write_text(text)
    return report


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
