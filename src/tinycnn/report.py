"""Reports computed from committed metrics only: no figure is typed by hand.

`write_experiment_report` turns reports/<step>/seed<N>.json into reports/<step>.md with plots;
`write_all` does it for every experiment and rewrites the README's results table. Target and
analysis texts come from the experiment file; `{placeholders}` in them are filled with facts
from the metrics (see `step_facts`), so the prose cannot drift from the numbers either.
"""
from __future__ import annotations

import re
import statistics
from dataclasses import dataclass
from pathlib import Path

import torch

from .analysis import (describe_rf, receptive_field_facts, receptive_field_table, rf_table_markdown,
                       summary)
from .config import ConfigError, Experiment, TrainConfig, load_experiment, repo_path
from .engine import model_for, split_for
from .model import count_parameters
from .runs import read_json

TARGET_ACC = 99.4
MAX_PARAMS = 8000
MAX_EPOCHS = 15
LAST = 3  # the challenge scores the last 3 epochs


# ---------------------------------------------------------------------------- statistics
@dataclass
class SeedStats:
    seed: int
    last: list[float]        # test accuracy at each of the last 3 epochs
    best_train: float
    best_test: float
    stable_from: int | None  # first epoch from which every later epoch is >= 99.4
    wall_seconds: float

    @property
    def last_min(self) -> float:
        return min(self.last)


def seed_stats(seed: int, record: dict) -> SeedStats:
    history = record["history"]
    stable_from = None
    for r in reversed(history):
        if r["test_acc"] < TARGET_ACC:
            break
        stable_from = r["epoch"]
    return SeedStats(seed, [r["test_acc"] for r in history[-LAST:]], max(r["train_acc"] for r in history),
                     max(r["test_acc"] for r in history), stable_from, record["wall_seconds"])


@dataclass
class StepStats:
    name: str
    model: str
    params: int
    epochs: int
    seeds: list[SeedStats]
    histories: list[list[dict]]
    wall_seconds: float | None  # all seeds together, as run (None if unknown)
    workers: int | None

    @property
    def last_mins(self) -> list[float]:
        return [s.last_min for s in self.seeds]

    @property
    def passing(self) -> int:
        ok_budget = self.params < MAX_PARAMS and self.epochs <= MAX_EPOCHS
        return sum(ok_budget and s.last_min >= TARGET_ACC for s in self.seeds)

    def mean_over_seeds(self, key: str) -> list[float]:
        return [statistics.fmean(h[i][key] for h in self.histories) for i in range(self.epochs)]


def load_step_stats(exp: Experiment, reports_dir: Path) -> StepStats | None:
    folder = reports_dir / exp.name
    paths = [folder / f"seed{seed}.json" for seed in exp.seeds]
    if not all(p.exists() for p in paths):
        return None
    records = [read_json(p) for p in paths]
    for seed, record in zip(exp.seeds, records):
        expected = exp.train.replace(seed=seed).to_dict()
        if record["config"] != expected:
            changed = sorted(k for k in expected if record["config"].get(k) != expected[k])
            raise ConfigError(f"{folder}/seed{seed}.json was trained with other settings than {exp.path} "
                             f"says ({', '.join(changed)}): rerun the experiment")
    meta = read_json(folder / "experiment.json") if (folder / "experiment.json").exists() else {}
    return StepStats(exp.name, exp.train.model, records[0]["params"], len(records[0]["history"]),
                     [seed_stats(seed, r) for seed, r in zip(exp.seeds, records)],
                     [r["history"] for r in records], meta.get("wall_seconds"), meta.get("workers"))


def pct(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}f}%"


def step_facts(stats: StepStats) -> dict[str, str]:
    """Named, formatted facts that experiment texts may quote as {name} or {stepN_name}."""
    gaps = [a - b for a, b in zip(stats.mean_over_seeds("train_acc"), stats.mean_over_seeds("test_acc"))]
    mins = stats.last_mins
    all_last = [a for s in stats.seeds for a in s.last]
    test_means = stats.mean_over_seeds("test_acc")
    train_loss, test_loss = stats.mean_over_seeds("train_loss"), stats.mean_over_seeds("test_loss")
    e5 = min(4, stats.epochs - 1)  # index of epoch 5
    positive_from = next((i + 1 for i in range(stats.epochs) if all(g > 0 for g in gaps[i:])), None)
    swings = [abs(h[i + 1]["test_acc"] - h[i]["test_acc"]) for h in stats.histories
              for i in range(max(0, stats.epochs - 5), stats.epochs - 1)]
    stable = [s.stable_from for s in stats.seeds]
    return {
        "params": f"{stats.params:,}",
        "seeds": str(len(stats.seeds)),
        "passing": f"{stats.passing}/{len(stats.seeds)}",
        "last3_min": pct(min(mins)),
        "seed_mins": ", ".join(pct(m) for m in mins),
        "last3_min_median": pct(statistics.median(mins)),
        "margin": f"{min(mins) - TARGET_ACC:+.2f}",
        "last3_max": pct(max(all_last)),
        "last3_mean": pct(statistics.fmean(all_last), 3),
        "last3_std": f"{statistics.stdev(all_last):.3f}" if len(all_last) > 1 else "n/a",
        "best_test_max": pct(max(s.best_test for s in stats.seeds)),
        "best_test_mean": pct(statistics.fmean(s.best_test for s in stats.seeds), 3),
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
    }


def fill(text: str, facts: dict[str, str], where: str) -> str:
    try:
        return text.format_map(facts)
    except KeyError as e:
        raise ConfigError(f"{where}: no fact {{{e.args[0]}}} (a typo, or that step has no metrics yet); "
                          f"known: {', '.join(sorted(facts))}") from None


def all_facts(experiments: list[Experiment], reports_dir: Path) -> dict[str, dict[str, str]]:
    """Facts of every experiment with metrics, and of every sweep with a study database, as
    sweep_<study> (so a text can quote e.g. {sweep_frontier_best})."""
    facts = {}
    for exp in experiments:
        stats = load_step_stats(exp, reports_dir)
        if stats:
            facts[exp.name] = step_facts(stats)
    from .sweep import study_facts

    for folder in sorted({Path(exp.path).parent for exp in experiments}):
        for sweep in studied_sweeps(folder):
            facts[f"sweep_{sweep.study}"] = study_facts(sweep)
    return facts


def studied_sweeps(folder: Path) -> list:
    """The sweep files (*_sweep.toml) in `folder` whose study database exists."""
    from .sweep import load_sweep

    sweeps = [load_sweep(path) for path in sorted(Path(folder).glob("*_sweep.toml"))]
    return [s for s in sweeps if Path(s.storage.removeprefix("sqlite:///")).exists()]


def facts_for(exp: Experiment, facts: dict[str, dict[str, str]]) -> dict[str, str]:
    """Own facts by plain name, every step's facts as <step>_<name>."""
    merged = {f"{step}_{key}": value for step, values in facts.items() for key, value in values.items()}
    merged.update(facts.get(exp.name, {}))
    return merged


def result_line(stats: StepStats) -> str:
    """The one-line result that each Model_N docstring must carry verbatim (a test checks)."""
    facts = step_facts(stats)
    return (f"Result: {facts['params']} params; last-3-epoch test accuracy min {facts['last3_min']}, "
            f"mean {facts['last3_mean']} over {facts['seeds']} seeds; {facts['passing']} seeds hold >= 99.4%.")


# ---------------------------------------------------------------------------- Markdown
def model_tables_markdown(model) -> str:
    rows = receptive_field_table(model)
    return (f"**Parameters** ({count_parameters(model):,}; from torchinfo)\n\n```\n{summary(model)}\n```\n\n"
            f"**Receptive field** (n: size, j: jump, r: receptive field, in input pixels)\n\n"
            f"{rf_table_markdown(rows)}\n\n{describe_rf(receptive_field_facts(rows))}.\n")


def config_table(cfg: TrainConfig) -> str:
    skip = {"seed", "device", "test_subset", "train_subset", "holdout"}
    rows = [f"| {k} | {v} |" for k, v in cfg.to_dict().items() if k not in skip]
    return "| setting | value |\n|---|---|\n" + "\n".join(rows)


def result_block(stats: StepStats, facts: dict[str, str]) -> str:
    lines = [f"| seed | epoch {stats.epochs - 2} | epoch {stats.epochs - 1} | epoch {stats.epochs} | "
             f"last-3 min | best train | best test | >= 99.4% from epoch | passes | wall time |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for s in stats.seeds:
        lines.append(f"| {s.seed} | " + " | ".join(pct(a) for a in s.last) +
                     f" | {pct(s.last_min)} | {pct(s.best_train)} | {pct(s.best_test)} | "
                     f"{s.stable_from or 'never'} | {'yes' if stats.params < MAX_PARAMS and s.last_min >= TARGET_ACC else 'no'} | "
                     f"{s.wall_seconds:.0f}s |")
    wall = (f"{stats.wall_seconds:.0f}s for all {len(stats.seeds)} seeds with {stats.workers or 'one per core'} "
            f"parallel worker(s)" if stats.wall_seconds else "not recorded")
    return "\n".join([
        f"- Parameters: **{facts['params']}** (budget: fewer than {MAX_PARAMS:,}); epochs: {stats.epochs}.",
        f"- Test accuracy over the last 3 epochs of all seeds: min **{facts['last3_min']}**, "
        f"mean {facts['last3_mean']}, std {facts['last3_std']} (sample std over {3 * len(stats.seeds)} values), "
        f"max {facts['last3_max']}.",
        f"- Seeds holding >= 99.4% on each of the last 3 epochs: **{facts['passing']}**.",
        f"- Best test accuracy: mean {facts['best_test_mean']} over seeds, max {facts['best_test_max']}; "
        f"best train accuracy: mean {facts['best_train_mean']}.",
        f"- Wall time: {wall}.",
        "", *lines])


def gap_table(stats: StepStats) -> str:
    train, test = stats.mean_over_seeds("train_acc"), stats.mean_over_seeds("test_acc")
    train_loss, test_loss = stats.mean_over_seeds("train_loss"), stats.mean_over_seeds("test_loss")
    lines = ["| epoch | train acc | test acc | gap (train - test) | train loss | test loss | seeds >= 99.4% |",
             "|---|---|---|---|---|---|---|"]
    for i in range(stats.epochs):
        ok = sum(h[i]["test_acc"] >= TARGET_ACC for h in stats.histories)
        lines.append(f"| {i + 1} | {pct(train[i], 3)} | {pct(test[i], 3)} | {train[i] - test[i]:+.3f} | "
                     f"{train_loss[i]:.4f} | {test_loss[i]:.4f} | {ok}/{len(stats.histories)} |")
    return "\n".join(lines)


def validation_block(exp: Experiment, reports_dir: Path) -> str:
    """The tuning runs of this step (train on 50k, score on the held-out last 10k), if any."""
    rows = []
    for folder in sorted((reports_dir / "validation").glob(f"{exp.name}-*")):
        meta_path = folder / "experiment.json"
        if not meta_path.exists():
            continue
        meta = read_json(meta_path)
        cfg = TrainConfig.from_dict(meta["config"])
        changed = {k: v for k, v in cfg.to_dict().items()
                   if v != getattr(exp.train, k) and k not in ("holdout", "seed")}
        for seed in meta["seeds"]:
            record = read_json(folder / f"seed{seed}.json")
            last = [r["test_acc"] for r in record["history"][-LAST:]]
            variant = ", ".join(f"{k}={v}" for k, v in changed.items()) or "as in this file"
            rows.append(f"| {folder.name} | {variant} | {record['params']:,} | {seed} | " + " | ".join(pct(a) for a in last) +
                        f" | {pct(min(last))} |")
    if not rows:
        return ""
    return ("\n## Tuning on the validation split\n\nSettings were chosen on a validation split, never on the "
            "test set: train on the first 50,000 training images, score on the last 10,000 "
            "(`tinycnn run ... --validate`). Accuracies below are validation accuracies at the last 3 epochs.\n\n"
            "| run | settings that differ from the file | params | seed | last-2 | last-1 | last | min |\n"
            "|---|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n")


def train_conditions(cfg: TrainConfig, model) -> str:
    """How training batches differ from test images, for reading the train-test gap."""
    augmented = cfg.rotate or cfg.translate or cfg.scale
    dropout = any(isinstance(m, (torch.nn.Dropout, torch.nn.Dropout2d)) for m in model.modules())
    parts = [p for p, on in (("augmented", augmented), ("with dropout active", dropout)) if on]
    return f" ({' and '.join(parts)})" if parts else " (the same kind of images as the test set)"


def write_experiment_report(exp: Experiment, reports_dir: Path, data_dir=None,
                            facts: dict[str, dict[str, str]] | None = None,
                            out_dir: Path | None = None, data=None) -> Path:
    """reports/<name>.md (+ plots in reports/<name>/) from reports/<name>/seed<N>.json."""
    from .data import load_mnist
    from .plots import plot_history, plot_misclassified

    out_dir = out_dir or reports_dir
    stats = load_step_stats(exp, reports_dir)
    if stats is None:
        raise FileNotFoundError(f"{reports_dir / exp.name}: metrics of seeds {exp.seeds} are not all there")
    if facts is None:
        facts = all_facts(load_experiments(Path(exp.path).parent), reports_dir)
    own = facts_for(exp, facts)
    model = model_for(exp.train)
    figures = out_dir / exp.name
    figures.mkdir(parents=True, exist_ok=True)
    plot_history(stats.histories, figures / "curves.png",
                 f"{exp.train.model}: {len(stats.seeds)} seeds (mean line, min-max band)")
    first = read_json(reports_dir / exp.name / f"seed{exp.seeds[0]}.json")
    eval_images = split_for(exp.train, data if data is not None else load_mnist(data_dir))[2]
    plot_misclassified(eval_images, first["misclassified"], figures / "misclassified.png",
                       f"seed {exp.seeds[0]}: {len(first['misclassified'])} misclassified test images after the "
                       f"last epoch (true -> predicted; first 40)")
    report = f"""# {exp.title}

Model: `{exp.train.model}` in [`src/tinycnn/model.py`](../src/tinycnn/model.py); experiment file:
[`{repo_path(exp.path)}`](../{repo_path(exp.path)}); raw per-epoch metrics: [`reports/{exp.name}/`]({exp.name}/).
Regenerate this page with `tinycnn report` (no training).

## Target

{fill(exp.target, own, exp.path + ' target')}

## Result

{result_block(stats, own)}

![loss and accuracy](./{exp.name}/curves.png)

## Analysis

{fill(exp.analysis, own, exp.path + ' analysis')}

Derived from the metrics (means over seeds; train accuracy is the running accuracy over the
epoch's training batches{train_conditions(exp.train, model)}, test accuracy is measured after the epoch):

{gap_table(stats)}

Misclassified test images of seed {exp.seeds[0]}:

![misclassified](./{exp.name}/misclassified.png)

## Model

{model_tables_markdown(model)}
## Training settings

Seeds: {', '.join(map(str, exp.seeds))} (fixed before the runs; all are shown). Training on all 60,000
training images, scoring on the 10,000 official test images.

{config_table(exp.train)}
{validation_block(exp, reports_dir)}"""
    path = out_dir / f"{exp.name}.md"
    path.write_text(report)
    return path


# ---------------------------------------------------------------------------- all reports + README
def load_experiments(folder: Path) -> list[Experiment]:
    """Every experiment file in `folder` (sweep files, *_sweep.toml, are not experiments)."""
    return [load_experiment(p) for p in sorted(Path(folder).glob("*.toml")) if not p.name.endswith("_sweep.toml")]


def table_row(exp: Experiment, reports_dir: Path, cells: list[str]) -> str:
    """A README table row: the experiment (linked), its model, `cells`, its report (linked)."""
    report = f"{reports_dir.name}/{exp.name}.md"
    return " | ".join(["", f"[{exp.title.split(':')[0]}]({repo_path(exp.path)})", f"`{exp.train.model}`", *cells,
                       f"[{report}]({report})", ""]).strip()


def readme_table(experiments: list[Experiment], facts: dict[str, dict[str, str]], reports_dir: Path) -> str:
    lines = ["| step | model | params | final RF | best test (max) | last-3 min | last-3 mean | seeds passing | report |",
             "|---|---|---|---|---|---|---|---|---|"]
    for exp in (e for e in experiments if e.name in facts):
        f = facts[exp.name]
        rf = receptive_field_facts(receptive_field_table(model_for(exp.train))).final_rf
        lines.append(table_row(exp, reports_dir, [f["params"], str(rf), f["best_test_max"], f["last3_min"],
                                                  f["last3_mean"], f["passing"]]))
    return "\n".join(lines)


# The README's frontier table: step 3, then the smaller candidates tested on five seeds.
FRONTIER_TABLE = ("step3", "skeleton", "ladder", "frontier")
# The best public result known to us (from the project's survey; one run, not reproduced here).
PUBLIC_BEST = {"params": "about 5,900", "last3": ">= 99.40% (as reported)", "seeds": "1 run, called unstable by its author"}


def frontier_table(experiments: list[Experiment], facts: dict[str, dict[str, str]], reports_dir: Path) -> str:
    lines = ["| experiment | model | params | last-3 min | last-3 mean | seeds holding >= 99.4% | report |",
             "|---|---|---|---|---|---|---|"]
    for exp in (e for e in experiments if e.name in facts):
        f = facts[exp.name]
        lines.append(table_row(exp, reports_dir, [f["params"], f["last3_min"], f["last3_mean"], f["passing"]]))
    lines.append(f"| best public solution | - | {PUBLIC_BEST['params']} | {PUBLIC_BEST['last3']} | - | "
                 f"{PUBLIC_BEST['seeds']} | - |")
    return "\n".join(lines)


def update_readme(readme: Path, blocks: dict[str, str]) -> str:
    """README text with each <!-- NAME:start --> ... <!-- NAME:end --> block replaced."""
    text = readme.read_text()
    for name, content in blocks.items():
        start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
        pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
        if not pattern.search(text):
            raise ConfigError(f"{readme}: no {start} ... {end} markers")
        text = pattern.sub(lambda _: f"{start}\n{content}\n{end}", text)
    return text


def bench_summary(bench: dict) -> str:
    p = bench["pipeline"]
    lines = [f"Measured by `tinycnn bench` on {bench['machine']} (medians): tinycnn trains "
             f"**{p['tinycnn_median']:,.0f} images/s** against {p['reference_median']:,.0f} for the per-image "
             f"reference pipeline, **{p['ratio']:.2f}x**."]
    if "full" in bench:
        lines.append(f"A full 15-epoch `tinycnn train` of {bench['model']} took "
                     f"**{bench['full']['one_seed_15_epochs_s'] / 60:.1f} min** from command start to run folder "
                     f"written.")
    return " ".join(lines)


def write_all(experiments_dir: Path = Path("experiments"), reports_dir: Path = Path("reports"),
              readme: Path = Path("README.md"), data_dir=None, out_dir: Path | None = None) -> list[Path]:
    """Regenerate every report from committed data: steps (metrics JSON), the benchmark
    (bench.json), sweeps (their study databases), and the README table; returns written paths."""
    from .data import load_mnist

    experiments = load_experiments(experiments_dir)
    facts = all_facts(experiments, reports_dir)
    data = load_mnist(data_dir) if facts else None  # once, for every report's misclassified grid
    written = [write_experiment_report(exp, reports_dir, data_dir, facts, out_dir, data)
               for exp in experiments if exp.name in facts]
    bench_json = reports_dir / "bench" / "bench.json"
    if bench_json.exists():
        from .bench import write_bench

        bench_out = (out_dir or reports_dir) / "bench"
        write_bench(read_json(bench_json), bench_out)
        written.append(bench_out / "bench.md")
    from .sweep import sweep_report

    for sweep in studied_sweeps(experiments_dir):
        written.append(sweep_report(sweep.path, (out_dir or reports_dir) / "sweeps"))
    blocks = {"results": readme_table([e for e in experiments if e.name.startswith("step")], facts, reports_dir)}
    if bench_json.exists():
        blocks["bench"] = bench_summary(read_json(bench_json))
    frontier = sorted((e for e in experiments if e.name in FRONTIER_TABLE), key=lambda e: FRONTIER_TABLE.index(e.name))
    if "frontier" in facts:
        blocks["frontier"] = frontier_table(frontier, facts, reports_dir)
    target = (out_dir / readme.name) if out_dir else readme
    target.write_text(update_readme(readme, blocks))
    return written + [target]
