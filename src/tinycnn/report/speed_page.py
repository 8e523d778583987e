"""reports/speed.md: time to target, the seconds of one whole run alone against the share of test
seeds that hold, for every named recipe (train/recipes.py) that has both its 20 seeds and a
timed run (`tinycnn bench --full`). Every figure comes from reports/bench/bench.json and the
experiments' committed seed records."""
from __future__ import annotations

from pathlib import Path

from tinycnn.evidence.facts import Measured, experiment_facts
from tinycnn.evidence.plots import plot_time_to_target
from tinycnn.files import write_text
from tinycnn.report.template import render
from tinycnn.train.recipes import RECIPES

GOAL_SECONDS = 120.0   # issue 38: a whole `tinycnn train` in two minutes on a 2-core machine
GOAL_HOLDING = 19      # ... holding on at least 19 of 20 test seeds


def recipe_seconds(bench: dict) -> dict[str, float]:
    """The seconds of one whole run alone of each recipe `tinycnn bench --full` timed, by name."""
    return {name: run["seconds"] for name, run in bench.get("full", {}).get("recipes", {}).items()}


def timed_recipes(measured: dict[str, Measured], bench: dict) -> list[tuple[str, Measured, float]]:
    """(recipe, its experiment's seeds, seconds of one whole run alone) for each recipe with both."""
    seconds = recipe_seconds(bench)
    return [(name, measured[name], seconds[name]) for name in RECIPES if name in measured and name in seconds]


def how_seeds_ran(m: Measured) -> str:
    """Whether each seed's own wall time is an alone figure: one seed at a time on every core."""
    workers, processes = (m.run.workers if m.run else None), m.exp.train.processes
    if workers == 1:
        return f"one at a time, {processes} process(es) each" + (": each alone" if processes > 1 else "")
    return f"{workers or 'several'} at a time, side by side: not alone"


def goal_lines(rows: list[tuple[str, Measured, float]]) -> str:
    """Which recipes meet the goal, from the figures (never typed)."""
    lines = []
    for name, m, seconds in rows:
        fast = seconds <= GOAL_SECONDS
        holds = m.stats.holding >= GOAL_HOLDING and len(m.stats.seeds) == 20
        met = "meets the goal" if fast and holds else "misses the goal: " + " and ".join(
            why for why, bad in ((f"{seconds:.0f} s is over {GOAL_SECONDS:.0f} s", not fast),
                                 (f"{m.stats.holding} of {len(m.stats.seeds)} seeds hold", not holds)) if bad)
        lines.append(f"- `{name}` ({m.stats.model}, {m.stats.epochs} epochs): one whole run **{seconds:.0f} s**, "
                     f"**{m.stats.holding}/{len(m.stats.seeds)}** seeds hold; it {met}.")
    (a, _, sa), others = (rows[0], rows[1:]) if rows else ((None, None, 0.0), [])
    for b, _, sb in others:  # each against the first: step 3, what `make train` runs
        lines.append(f"- `{b}` takes {sb / sa:.2f}x the time of `{a}` ({sa / sb:.2f}x as fast).")
    return "\n".join(lines)


def speed_block(measured: dict[str, Measured], bench: dict) -> str | None:
    """The README's lines on time to target (None until a recipe has seeds and a timed run)."""
    rows = timed_recipes(measured, bench)
    return goal_lines(rows) + "\nMeasured on " + bench["machine"] + "; details: [reports/speed.md](reports/speed.md)." if rows else None


def write_speed_page(measured: dict[str, Measured], bench: dict, out_dir: Path) -> Path | None:
    rows = timed_recipes(measured, bench)
    if not rows:
        return None
    table = ["| recipe | model | params | epochs | batch | processes | one whole run alone (s) | seeds holding | "
             "95% interval | lowest scored | each seed's training: median (range) | how the seeds ran | report |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, m, seconds in rows:
        f, cfg = experiment_facts(m.stats), m.exp.train
        table.append(f"| `{name}` | `{m.stats.model}` | {f['params']} | {m.stats.epochs} | {cfg.batch_size} | "
                     f"{cfg.processes} | **{seconds:.0f}** | {f['passing']} | {f['passing_ci']} | {f['last3_min']} | "
                     f"{f['seed_seconds_median']} ({f['seed_seconds_range']}) | {how_seeds_ran(m)} | [{m.exp.name}.md]({m.exp.name}.md) |")
    plot_time_to_target([(name, seconds, m.stats.holding, len(m.stats.seeds), m.stats.holding_interval)
                         for name, m, seconds in rows], GOAL_SECONDS, out_dir / "speed.png")
    full = bench["full"]["recipes"]
    commands = "; ".join(f"`{full[name]['command']}`" for name, _, _ in rows)
    page = render("speed.md", machine=bench["machine"], goal_seconds=f"{GOAL_SECONDS:.0f}",
                  goal_holding=GOAL_HOLDING, table="\n".join(table), verdict=goal_lines(rows), commands=commands)
    return write_text(out_dir / "speed.md", page)
