"""An experiment's report page: reports/<name>.md and its plots, from its committed metrics.

The page is the template templates/experiment.md; every block below renders statistics that
were computed once (facts.Measured), and the prose comes from the experiment file with its
`{placeholders}` filled from the metrics.
"""
from __future__ import annotations

import os
import statistics
from pathlib import Path

import numpy as np
import torch

from tinycnn.evidence import records
from tinycnn.evidence.challenge import MAX_PARAMS, TARGET, score, scored
from tinycnn.evidence.experiment import Experiment
from tinycnn.evidence.facts import FactBook, Measured, experiment_facts, pct
from tinycnn.evidence.plots import plot_history, plot_misclassified, plot_seed_scores
from tinycnn.files import write_text
from tinycnn.models.names import is_model_file, portable_model
from tinycnn.models.spec import ModelSpec
from tinycnn.models.tables import model_tables_markdown
from tinycnn.report.template import render
from tinycnn.train.config import TrainConfig, changed_settings, repo_path


def result_block(measured: Measured, facts: dict[str, str]) -> str:
    stats = measured.stats
    epochs = [f"epoch {e}" for e in range(max(1, stats.epochs - 2), stats.epochs + 1)]  # the scored ones
    lines = [f"| seed | {' | '.join(epochs)} | last-3 min | best train | best test | >= 99.4% from epoch | passes | "
             f"wall time |", "|---" * (len(epochs) + 7) + "|"]
    for s in stats.seeds:
        lines.append(f"| {s.seed} | " + " | ".join(pct(a) for a in s.scored) +
                     f" | {pct(s.score)} | {pct(s.best_train)} | {pct(s.best_eval)} | "
                     f"{s.stable_from or 'never'} | {'yes' if s.holds else 'no'} | {s.wall_seconds:.0f}s |")
    wall = wall_time(measured.run, len(stats.seeds))
    return "\n".join([
        f"- Parameters: **{facts['params']}** (budget: {budget_words(measured.exp.budget)}); "
        f"multiply-accumulates per image: {facts['macs']}; epochs: {stats.epochs}.",
        f"- Test accuracy over the last 3 epochs of all seeds: min **{facts['last3_min']}**, "
        f"mean {facts['last3_mean']}, std {facts['last3_std']} (sample std over {3 * len(stats.seeds)} values), "
        f"max {facts['last3_max']}.",
        f"- Seeds holding >= 99.4% on each of the last 3 epochs: **{facts['passing']}**; 95% confidence interval "
        f"for the share of all seeds that hold (Wilson): {facts['passing_ci']}. What that promises: a new seed "
        f"holds with a probability in that range, not certainly.",
        f"- Best test accuracy: mean {facts['best_test_mean']} over seeds, max {facts['best_test_max']}; "
        f"best train accuracy: mean {facts['best_train_mean']}.",
        f"- Wall time: {wall}.",
        "", *lines])


def gap_table(measured: Measured) -> str:
    stats = measured.stats
    train, test = stats.mean_over_seeds("train_acc"), stats.mean_over_seeds("eval_acc")
    train_loss, test_loss = stats.mean_over_seeds("train_loss"), stats.mean_over_seeds("eval_loss")
    lines = ["| epoch | train acc | test acc | gap (train - test) | train loss | test loss | seeds >= 99.4% |",
             "|---|---|---|---|---|---|---|"]
    for i in range(stats.epochs):
        ok = sum(h[i]["eval_acc"] >= TARGET for h in stats.histories)
        lines.append(f"| {i + 1} | {pct(train[i], 3)} | {pct(test[i], 3)} | {train[i] - test[i]:+.3f} | "
                     f"{train_loss[i]:.4f} | {test_loss[i]:.4f} | {ok}/{len(stats.histories)} |")
    return "\n".join(lines)


def wall_time(run: records.ExperimentRun | None, seeds: int) -> str:
    """The last `tinycnn run`'s wall time, for the seeds it trained (a resumed run trains only the rest)."""
    if run is None or not run.wall_seconds:
        return "not recorded"
    workers = f"{run.workers or 'one per core'} parallel worker(s)"
    if run.trained is None:
        return (f"{run.wall_seconds:.0f}s with {workers} for the last `tinycnn run`, which trained the seeds "
                f"not finished before it (which ones was not recorded); each seed's own time is in the table")
    if len(run.trained) == seeds:
        return f"{run.wall_seconds:.0f}s for all {seeds} seeds with {workers}"
    return (f"{run.wall_seconds:.0f}s with {workers} for seeds {', '.join(map(str, run.trained))}, which the last "
            f"`tinycnn run` trained or finished; an earlier one trained the others")


def config_table(cfg: TrainConfig) -> str:
    skip = {"seed", "device", "test_subset", "train_subset", "holdout"}
    # a model of your own by its file's name: the page reads the same wherever the project lies
    rows = [f"| {k} | {portable_model(v) if k == 'model' else v} |" for k, v in cfg.to_dict().items() if k not in skip]
    return "| setting | value |\n|---|---|\n" + "\n".join(rows)


def budget_words(budget: int) -> str:
    """The challenge's "fewer than 8,000", or an experiment's own budget ("at most 5,000")."""
    return f"fewer than {MAX_PARAMS:,}" if budget == MAX_PARAMS - 1 else f"at most {budget:,}"


def validation_block(exp: Experiment, reports_dir: Path) -> str:
    """The tuning runs of this experiment (train on 50k, score on the held-out last 10k), if any."""
    rows, summary = [], []
    for folder in [f for name in exp.tuned_by for f in sorted((reports_dir / "validation").glob(f"{name}-*"))]:
        run = records.read_experiment_run(folder)
        if run is None:
            continue
        changed = changed_settings(TrainConfig.from_dict(run.config).to_dict(), exp.train.to_dict(),
                                   ignore=("holdout", "seed"))
        variant = ", ".join(f"{k}={portable_model(v) if k == 'model' else v}"  # a model file: by its name
                            for k, v in changed.items()) or "as in this file"
        scores, every = [], []
        for seed in run.seeds:
            record = records.read_metrics(records.seed_path(folder, seed))
            last = scored(record["history"])
            scores.append(score(record["history"]))
            rows.append(f"| {folder.name} | {variant} | {record['params']:,} | {seed} | "
                        + " | ".join(pct(a) for a in last) + f" | {pct(scores[-1])} |")
            every += last
        summary.append(f"| {folder.name} | {variant} | {len(scores)} | {pct(statistics.fmean(scores), 3)} | "
                       f"{pct(min(scores))} | {pct(statistics.fmean(every), 3)} |")
    if not rows:
        return ""
    return ("\n## Tuning on the validation split\n\nSettings were chosen on a validation split, never on the "
            "test set: train on the first 50,000 training images, score on the last 10,000 "
            "(`tinycnn run ... --validate`). Accuracies below are validation accuracies at the last 3 epochs.\n\n"
            "Per run (a run's score per seed is its worst scored epoch, as the challenge scores):\n\n"
            "| run | settings that differ from the file | seeds | mean of the seeds' scores | lowest | "
            "mean of all scored epochs |\n|---|---|---|---|---|---|\n" + "\n".join(summary) + "\n\n"
            "Per seed:\n\n"
            "| run | settings that differ from the file | params | seed | last-2 | last-1 | last | min |\n"
            "|---|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n")


def train_conditions(cfg: TrainConfig, model) -> str:
    """How training batches differ from test images, for reading the train-test gap."""
    augmented = cfg.rotate or cfg.translate or cfg.scale
    dropout = any(isinstance(m, (torch.nn.Dropout, torch.nn.Dropout2d)) for m in model.modules())
    parts = [p for p, on in (("augmented", augmented), ("with dropout active", dropout)) if on]
    return f" ({' and '.join(parts)})" if parts else " (the same kind of images as the test set)"


def model_source(spec: str, reports_dir: Path) -> str:
    """Where the model's code is, linked from the page (which lives in reports_dir): tinycnn's
    model.py, or your own file."""
    if not is_model_file(spec):
        return "[`src/tinycnn/models/model.py`](../src/tinycnn/models/model.py)"
    relative = Path(os.path.relpath(spec.rsplit(":", 1)[0], Path(reports_dir).resolve()))
    return f"[`{relative.name}`]({relative.as_posix()})"


def write_experiment_page(measured: Measured, book: FactBook, reports_dir: Path, out_dir: Path,
                          eval_images: np.ndarray) -> Path:
    """reports/<name>.md and reports/<name>/{curves,misclassified}.png."""
    exp, stats = measured.exp, measured.stats
    facts = experiment_facts(stats)
    model = ModelSpec.of(exp.train).build()
    figures = out_dir / exp.name
    plot_history(stats.histories, figures / "curves.png",
                 f"{ModelSpec.of(exp.train).label}: {len(stats.seeds)} seeds (mean line, min-max band)")
    plot_seed_scores({s.seed: s.score for s in stats.seeds}, figures / "seeds.png",
                     f"{ModelSpec.of(exp.train).label}: each seed's worst scored epoch ({facts['passing']} hold)")
    first = measured.records[exp.seeds[0]]["misclassified"]
    plot_misclassified(eval_images, first, figures / "misclassified.png",
                       f"seed {exp.seeds[0]}: {len(first)} misclassified test images after the "
                       f"last epoch (true -> predicted; first 40)")
    page = render("experiment.md", title=exp.title, model=ModelSpec.of(exp.train).label,
                  model_source=model_source(exp.train.model, reports_dir), experiment_file=repo_path(exp.path),
                  name=exp.name, target=book.fill(exp.target, exp.name, exp.path + " target"),
                  result=result_block(measured, facts),
                  analysis=book.fill(exp.analysis, exp.name, exp.path + " analysis"),
                  train_conditions=train_conditions(exp.train, model), gap_table=gap_table(measured),
                  first_seed=exp.seeds[0], model_tables=model_tables_markdown(model),
                  seeds=", ".join(map(str, exp.seeds)), config_table=config_table(exp.train),
                  validation=validation_block(exp, reports_dir))
    return write_text(out_dir / f"{exp.name}.md", page)
