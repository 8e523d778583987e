"""The challenge's rules against a submission as handed in: the same rules as for a tinycnn project
(checklist.py), judged on what is there. Parameters are counted from the code, never taken from a
claim; epochs and accuracies come from the logs; a rule that cannot be judged says why and fails."""

from __future__ import annotations

from tinycnn.evidence.checklist import WHY, CheckOptions, Rule
from tinycnn.evidence.grading.submission import Graded, Submission

SCORED = 3  # the last logged epochs that must each hold the target


def label(g: Graded) -> str:
    return f"step {g.step.number}" if g.step.number is not None else "final model"


def steps_rule(sub: Submission, options: CheckOptions) -> Rule:
    found = ", ".join(f"{g.step.heading!r} ({g.step.source})" for g in sub.steps)
    ok = len(sub.steps) == options.steps
    return Rule("steps", ok, f"{len(sub.steps)} steps, {'as' if ok else 'not the'} {options.steps} asked for: {found}")


def texts_rule(sub: Submission) -> Rule:
    problems = []
    for g in sub.steps:
        missing = [p for p in ("target", "result", "analysis") if not g.step.parts.get(p)]
        if missing:
            problems.append(f"{label(g)}: no {' / '.join(missing)}")
        elif not WHY.search(g.step.parts["target"]):
            problems.append(f"{label(g)}: the Target does not say why")
    return Rule(
        "texts", not problems, "; ".join(problems) or "every step has a Target that says why, a Result and an Analysis"
    )


def budget_rule(sub: Submission, options: CheckOptions) -> Rule:
    problems, counts = [], []
    for g in sub.steps:
        if g.model is None:
            problems.append(f"{label(g)}: no model in model.py could be tied to it")
        elif "params" not in g.measured:
            problems.append(f"{label(g)}: {g.model} not measured ({g.measured.get('error') or sub.measure_error})")
        else:
            counts.append(f"{g.model} {g.measured['params']:,}")
            if g.measured["params"] >= options.budget:
                problems.append(
                    f"{label(g)}: {g.model} has {g.measured['params']:,} parameters, not fewer than {options.budget:,}"
                )
    return Rule("budget", not problems, "; ".join(problems) or f"counted from model.py: {', '.join(counts)}")


def epochs_rule(sub: Submission, options: CheckOptions) -> Rule:
    problems, counts = [], []
    for g in sub.steps:
        if g.notebook is None or not g.notebook.log.epochs:
            problems.append(
                f"{label(g)}: no log found" + (f" in {g.notebook.path.name} (no outputs saved?)" if g.notebook else "")
            )
            continue
        counts.append(f"{label(g)} {g.notebook.log.epochs}")
        if g.notebook.log.epochs > options.epochs:
            problems.append(f"{label(g)}: {g.notebook.log.epochs} epochs logged, more than {options.epochs}")
    return Rule("epochs", not problems, "; ".join(problems) or f"epochs logged: {', '.join(counts)}")


def holds_rule(sub: Submission, options: CheckOptions) -> Rule:
    last = sub.steps[-1]
    log = last.notebook.log if last.notebook else None
    if log is None or log.epochs < SCORED:
        return Rule("holds", False, f"{label(last)}: fewer than {SCORED} logged epochs, so nothing to judge")
    scored = log.test[-SCORED:]
    ok = min(scored) >= options.target
    return Rule(
        "holds",
        ok,
        f"{label(last)}: last {SCORED} logged test accuracies "
        f"{' / '.join(f'{a:.2f}%' for a in scored)}, {'each' if ok else 'not each'} >= {options.target:.2f}% "
        f"(one run: the share of seeds that hold is unknown)",
    )


def runs_rule(sub: Submission) -> Rule:
    """One logged run is one run: a write-up that calls it consistent claims what it has not shown."""
    claimed = [(label(g), g.step.claims.consistent) for g in sub.steps if g.step.claims.consistent]
    if claimed:
        return Rule(
            "runs",
            False,
            "; ".join(f"{where} says {word!r} from one logged run" for where, word in claimed)
            + ": one run shows one run, not consistency over seeds",
        )
    return Rule("runs", True, "each step is one logged run, and the write-up calls it no more")


def close(claimed: float, found: float, text_decimals: int = 2) -> bool:
    return abs(claimed - found) <= 0.5 * 10**-text_decimals + 1e-9


def figures_rule(sub: Submission, options: CheckOptions) -> Rule:
    problems, checked = [], 0
    for g in sub.steps:
        c, log = g.step.claims, g.notebook.log if g.notebook else None
        if c.params is not None and "params" in g.measured:
            checked += 1
            found = g.measured["params"]
            if abs(c.params - found) > c.params_tolerance:
                problems.append(f"{label(g)}: claims {c.params_text!r}, the code has {found:,}")
        for name, value, series in (
            ("best test", c.best_test, log.test if log else []),
            ("best train", c.best_train, log.train if log else []),
        ):
            if value is not None:
                checked += 1
                if not series:
                    problems.append(f"{label(g)}: claims {name} {value:.2f}%, no such figure in its log")
                elif not close(value, max(series)):
                    problems.append(f"{label(g)}: claims {name} {value:.2f}%, its log gives {max(series):.2f}%")
        if c.reached_epoch is not None and log and log.epochs:
            checked += 1
            reached = log.reached(options.target)
            if reached != c.reached_epoch:
                problems.append(
                    f"{label(g)}: claims {options.target:.2f}% from epoch {c.reached_epoch} on, its log "
                    f"gives {'epoch ' + str(reached) if reached else 'never'}"
                )
    return Rule(
        "figures", not problems, "; ".join(problems) or f"{checked} claimed figures, each as the code and logs give"
    )


def summary_rule(sub: Submission) -> Rule:
    problems, checked = [], []
    for g in sub.steps:
        logged = g.notebook.log.total_params if g.notebook else None
        if logged is not None and "params" in g.measured:
            checked.append(f"{label(g)} {logged:,}")
            if logged != g.measured["params"]:
                problems.append(
                    f"{label(g)}: its summary table says {logged:,} parameters, {g.model} in model.py has "
                    f"{g.measured['params']:,} (the log is of another model)"
                )
    return Rule(
        "summary",
        not problems,
        "; ".join(problems)
        or (f"summary tables equal the code: {', '.join(checked)}" if checked else "no summary table to compare"),
    )


def rf_rule(sub: Submission) -> Rule:
    problems, found = [], []
    for g in sub.steps:
        if "rf" in g.measured:
            found.append(f"{g.model} {g.measured['rf']}")
            if g.measured["rf"] < 28:
                problems.append(
                    f"{label(g)}: {g.model}'s receptive field is {g.measured['rf']} px, under the 28 px input"
                )
        else:
            problems.append(
                f"{label(g)}: no receptive field ({g.measured.get('rf_error') or g.measured.get('error') or 'no model'})"
            )
    return Rule("rf", not problems, "; ".join(problems) or f"final receptive fields: {', '.join(found)} px")


def grade(sub: Submission, options: CheckOptions = CheckOptions()) -> list[Rule]:
    return [
        steps_rule(sub, options),
        texts_rule(sub),
        budget_rule(sub, options),
        epochs_rule(sub, options),
        holds_rule(sub, options),
        runs_rule(sub),
        figures_rule(sub, options),
        summary_rule(sub),
        rf_rule(sub),
    ]
