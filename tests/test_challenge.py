"""The challenge's rule and its statistics, on histories made up for the purpose."""
import pytest

from tinycnn.evidence.challenge import (
    ExperimentStats,
    experiment_stats,
    holds,
    score,
    scored,
    stable_from,
    wilson_interval,
    within_budget,
)


def history(*accuracies: float) -> list[dict]:
    return [{"epoch": i + 1, "train_acc": a - 0.1, "train_loss": 0.1, "eval_acc": a, "eval_loss": 0.02}
            for i, a in enumerate(accuracies)]


def test_the_score_is_the_worst_of_the_last_three_epochs():
    h = history(98.0, 99.6, 99.41, 99.39, 99.5)
    assert scored(h) == [99.41, 99.39, 99.5] and score(h) == 99.39


@pytest.mark.parametrize("accuracies, params, expected", [
    ([99.0] * 12 + [99.4, 99.4, 99.4], 7999, True),     # exactly on the line holds
    ([99.0] * 12 + [99.5, 99.39, 99.5], 7999, False),   # one scored epoch below fails
    ([99.5] * 15, 8000, False),                        # the budget is "fewer than 8,000"
    ([99.5] * 16, 7000, False),                        # at most 15 epochs
    ([99.5, 99.5], 7000, False),                       # fewer epochs than are scored
])
def test_holds(accuracies, params, expected):
    assert holds(history(*accuracies), params) is expected


def test_budget_limits():
    assert within_budget(7999, 15) and not within_budget(8000, 15) and not within_budget(7000, 16)


def test_stable_from_is_the_first_epoch_of_the_final_run_above_the_line():
    assert stable_from(history(99.5, 99.3, 99.4, 99.45)) == 3
    assert stable_from(history(99.5, 99.5, 99.3)) is None


@pytest.mark.parametrize("k, n, low, high", [
    (19, 20, 0.7639, 0.9911),   # Wilson 95% for 19/20 (Newcombe 1998 / Wikipedia tables)
    (20, 20, 0.8389, 1.0),
    (0, 10, 0.0, 0.2775),
    (5, 10, 0.2366, 0.7634),
])
def test_wilson_interval_against_published_values(k, n, low, high):
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(low, abs=1e-4) and hi == pytest.approx(high, abs=1e-4)


def test_experiment_statistics_count_holding_seeds_and_keep_per_seed_facts():
    records = {seed: {"params": 7000, "wall_seconds": 10.0, "history": history(*accs)} for seed, accs in
               {0: [99.0, 99.5, 99.5, 99.5], 3: [99.0, 99.5, 99.3, 99.6], 7: [99.6, 99.41, 99.45, 99.42]}.items()}
    stats = experiment_stats("x", "Model_3", 7000, 1000, records)
    assert isinstance(stats, ExperimentStats) and stats.epochs == 4
    assert [s.seed for s in stats.seeds] == [0, 3, 7] and stats.holding == 2
    assert stats.scores == [99.5, 99.3, 99.41]
    assert len(stats.all_scored) == 9
    assert stats.mean_over_seeds("eval_acc")[0] == pytest.approx((99.0 + 99.0 + 99.6) / 3)
    assert stats.holding_interval == wilson_interval(2, 3)
