"""A sweep's report page: best trials, the parameters-vs-score frontier, parameter importances."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from optuna.trial import TrialState

from tinycnn.evidence.plots import plot_importances, plot_sweep_frontier
from tinycnn.evidence.study import label
from tinycnn.evidence.sweep import StudySummary
from tinycnn.files import write_text
from tinycnn.models.names import portable_model
from tinycnn.report.template import render
from tinycnn.train.config import repo_path


def trial_counts(summary: StudySummary) -> str:
    states, sweep = summary.states, summary.sweep
    running = (f", {states[TrialState.RUNNING]} marked running (under way, or stopped before their first heartbeat, "
               f"which Optuna cannot tell from running)" if states[TrialState.RUNNING] else "")
    diverged = f" ({summary.diverged} of them diverged)" if summary.diverged else ""
    return (f"{summary.trials} in all; {len(summary.complete)} complete, {len(summary.pruned)} pruned by the "
            f"median rule{diverged}, {summary.rejected} rejected before training (over the {sweep.budget:,}-parameter "
            f"budget), {states[TrialState.FAIL]} failed (interrupted), {states[TrialState.WAITING]} queued (retries "
            f"of interrupted trials, or start points; they run when the sweep resumes){running}.")


def pruned_when(summary: StudySummary) -> str:
    """When the median rule stopped trials: a rule applied mid-schedule can stop late bloomers."""
    if not summary.pruned:
        return ""
    epochs = Counter(t.pruned_after for t in summary.pruned if t.pruned_after is not None)
    return ("Pruned after epoch: " + ", ".join(f"{e} ({n} trial{'s' if n > 1 else ''})" for e, n in sorted(epochs.items()))
            + "; the last value each reached is in the study database.\n\n")


def best_rows(summary: StudySummary, limit: int = 15) -> str:
    rows = ["| trial | score | last 3 epochs | params | layout | settings |", "|---|---|---|---|---|---|"]
    for t in summary.complete[:limit]:
        settings = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={portable_model(v) if k == 'model' else v}"
                             for k, v in t.settings.items())
        last = " / ".join(f"{a:.2f}" for a in t.last)
        rows.append(f"| {t.number} | {t.value:.2f}% | {last} | {t.params:,} | `{t.layout}` | {settings} |")
    return "\n".join(rows)


def importance_text(summary: StudySummary) -> str:
    if len(summary.complete) < 2:
        return "(needs at least two complete trials)"
    return "\n".join([f"PED-ANOVA over the {len(summary.complete)} complete trials: what separates the best of "
                      f"them from the rest (with few trials, little more than a hint).", "",
                      "| dimension | importance |", "|---|---|"]
                     + [f"| {k} | {v:.3f} |" for k, v in summary.importances.items()])


def frontier(summary: StudySummary) -> list[tuple[int, float]]:
    """The best score reached at or below each size, as the trials grow."""
    front, best = [], -1.0
    for t in sorted(summary.complete, key=lambda t: t.params):
        if t.value > best:
            front.append((t.params, t.value))
            best = t.value
    return front


def write_sweep_page(summary: StudySummary, out_dir: Path) -> Path:
    """reports/sweeps/<study>.md with <study>_frontier.png and <study>_importance.png."""
    sweep = summary.sweep
    plot_sweep_frontier([(t.params, t.value) for t in summary.complete], frontier(summary), sweep.budget,
                        out_dir / f"{sweep.study}_frontier.png", f"{sweep.study}: {len(summary.complete)} complete trials")
    has_importances = len(summary.complete) >= 2
    if has_importances:
        plot_importances(summary.importances, out_dir / f"{sweep.study}_importance.png")
    page = render("sweep.md", title=sweep.title, file=repo_path(sweep.path), study=sweep.study,
                  storage=label(sweep.storage), trials=trial_counts(summary), pruned_when=pruned_when(summary),
                  rows=best_rows(summary), importances=importance_text(summary),
                  importance_figure=f"\n![importance]({sweep.study}_importance.png)\n" if has_importances else "")
    return write_text(out_dir / f"{sweep.study}.md", page)
