"""Reports computed from committed data only: no figure is typed by hand.

`write_all` regenerates every page: each experiment's (facts.py, experiment_page.py) from
reports/<name>/seed<N>.json, the benchmark's from reports/bench/bench.json, each sweep's from its
study database, and the README's generated blocks. Statistics are computed once per experiment
and passed down; `write_experiment_report` writes one page and loads only what its texts quote.
"""
from __future__ import annotations

import re
from pathlib import Path

from tinycnn.errors import ConfigError
from tinycnn.evidence.experiment import Experiment, load_experiments
from tinycnn.evidence.facts import FactBook, Measured, experiment_facts, load_measured
from tinycnn.evidence.plots import plot_budget_curve
from tinycnn.evidence.sweep import Sweep, load_sweep, study_summary
from tinycnn.files import read_json, write_text
from tinycnn.report.bench_page import write_bench_page
from tinycnn.report.experiment_page import write_experiment_page
from tinycnn.report.export_page import microcontroller_block, use_block, write_export_page
from tinycnn.report.readme import (
    PUBLIC_ANCHORS,
    bench_summary,
    curve_measured,
    curve_points,
    curve_table,
    frontier_table,
    results_table,
    robustness,
    update_pages,
)
from tinycnn.report.speed_page import recipe_seconds, speed_block, write_speed_page
from tinycnn.report.sweep_page import write_sweep_page
from tinycnn.train.data import load_mnist, split_for
from tinycnn.train.recipes import RECIPES


def studied_sweeps(folder: Path) -> list[Sweep]:
    """The sweep files (*_sweep.toml) in `folder` whose study database exists."""
    sweeps = [load_sweep(path) for path in sorted(Path(folder).glob("*_sweep.toml"))]
    return [s for s in sweeps if Path(s.storage.removeprefix("sqlite:///")).exists()]


class Library:
    """The experiments and studies of a repository, each loaded on first use and kept."""

    def __init__(self, experiments_dir: Path, reports_dir: Path):
        self.experiments = load_experiments(experiments_dir)
        self.sweeps = {s.study: s for s in studied_sweeps(experiments_dir)}
        self.reports_dir = reports_dir
        self.measured: dict[str, Measured | None] = {}
        self.summaries = {}

    def measure(self, name: str) -> Measured | None:
        if name not in self.measured:
            exp = next(e for e in self.experiments if e.name == name)
            self.measured[name] = load_measured(exp, self.reports_dir)
        return self.measured[name]

    def summary(self, study: str):
        if study not in self.summaries:
            self.summaries[study] = study_summary(self.sweeps[study])
        return self.summaries[study]

    def fact_book(self) -> FactBook:
        return FactBook(lambda name: (m.stats if (m := self.measure(name)) else None),
                        [e.name for e in self.experiments], self.summary, list(self.sweeps))


def write_experiment_report(exp: Experiment, reports_dir: Path = Path("reports"), data_dir=None,
                            experiments_dir: Path | None = None) -> Path:
    """One experiment's page (what `tinycnn run` writes after its seeds)."""
    library = Library(experiments_dir or Path(exp.path).parent, reports_dir)
    measured = library.measure(exp.name)
    if measured is None:
        raise FileNotFoundError(f"{reports_dir / exp.name}: metrics of seeds {exp.seeds} are not all there")
    images = split_for(exp.train, load_mnist(data_dir))[2]
    return write_experiment_page(measured, library.fact_book(), reports_dir, reports_dir, images)


def write_all(experiments_dir: Path = Path("experiments"), reports_dir: Path = Path("reports"),
              readme: Path = Path("README.md"), data_dir=None, out_dir: Path | None = None) -> list[Path]:
    """Regenerate every report and the generated blocks (README, docs/) from committed data; returns written paths."""
    out_dir = out_dir or reports_dir
    if not readme.is_file():
        raise ConfigError(f"{readme}: no such README (its generated blocks are rewritten)")
    library = Library(experiments_dir, reports_dir)
    if not library.experiments:
        raise ConfigError(f"{experiments_dir}: no experiment files (*.toml) to report on")
    measured = [m for e in library.experiments if (m := library.measure(e.name))]
    facts = {m.exp.name: experiment_facts(m.stats) for m in measured}
    book = library.fact_book()
    data = load_mnist(data_dir) if measured else None  # once, for every page's misclassified grid
    written = [write_experiment_page(m, book, reports_dir, out_dir, split_for(m.exp.train, data)[2])
               for m in measured]
    bench_json = reports_dir / "bench" / "bench.json"
    bench = read_json(bench_json) if bench_json.exists() else {}
    # the steps, then the other named recipes (a project without steps: all)
    steps = [e for e in library.experiments if re.fullmatch(r"step\d+", e.name)]
    steps += [e for e in library.experiments if e.name in RECIPES and e not in steps]
    blocks = {"results": results_table(steps or library.experiments, facts, reports_dir, recipe_seconds(bench))}
    if "step3" in facts:
        blocks["robustness"] = robustness(facts["step3"])
    if bench:
        written.append(write_bench_page(bench, out_dir / "bench"))
        blocks["bench"] = bench_summary(bench)
        by_name = {m.exp.name: m for m in measured}
        if speed := write_speed_page(by_name, bench, out_dir):
            written += [speed, out_dir / "speed.png"]
            blocks["speed"] = speed_block(by_name, bench)
    for study in library.sweeps:
        written.append(write_sweep_page(library.summary(study), out_dir / "sweeps"))
    if "frontier" in facts:
        blocks["frontier"] = frontier_table(library.experiments, facts, reports_dir)
    curve = curve_measured(library.experiments, {m.exp.name: m for m in measured})
    if any(m.exp.name != "step3" for m in curve):
        plot_budget_curve(curve_points(curve), PUBLIC_ANCHORS, out_dir / "curve.png")
        written.append(out_dir / "curve.png")
        blocks["curve"] = curve_table(curve, facts, reports_dir)
    exports_json = reports_dir / "export" / "exports.json"
    if exports_json.exists():
        exports = read_json(exports_json)
        written.append(write_export_page(exports, out_dir))
        blocks["use"] = use_block(exports)
        blocks["microcontroller"] = microcontroller_block(exports)
    # The blocks stand in the README and in the pages of the project's docs/ (this repository's site).
    pages = [readme, *sorted((readme.parent / "docs").glob("*.md"))]
    for page, text in update_pages(pages, blocks).items():
        where = page.relative_to(readme.parent)
        written.append(write_text(out_dir / where if out_dir != reports_dir else page, text))
    return written
