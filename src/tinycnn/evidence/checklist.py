"""`tinycnn check DIR`: a project checked against the challenge's rules, one line per rule with the
evidence, for the student who does the challenge and the teacher who grades it.

A project is tinycnn-structured: experiments/step1..N.toml naming Model_1..Model_N (in the
project's model.py, or tinycnn's registered models in tinycnn's own repository), their metrics in
reports/<step>/seed<N>.json. The rules, with the edition's numbers as options (CheckOptions):
  steps, budget, epochs   exactly N steps, step i training Model_i, under the budget, within the epochs
  texts       every step has a Target that says why, a Result (its metrics) and an Analysis
  holds       the last step holds the target on each scored epoch on every seed (Wilson interval; one seed: one run)
  figures     every figure typed in a Target or Analysis (a percentage, parameters, epochs) is one the metrics give
  rf          each model's receptive field covers the 28-pixel input
  provenance  the metrics come from the project's code (model.py's SHA-256 in every seed; committed weights fit)
The project's model.py is built only in a sandboxed child (grading/sandbox.py): it is someone's code.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tinycnn.errors import ConfigError, DataError, UnknownModelError
from tinycnn.evidence import records
from tinycnn.evidence.challenge import MAX_EPOCHS, MAX_PARAMS, SCORED_EPOCHS, TARGET, experiment_stats, wilson_interval
from tinycnn.evidence.experiment import Experiment, load_experiments
from tinycnn.evidence.facts import experiment_facts
from tinycnn.evidence.grading.models import measured_classes
from tinycnn.models.model import MODELS, count_parameters
from tinycnn.models.receptive_field import RFRow
from tinycnn.models.spec import ModelSpec
from tinycnn.models.tables import NotTraceableError, receptive_field_facts, receptive_field_table
from tinycnn.ship.weights import SHIPPED, load_weights
from tinycnn.train.config import changed_settings

# A Target says why: one of these words, or a colon introducing the reason.
WHY = re.compile(r"\b(why|because|since|so that|so|therefore|hence|as)\b", re.I)
# Words before a figure that make it a goal or a limit, not a measurement: "at least 99.50%".
GOAL = re.compile(r"(at least|at most|>=|<=|under|over|above|below|target|goal|aim|hold|reach|no .{0,30}under|"
                  r"fewer than|less than|more than|budget|limit|within|up to)\W*(\w+\W+){0,3}$", re.I)
PERCENT = re.compile(r"(?<![\w.{])(\d{1,3}\.\d{1,3})\s?%")
PARAMS = re.compile(r"(?<![\w.{])(\d{1,3}(?:,\d{3})+|\d{4,6})\s+(?:parameters|params)\b", re.I)
EPOCHS = re.compile(r"(?<![\w.{])(\d{1,3})\s+epochs\b|\bepoch\s+(\d{1,3})\b", re.I)
PLACEHOLDER = re.compile(r"\{[^{}]*\}")
PROBLEMS = (ConfigError, DataError, UnknownModelError)  # a model that cannot be built or loaded, in one line


@dataclass
class CheckOptions:
    steps: int = 3
    budget: int = MAX_PARAMS         # parameters must be fewer than this
    epochs: int = MAX_EPOCHS
    target: float = TARGET


@dataclass
class Rule:
    name: str
    passed: bool
    evidence: str
    details: list = field(default_factory=list)  # for --json: per-step or per-figure findings


@dataclass
class Step:
    exp: Experiment
    model: object | None           # a registered model's nn.Module; None for a file's (measured in a child)
    params: int | None
    records: dict[int, dict] | None  # every seed's metrics, or None until all are there
    problem: str = ""               # why the model could not be built
    measured: dict = field(default_factory=dict)  # a model file's figures from the sandbox: rf_rows or rf_error


def load_steps(project: Path) -> list[Step]:
    experiments = sorted((e for e in load_experiments(project / "experiments") if re.fullmatch(r"step\d+", e.name)),
                         key=lambda e: int(e.name[4:]))
    specs = [ModelSpec.of(e.train) for e in experiments]
    files = measured_classes([(s.file, s.name) for s in specs if s.is_file])  # someone's code: in a sandboxed child
    steps = []
    for exp, spec in zip(experiments, specs):
        model, params, problem, found = None, None, "", files.get((spec.file, spec.name), {})
        try:
            if "error" in found:
                raise DataError(found["error"])
            model = None if spec.is_file else spec.build()
            params = found["params"] if spec.is_file else count_parameters(model)
        except PROBLEMS as e:
            problem = str(e)
        seeds = records.read_seeds(project / "reports" / exp.name, exp.seeds)
        steps.append(Step(exp, model, params, seeds, problem, found))
    return steps


def steps_rule(steps: list[Step], project: Path, options: CheckOptions) -> Rule:
    names = [s.exp.name for s in steps]
    wanted = [f"step{i}" for i in range(1, options.steps + 1)]
    problems = [] if names == wanted else [f"found {', '.join(names) or 'no step files'}, expected {', '.join(wanted)}"]
    for i, step in enumerate(steps, 1):
        spec = ModelSpec.of(step.exp.train)
        if spec.name != f"Model_{i}":
            problems.append(f"{step.exp.name} trains {spec.portable}, not Model_{i}")
        elif spec.is_file and spec.file != (project / "model.py").resolve():
            problems.append(f"{step.exp.name}'s model is in {spec.file}, not in the project's model.py")
        elif not spec.is_file and spec.model not in MODELS:
            problems.append(f"{step.exp.name}: no model {spec.model}")
        if step.problem:
            problems.append(f"{step.exp.name}: {step.problem}")
    where = "model.py" if any(ModelSpec.of(s.exp.train).is_file for s in steps) else "tinycnn's model registry"
    found = ", ".join(f"{s.exp.name} -> {ModelSpec.of(s.exp.train).label}" for s in steps)
    return Rule("steps", not problems, "; ".join(problems) or f"exactly {options.steps} steps, each training its "
                f"model from {where}: {found}")


def budget_rule(steps: list[Step], options: CheckOptions) -> Rule:
    counts = [f"{ModelSpec.of(s.exp.train).name} {s.params:,}" if s.params is not None
              else f"{ModelSpec.of(s.exp.train).name} ?" for s in steps]
    over = [s for s in steps if s.params is None or s.params >= options.budget]
    return Rule("budget", bool(steps) and not over,
                f"{'; '.join(counts)} parameters (fewer than {options.budget:,} allowed)"
                + (f"; over: {', '.join(s.exp.name for s in over)}" if over else ""))


def epochs_rule(steps: list[Step], options: CheckOptions) -> Rule:
    over = [s for s in steps if s.exp.train.epochs > options.epochs]
    return Rule("epochs", bool(steps) and not over,
                ", ".join(f"{s.exp.name} {s.exp.train.epochs}" for s in steps) + f" epochs (at most {options.epochs})")


def texts_rule(steps: list[Step]) -> Rule:
    problems = []
    for step in steps:
        target, analysis = step.exp.target, step.exp.analysis
        if not target.strip() or "TODO" in target:
            problems.append(f"{step.exp.name}: the Target is not written yet")
        elif not WHY.search(PLACEHOLDER.sub("", target)):
            problems.append(f"{step.exp.name}: the Target does not say why (no 'because', 'so', 'why', ...)")
        if step.records is None:
            problems.append(f"{step.exp.name}: no Result (seeds {', '.join(map(str, step.exp.seeds))} have no "
                            f"complete metrics in reports/{step.exp.name}/: run it)")
        if not analysis.strip() or "TODO" in analysis:
            problems.append(f"{step.exp.name}: the Analysis is not written yet")
    return Rule("texts", bool(steps) and not problems, "; ".join(problems) or
                f"each of the {len(steps)} steps has a Target that says why, a Result (its metrics) and an Analysis")


def holds_rule(steps: list[Step], options: CheckOptions) -> Rule:
    if not steps or steps[-1].records is None:
        return Rule("holds", False, "the last step has no complete metrics yet")
    last = steps[-1]
    scored = {seed: [row["eval_acc"] for row in record["history"][-SCORED_EPOCHS:]]
              for seed, record in last.records.items()}
    epochs = len(next(iter(last.records.values()))["history"])
    holding = [seed for seed, values in scored.items()
               if len(values) == SCORED_EPOCHS and min(values) >= options.target and epochs <= options.epochs
               and last.params is not None and last.params < options.budget]
    low, high = wilson_interval(len(holding), len(scored))
    failing = sorted(set(scored) - set(holding))
    first = max(1, epochs - SCORED_EPOCHS + 1)
    scored_epochs = f"epochs {first}-{epochs}" if first < epochs else f"epoch {epochs}"
    if len(scored) == 1:
        claim = (f"a single run: seed {failing[0] if failing else holding[0]} "
                 f"{'holds' if holding else 'does not hold'} {options.target:.2f}% on each of {scored_epochs}; one "
                 f"seed is not evidence that the recipe holds consistently (95% Wilson interval of the share: "
                 f"{100 * low:.0f}-{100 * high:.0f}%)")
    else:
        claim = (f"{last.exp.name}: {len(holding)}/{len(scored)} seeds hold {options.target:.2f}% on each of "
                 f"{scored_epochs} (95% Wilson interval of the share that holds: {100 * low:.0f}-{100 * high:.0f}%)"
                 + (f"; failing: seeds {', '.join(map(str, failing))} (lowest scored values "
                    f"{', '.join(f'{min(scored[s]):.2f}%' for s in failing)})" if failing else ""))
    return Rule("holds", not failing, claim, [{"seed": s, "scored": v} for s, v in scored.items()])


def measured_values(steps: list[Step]) -> dict[str, dict[str, float]]:
    """Every measured percentage of every step: each seed's per-epoch accuracies and the facts."""
    values = {}
    for step in steps:
        if step.records is None:
            continue
        found = {}
        for seed, record in step.records.items():
            for row in record["history"]:
                found[f"seed {seed} epoch {row['epoch']} test"] = row["eval_acc"]
                found[f"seed {seed} epoch {row['epoch']} train"] = row["train_acc"]
        stats = experiment_stats(step.exp.name, ModelSpec.of(step.exp.train).label, step.params or 0, 0, step.records)
        for name, text in experiment_facts(stats).items():
            if text.endswith("%") and re.fullmatch(r"-?\d+\.\d+%", text):
                found[name] = float(text[:-1])
        values[step.exp.name] = found
    return values


def measurements(prose: str, pattern: re.Pattern) -> list[re.Match]:
    """The figures `pattern` finds that read as measurements: not after a goal or limit word."""
    return [match for match in pattern.finditer(prose) if not GOAL.search(prose[:match.start()][-60:])]


def figures_rule(steps: list[Step], options: CheckOptions) -> Rule:
    measured = measured_values(steps)
    everything = {f"{name} {key}": v for name, found in measured.items() for key, v in found.items()}
    params = {s.params for s in steps if s.params is not None}
    epochs = {s.exp.train.epochs for s in steps}
    flagged, checked = [], 0
    for step in steps:
        for part, text in (("target", step.exp.target), ("analysis", step.exp.analysis)):
            prose = PLACEHOLDER.sub("{}", text)  # placeholders always agree: the report fills them
            for match in measurements(prose, PERCENT):
                if float(match[1]) == options.target:
                    continue  # the target itself
                checked += 1
                digits = len(match[1].split(".")[1])
                value = float(match[1])
                if not any(round(v, digits) == value for v in everything.values()):
                    nearest = min(everything.items(), key=lambda kv: abs(kv[1] - value), default=None)
                    flagged.append(f"{step.exp.name} {part}: {match[1]}% is not in the metrics"
                                   + (f" (nearest: {nearest[0]} {nearest[1]:.{digits}f}%)" if nearest else
                                      " (no metrics yet)"))
            for match in measurements(prose, PARAMS):
                checked += 1
                if int(match[1].replace(",", "")) not in params:
                    flagged.append(f"{step.exp.name} {part}: {match[1]} parameters, but the models have "
                                   f"{', '.join(f'{p:,}' for p in sorted(params))}")
            for match in measurements(prose, EPOCHS):  # "after 5 epochs", "from epoch 9": the run must have it
                checked += 1
                if int(match[1] or match[2]) > max(epochs):
                    flagged.append(f"{step.exp.name} {part}: '{match[0]}', but the steps train "
                                   f"{', '.join(map(str, sorted(epochs)))} epochs")
    return Rule("figures", not flagged, "; ".join(flagged) or
                f"{checked} figure(s) written by hand agree with the metrics (placeholders always do; goals and "
                f"limits such as 'at least 99.50%' are not measurements)", flagged)


def rf_rule(steps: list[Step]) -> Rule:
    found, short, tables = [], [], {}
    for step in steps:
        name = ModelSpec.of(step.exp.train).name
        if step.model is None and "rf_rows" not in step.measured:
            found += [f"{name}: no RF table ({step.measured['rf_error']})"] if "rf_error" in step.measured else []
            short.append(name)
            continue
        try:
            rows = receptive_field_table(step.model) if step.model else [RFRow(**r) for r in step.measured["rf_rows"]]
        except NotTraceableError as e:
            found.append(f"{name}: no RF table ({e})")
            short.append(name)
            continue
        facts = receptive_field_facts(rows)
        tables[name] = [asdict(row) for row in rows]
        found.append(f"{name} {facts.final_rf} px")
        if not facts.covers_input:
            short.append(name)
    return Rule("rf", bool(steps) and not short, "final receptive field " + ", ".join(found)
                + (f"; short of the 28-pixel input: {', '.join(short)}" if short else " (covers the 28-pixel input)"),
                [tables])


def provenance_rule(steps: list[Step], project: Path) -> Rule:
    problems, evidence = [], []
    for step in steps:
        spec = ModelSpec.of(step.exp.train)
        if step.records is None:
            continue
        changed = sorted({key for seed, record in step.records.items()
                          for key in changed_settings(step.exp.train.replace(seed=seed).to_dict(), record["config"])})
        if changed:
            problems.append(f"{step.exp.name}: its metrics were trained with other settings than its file says "
                            f"({', '.join(changed)}): rerun the step")
        elif spec.is_file:
            path = spec.file
            now = spec.sha256() if path.is_file() else None
            recorded = {r.get("model_file_sha256") for r in step.records.values()}
            if recorded != {now}:
                problems.append(f"{step.exp.name}: its metrics were made with "
                                f"{', '.join(sorted(str(h)[:12] for h in recorded))} (SHA-256), {path.name} is "
                                f"{now[:12] if now else 'missing'} now: rerun the step")
            else:
                evidence.append(f"{step.exp.name} {now[:12]}")
        else:
            weights = project / SHIPPED / f"{step.exp.name}.safetensors"
            params = {r["params"] for r in step.records.values()}
            if params != {step.params}:
                problems.append(f"{step.exp.name}: metrics of a {'/'.join(map(str, params))}-parameter model, the "
                                f"code builds {step.params}")
            elif weights.is_file():
                try:
                    load_weights(weights)
                    evidence.append(f"{step.exp.name} (weights fit the code)")
                except PROBLEMS as e:
                    problems.append(f"{step.exp.name}: {e}")
            else:
                evidence.append(f"{step.exp.name} (parameter count)")
    return Rule("provenance", bool(steps) and not problems and len(evidence) == len(steps),
                "; ".join(problems) or (f"every step's metrics come from the code here: {', '.join(evidence)}"
                                        if len(evidence) == len(steps) else "some steps have no metrics yet"))


def check_project(project: Path, options: CheckOptions = CheckOptions()) -> list[Rule]:
    if not (project / "experiments").is_dir():
        raise ConfigError(f"{project}: no experiments/ folder (a project from `tinycnn init`, or tinycnn's own)")
    steps = load_steps(project)
    return [steps_rule(steps, project, options), budget_rule(steps, options), epochs_rule(steps, options),
            texts_rule(steps), holds_rule(steps, options), figures_rule(steps, options), rf_rule(steps),
            provenance_rule(steps, project)]
