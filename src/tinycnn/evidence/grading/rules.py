"""The assignment's rules, as a rubric states them, against a submission as read (submission.py).
Parameters are counted from the code, never taken from a claim; epochs and accuracies come from the
logs; a rule that cannot be judged says why and fails. The limits and the target are the final
model's unless the rubric binds every step; earlier steps' figures are reported beside them.
"""

from __future__ import annotations

from tinycnn.evidence.checklist import WHY, Rule
from tinycnn.evidence.grading.claims import Figure, claims_in
from tinycnn.evidence.grading.rubric import Rubric
from tinycnn.evidence.grading.submission import Graded, Submission


def bound(sub: Submission, rubric: Rubric) -> list[Graded]:
    """The steps the budget and the epoch limit bind."""
    return sub.steps if rubric.limits == "all" else sub.steps[-1:]


def steps_rule(sub: Submission, rubric: Rubric) -> Rule:
    found = ", ".join(f"{g.step.heading!r} ({g.step.source})" for g in sub.steps) or "none"
    n = len(sub.steps)
    if not sub.written:
        pictures = f"; the write-up has {sub.images} picture(s), which are not read" if sub.images else ""
        return Rule("steps", False, f"no step is written up (no heading, label or table names one){pictures}; "
                                    f"graded instead: {n} notebook(s) with a training log: {found}")
    ok = n >= rubric.steps if rubric.steps_at_least else n == rubric.steps
    return Rule("steps", ok, f"{n} steps, {'as' if ok else 'not the'} {rubric.steps_text} asked for: {found}")


def texts_rule(sub: Submission) -> Rule:
    problems = []
    for g in sub.steps:
        missing = [p for p in ("target", "result", "analysis") if not g.step.parts.get(p, "").strip()]
        if missing:
            problems.append(f"{g.label}: no {' / '.join(missing)}")
        elif not WHY.search(g.step.parts["target"]) and len(g.step.parts["target"].split()) < 4:
            problems.append(f"{g.label}: the Target does not say why")
    if not sub.steps:
        problems.append("no step to read")
    return Rule("texts", not problems,
                "; ".join(problems) or "every step has a Target that says why, a Result and an Analysis")


def counted(g: Graded) -> str:
    if g.model is None:
        return f"{g.label}: no model could be tied to it"
    if "params" not in g.measured:
        return f"{g.label}: {g.model.label} not measured ({g.measured.get('error', 'no answer')})"
    return ""


def budget_rule(sub: Submission, rubric: Rubric) -> Rule:
    problems = [p for g in bound(sub, rubric) if (p := counted(g))]
    for g in bound(sub, rubric):
        if "params" in g.measured and g.measured["params"] >= rubric.budget:
            problems.append(f"{g.label}: {g.model.label} has {g.measured['params']:,} parameters, "
                            f"not fewer than {rubric.budget:,}")
    counts = [f"{g.label} {g.model.label} {g.measured['params']:,}" for g in sub.steps if "params" in g.measured]
    scope = "the final model" if rubric.limits == "final" else "every step"
    if not sub.steps:
        problems.append("no step, so no model")
    return Rule("budget", not problems, "; ".join(problems) + ("; " if problems and counts else "")
                + (f"counted from the code ({scope} binds): {', '.join(counts)}" if counts else ""))


def epochs_rule(sub: Submission, rubric: Rubric) -> Rule:
    problems = []
    for g in bound(sub, rubric):
        if g.run is None:
            problems.append(f"{g.label}: no training log found" + (f" ({g.tie})" if g.tie else ""))
        elif len(g.run.epochs) > rubric.epochs:
            problems.append(f"{g.label}: {len(g.run.epochs)} epochs logged in {g.run.where}, more than {rubric.epochs}")
    counts = [f"{g.label} {len(g.run.epochs)} ({g.run.where})" for g in sub.steps if g.run]
    if not sub.steps:
        problems.append("no step, so no log")
    return Rule("epochs", not problems, "; ".join(problems) + ("; " if problems and counts else "")
                + (f"epochs logged: {', '.join(counts)}" if counts else ""))


def holds_rule(sub: Submission, rubric: Rubric) -> Rule:
    final = sub.final
    run = final.run if final else None
    if run is None or len(run.epochs) < rubric.scored:
        what = f"{len(run.epochs)} logged epoch(s)" if run else "no training log"
        return Rule("holds", False, f"{final.label if final else 'final step'}: {what}, fewer than {rubric.scored}, "
                                    f"so nothing to judge")
    scored = run.test[-rubric.scored:]
    ok = min(scored) >= rubric.target
    stopped = f"; the run was stopped ({run.stopped}) after {len(run.epochs)} epochs" if run.stopped else ""
    return Rule("holds", ok, f"{final.label} ({run.where}): last {rubric.scored} logged test accuracies "
                             f"{' / '.join(f'{a:.2f}%' for a in scored)}, {'each' if ok else 'not each'} >= "
                             f"{rubric.target:.2f}%{stopped}")


def within(figure: Figure, value: float) -> bool:
    return figure.low - 1e-9 <= value < figure.high + 1e-9 or abs(figure.value - value) < 1e-9


def accuracy_problems(g: Graded, name: str, figure: Figure | None, series: list[float]) -> tuple[list[str], list[str]]:
    """(problems, remarks) of a claimed best accuracy against the log's series."""
    if figure is None:
        return [], []
    if not series:  # nothing to hold it against: unconfirmed, not false
        return [], [f"{g.label}'s {name} {figure.text!r} cannot be checked: its log prints no such figure"]
    if within(figure, max(series)):
        return [], []
    if within(figure, series[-1]):
        return [], [f"{g.label}'s {name} {figure.text!r} is its last epoch's ({series[-1]:.2f}%; its best "
                     f"is {max(series):.2f}%)"]
    return [f"{g.label}: claims {name} {figure.text!r}, its log gives {max(series):.2f}%"], []


def figures_rule(sub: Submission, rubric: Rubric) -> Rule:
    problems, remarks, checked = [], [], 0
    for g in sub.steps:
        c, run = claims_in(g.step.parts.get("result", "") + "\n" + g.step.parts.get("analysis", "")), g.run
        if c.params is not None and "params" in g.measured:
            checked += 1
            if not within(c.params, g.measured["params"]):
                problems.append(f"{g.label}: claims {c.params.text!r}, the code has {g.measured['params']:,}")
        for name, figure, series in (("best test", c.best_test, run.test if run else []),
                                     ("best train", c.best_train, run.train if run else [])):
            checked += figure is not None
            more, notes = accuracy_problems(g, name, figure, series)
            problems, remarks = problems + more, remarks + notes
        if c.reached_epoch is not None and run and run.epochs:
            checked += 1
            reached = run.reached(rubric.target)
            if reached != c.reached_epoch:
                problems.append(f"{g.label}: claims {rubric.target:.2f}% from epoch {c.reached_epoch} on, its log "
                                f"gives {'epoch ' + str(reached) if reached else 'never'}")
        if run and run.total_params is not None and "params" in g.measured:
            checked += 1
            if run.total_params != g.measured["params"]:
                problems.append(f"{g.label}: its summary table says {run.total_params:,} parameters, "
                                f"{g.model.label} has {g.measured['params']:,} (the log is of another model)")
    said = "; ".join(problems) or f"{checked} claimed figures, each as the code and logs give"
    return Rule("figures", not problems, said + "".join(f"; {r}" for r in remarks))


def rf_rule(sub: Submission) -> Rule:
    final = sub.final
    if final is None or "rf_rows" not in final.measured:
        why = (final.measured.get("rf_error") or final.measured.get("error") or "no model") if final else "no step"
        return Rule("rf", False, f"no receptive field computed for the final model ({why})")
    computed = sorted({row["r_out"] for row in final.measured["rf_rows"]})
    under = f"; its receptive field is {final.measured['rf']} px, under the 28 px input (a finding)" if (
        final.measured["rf"] < 28) else ""
    written = final.rf_written or sub.rf_written
    if not written:
        return Rule("rf", False, f"no receptive-field calculation found (a table or lines in the write-up, per-layer "
                                 f"comments in the code); {final.model.label} computes to "
                                 f"{final.measured['rf']} px{under}")
    wrong = sorted({r for r in written if r not in computed})
    if wrong:
        return Rule("rf", False, f"receptive fields written that no layer of {final.model.label} has: "
                                 f"{', '.join(map(str, wrong))} (its layers: {', '.join(map(str, computed))}){under}")
    return Rule("rf", True, f"{len(written)} receptive fields written, each one a layer of {final.model.label} has "
                            f"(final {final.measured['rf']} px){under}")


def files_rule(sub: Submission, rubric: Rubric) -> Rule | None:
    if not rubric.required_files and not rubric.required_classes:
        return None
    missing = [f for f in rubric.required_files if not (sub.folder / f).is_file()]
    defined = {c for f in rubric.required_files for c in sub.index.classes.get(f, [])}
    absent = [c for c in rubric.required_classes if c not in defined]
    problems = [f"no {', '.join(missing)}"] if missing else []
    if absent:
        problems.append(f"{', '.join(absent)} not defined in {' or '.join(rubric.required_files) or 'the code'}")
    return Rule("files", not problems, "; ".join(problems) or
                f"{', '.join(rubric.required_files)} defines {', '.join(rubric.required_classes) or 'its models'}")


def grade(sub: Submission, rubric: Rubric = Rubric()) -> list[Rule]:
    rules = [steps_rule(sub, rubric), texts_rule(sub), budget_rule(sub, rubric), epochs_rule(sub, rubric),
             holds_rule(sub, rubric), figures_rule(sub, rubric), rf_rule(sub), files_rule(sub, rubric)]
    return [rule for rule in rules if rule is not None]
