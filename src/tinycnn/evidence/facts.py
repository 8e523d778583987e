"""What the metrics say, as statistics and as named facts that report texts quote.

Experiment texts (target, analysis) hold `{placeholders}`: `{name}` for the experiment's own
facts, `{<experiment>_<name>}` for another experiment's and `{sweep_<study>_<name>}` for a sweep's,
so no figure in the prose is typed by hand. A FactBook computes each experiment's or study's facts
on first use, once.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tinycnn.errors import ConfigError
from tinycnn.evidence import records
from tinycnn.evidence.challenge import TARGET, ExperimentStats, experiment_stats
from tinycnn.evidence.experiment import Experiment
from tinycnn.evidence.sweep import StudySummary
from tinycnn.models.spec import ModelSpec
from tinycnn.models.tables import count_macs
from tinycnn.train.config import changed_settings


@dataclass
class Measured:
    """An experiment with its committed records, read once, and the statistics built on them."""
    exp: Experiment
    records: dict[int, dict]
    stats: ExperimentStats
    run: records.ExperimentRun | None  # the last `tinycnn run` that trained seeds here


def load_measured(exp: Experiment, reports_dir: Path) -> Measured | None:
    """An experiment's committed seeds; None until every seed's record is there."""
    folder = reports_dir / exp.name
    found = records.read_seeds(folder, exp.seeds)
    if found is None:
        return None
    for seed, record in found.items():
        expected = exp.train.replace(seed=seed).to_dict()
        changed = sorted(changed_settings(expected, record["config"]))
        if changed:
            raise ConfigError(f"{folder}/seed{seed}.json was trained with other settings than {exp.path} "
                              f"says ({', '.join(changed)}): rerun the experiment")
    stats = experiment_stats(exp.name, ModelSpec.of(exp.train).label, found[exp.seeds[0]]["params"],
                             count_macs(ModelSpec.of(exp.train).build()), found)
    return Measured(exp, found, stats, records.read_experiment_run(folder))


def pct(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}f}%"


def experiment_facts(stats: ExperimentStats) -> dict[str, str]:
    """Named, formatted facts of one experiment."""
    gaps = [a - b for a, b in zip(stats.mean_over_seeds("train_acc"), stats.mean_over_seeds("eval_acc"))]
    mins = stats.scores
    all_last = stats.all_scored
    test_means = stats.mean_over_seeds("eval_acc")
    train_loss, test_loss = stats.mean_over_seeds("train_loss"), stats.mean_over_seeds("eval_loss")
    e5 = min(4, stats.epochs - 1)  # index of epoch 5
    positive_from = next((i + 1 for i in range(stats.epochs) if all(g > 0 for g in gaps[i:])), None)
    swings = [abs(h[i + 1]["eval_acc"] - h[i]["eval_acc"]) for h in stats.histories
              for i in range(max(0, stats.epochs - 5), stats.epochs - 1)]
    stable = [s.stable_from for s in stats.seeds]
    low, high = stats.holding_interval
    return {
        "params": f"{stats.params:,}",
        "macs": f"{stats.macs:,}",
        "seeds": str(len(stats.seeds)),
        "holding": str(stats.holding),
        "passing": f"{stats.holding}/{len(stats.seeds)}",
        "passing_ci": f"{100 * low:.0f}-{100 * high:.0f}%",
        "failing_seeds": ", ".join(str(s.seed) for s in stats.seeds if not s.holds) or "none",
        "last3_min": pct(min(mins)),
        "seed_mins": ", ".join(pct(m) for m in mins),
        "last3_min_median": pct(statistics.median(mins)),
        "margin": f"{min(mins) - TARGET:+.2f}",
        "last3_max": pct(max(all_last)),
        "last3_mean": pct(statistics.fmean(all_last), 3),
        "last3_std": f"{statistics.stdev(all_last):.3f}" if len(all_last) > 1 else "n/a",
        "best_test_max": pct(max(s.best_eval for s in stats.seeds)),
        "best_test_mean": pct(statistics.fmean(s.best_eval for s in stats.seeds), 3),
        "best_train_mean": pct(statistics.fmean(s.best_train for s in stats.seeds), 3),
        "final_train_mean": pct(stats.mean_over_seeds("train_acc")[-1], 3),
        "final_test_mean": pct(test_means[-1], 3),
        "final_gap": f"{gaps[-1]:+.2f}",
        "max_gap": f"{max(gaps):+.2f}",
        "min_gap": f"{min(gaps):+.2f}",
        "epoch5_test_mean": pct(test_means[e5], 3),
        "test_range_last5": f"{min(test_means[-5:]):.2f}-{max(test_means[-5:]):.2f}%",
        "test_gain_after_epoch5": f"{test_means[-1] - test_means[e5]:+.2f}",
        "train_loss_epoch5": f"{train_loss[e5]:.4f}",
        "train_loss_final": f"{train_loss[-1]:.4f}",
        "test_loss_epoch5": f"{test_loss[e5]:.4f}",
        "test_loss_final": f"{test_loss[-1]:.4f}",
        "mean_gap_last5": f"{statistics.fmean(gaps[-5:]):+.2f}",
        "gap_positive_from": str(positive_from) if positive_from else "never",
        "max_swing_last5": f"{max(swings):.2f}" if swings else "n/a",
        "stable_from_latest": str(max(stable)) if all(stable) else "never (some seed)",
        "stable_from_earliest": str(min(x for x in stable if x)) if any(stable) else "never",
        # each seed's training as the engine timed it (alone only if the seeds ran one at a time)
        "seed_seconds_median": f"{statistics.median(s.wall_seconds for s in stats.seeds):.0f} s",
        "seed_seconds_range": f"{min(s.wall_seconds for s in stats.seeds):.0f}-{max(s.wall_seconds for s in stats.seeds):.0f} s",
    }


def study_facts(summary: StudySummary) -> dict[str, str]:
    """Named facts of a sweep's study: its size and its best trial."""
    facts = {"trials": str(summary.trials), "complete": str(len(summary.complete))}
    if summary.complete:
        best = summary.complete[0]
        facts.update(best=f"{best.value:.2f}%", best_trial=str(best.number), best_params=f"{best.params:,}",
                     best_layout=best.layout, best_last3=" / ".join(f"{a:.2f}" for a in best.last))
    return facts


def result_line(stats: ExperimentStats) -> str:
    """The one-line result that each Model_N docstring must carry verbatim (a test checks)."""
    facts = experiment_facts(stats)
    return (f"Result: {facts['params']} params; last-3-epoch test accuracy min {facts['last3_min']}, "
            f"mean {facts['last3_mean']} over {facts['seeds']} seeds; {facts['passing']} seeds hold >= 99.4%.")


class FactBook:
    """Facts of every experiment and study, each computed on first use."""

    def __init__(self, stats_of: Callable[[str], ExperimentStats | None], experiments: list[str],
                 summary_of: Callable[[str], StudySummary], studies: list[str]):
        self.stats_of, self.summary_of = stats_of, summary_of
        # longest names first, so "frontier2" is not read as "frontier" + "2_..."
        self.sources = sorted([(name, "") for name in experiments] + [(study, "sweep_") for study in studies],
                              key=lambda source: -len(source[1] + source[0]))
        self.cache: dict[str, dict[str, str] | None] = {}

    def facts(self, name: str, prefix: str = "") -> dict[str, str] | None:
        key = prefix + name
        if key not in self.cache:
            if prefix:
                self.cache[key] = study_facts(self.summary_of(name))
            else:
                stats = self.stats_of(name)
                self.cache[key] = experiment_facts(stats) if stats else None
        return self.cache[key]

    def lookup(self, own: str, key: str) -> str:
        mine = self.facts(own)
        if mine and key in mine:
            return mine[key]
        for name, prefix in self.sources:
            if key.startswith(f"{prefix}{name}_"):
                found = self.facts(name, prefix)
                if found and key[len(prefix + name) + 1:] in found:
                    return found[key[len(prefix + name) + 1:]]
        raise KeyError(key)

    def fill(self, text: str, own: str, where: str) -> str:
        """`text` with every {placeholder} replaced by its fact; ConfigError naming an unknown one."""
        book = self

        class Lookup(dict):
            def __missing__(self, key: str) -> str:
                return book.lookup(own, key)

        try:
            return text.format_map(Lookup())
        except KeyError as e:
            known = sorted(self.facts(own) or {})
            raise ConfigError(f"{where}: no fact {{{e.args[0]}}} (a typo, or that experiment has no metrics "
                              f"yet); own facts: {', '.join(known)}") from None
