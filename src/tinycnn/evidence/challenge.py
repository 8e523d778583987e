"""The challenge's rule, and the statistics built on it.

The rule: test accuracy of at least 99.4% on each of the last 3 epochs (never a one-off peak), at
most 15 epochs, fewer than 8,000 parameters. A seed *holds* when its run obeys all of it. An
experiment's claim is a share of seeds, so it comes with a confidence interval (Wilson score),
which says what "19 of 20" does and does not promise about the next seed.
Reports, sweeps and the command line all score with the functions here.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

TARGET = 99.4        # % accuracy on each scored epoch
SCORED_EPOCHS = 3    # the last 3 epochs are scored
MAX_EPOCHS = 15
MAX_PARAMS = 8000    # a model must have fewer parameters than this


def scored(history: list[dict]) -> list[float]:
    """Evaluation accuracy (%) at each scored epoch: the last 3 of the run."""
    return [r["eval_acc"] for r in history[-SCORED_EPOCHS:]]


def score(history: list[dict]) -> float:
    """The challenge's score of one run: its worst scored epoch."""
    return min(scored(history))


def within_budget(params: int, epochs: int) -> bool:
    return params < MAX_PARAMS and epochs <= MAX_EPOCHS


def holds(history: list[dict], params: int) -> bool:
    return (within_budget(params, len(history)) and len(history) >= SCORED_EPOCHS
            and score(history) >= TARGET)


def stable_from(history: list[dict]) -> int | None:
    """First epoch from which every later epoch is at or above the target (None: not at the end)."""
    epoch = None
    for record in reversed(history):
        if record["eval_acc"] < TARGET:
            break
        epoch = record["epoch"]
    return epoch


def wilson_interval(successes: int, trials: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval for a share (as fractions); sound at 0/n and n/n too."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z / (1 + z * z / trials) * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class SeedStats:
    seed: int
    scored: list[float]      # accuracy at each scored epoch
    best_train: float
    best_eval: float
    stable_from: int | None
    holds: bool
    wall_seconds: float

    @property
    def score(self) -> float:
        return min(self.scored)


def seed_stats(seed: int, record: dict) -> SeedStats:
    history = record["history"]
    return SeedStats(seed, scored(history), max(r["train_acc"] for r in history),
                     max(r["eval_acc"] for r in history), stable_from(history),
                     holds(history, record["params"]), record["wall_seconds"])


@dataclass
class ExperimentStats:
    """Everything a report says about an experiment's seeds, computed once."""
    name: str
    model: str
    params: int
    macs: int
    seeds: list[SeedStats]
    histories: list[list[dict]]

    @property
    def epochs(self) -> int:
        return len(self.histories[0])

    @property
    def scores(self) -> list[float]:
        return [s.score for s in self.seeds]

    @property
    def all_scored(self) -> list[float]:
        return [a for s in self.seeds for a in s.scored]

    @property
    def holding(self) -> int:
        return sum(s.holds for s in self.seeds)

    @property
    def holding_interval(self) -> tuple[float, float]:
        return wilson_interval(self.holding, len(self.seeds))

    def mean_over_seeds(self, key: str) -> list[float]:
        return [statistics.fmean(h[i][key] for h in self.histories) for i in range(self.epochs)]


def experiment_stats(name: str, model: str, params: int, macs: int, records: dict[int, dict]) -> ExperimentStats:
    """Statistics of an experiment from its seeds' metrics records ({seed: record})."""
    return ExperimentStats(name, model, params, macs, [seed_stats(s, r) for s, r in records.items()],
                           [r["history"] for r in records.values()])
