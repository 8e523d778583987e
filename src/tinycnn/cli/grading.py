"""`tinycnn check`: the challenge's rules against a tinycnn project, a submission as handed in, or a
whole class of submissions at once (one table, Markdown and CSV; one broken submission never stops
the others).

Each function takes the parsed arguments, calls the library, prints what a user should see and
returns the exit status; errors propagate to main.py, which turns them into one line.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm import tqdm

from tinycnn.errors import ConfigError, DataError
from tinycnn.evidence.checklist import CheckOptions, Rule, check_project
from tinycnn.evidence.grading.course_env import built_python, checked_python, course_python, requirements_text
from tinycnn.evidence.grading.findings import notes
from tinycnn.evidence.grading.rerun import rerun, rerun_rule
from tinycnn.evidence.grading.rubric import Rubric, load_rubric
from tinycnn.evidence.grading.rules import grade
from tinycnn.evidence.grading.similarity import fingerprints, similar
from tinycnn.evidence.grading.submission import read_submission, unpacked
from tinycnn.files import write_json, write_text


@dataclass
class Graded:
    """One path graded: its rules, its notes, its key figures and what a class compares."""

    rules: list[Rule]
    notes: list[str] = field(default_factory=list)
    figures: dict = field(default_factory=dict)
    prints: dict = field(default_factory=dict)  # similarity fingerprints (a submission's)


def graded_path(path: Path, rubric: Rubric, args: argparse.Namespace) -> Graded:
    """The rules for one path (a project, a submission folder or a .zip), its notes and key figures."""
    if path.is_dir() and (path / "experiments").is_dir():
        if args.rerun:
            raise ConfigError(f"{path}: --rerun is for submissions; a tinycnn project's seeds are its experiments' own")
        options = CheckOptions(rubric.steps, rubric.budget, rubric.epochs, rubric.target)
        return Graded(check_project(path, options), figures={"kind": "tinycnn project"})
    if not path.exists():
        raise ConfigError(f"{path}: no such folder or file")
    with tempfile.TemporaryDirectory(prefix="tinycnn-unzip-") as tmp:
        sub = read_submission(unpacked(path, Path(tmp)), args.log_pattern)
        final = sub.final
        run = final.run if final else None
        graded = Graded(grade(sub, rubric), notes(sub, rubric, bool(args.rerun)), prints=fingerprints(sub))
        graded.figures = {
            "kind": "submission",
            "final_model": final.model.label if final and final.model else None,
            "params": final.measured.get("params") if final else None,
            "last_3": run.test[-rubric.scored:] if run else [],
            "epochs": len(run.epochs) if run else 0,
        }
        if args.rerun:
            cluster = args.cluster or os.environ.get("TINYCNN_CLUSTER")
            python, requirements = course_of(args, cluster)
            with tqdm(total=args.rerun, desc=f"{path.name}: runs", unit="run", file=sys.stderr, disable=None) as bar:
                how, runs = rerun(
                    sub,
                    args.rerun,
                    args.recipe,
                    args.rerun_seconds,
                    bar,
                    cluster,
                    python,
                    requirements,
                )
            graded.rules.append(rerun_rule(how, runs, rubric.target))
            graded.figures["seeds_holding"] = f"{sum(r.holds(rubric.target) for r in runs)}/{len(runs)}"
        return graded


def course_of(args: argparse.Namespace, cluster: str | None) -> tuple[str | None, str | None]:
    """(interpreter, requirements) a notebook re-run uses: the one named, or the course environment,
    built here before the first seed (on a cluster: by each worker from the same list)."""
    if args.recipe and (args.python or args.requirements):
        raise ConfigError("--python and --requirements are for a notebook re-run; --recipe trains with tinycnn's engine")
    if args.recipe:
        return None, None  # tinycnn's own engine trains the class
    if args.python and args.requirements:
        raise ConfigError("--python and --requirements: name an interpreter, or a list to build one from, not both")
    if args.python:
        return str(checked_python(args.python)), None
    text = requirements_text(Path(args.requirements) if args.requirements else None)
    return (None, text) if cluster else (str(built_python(text)), None)


def course_env(args: argparse.Namespace) -> int:
    """`tinycnn course-env`: build (once) the course environment a notebook re-run uses; print its Python."""
    print(course_python(Path(args.requirements) if args.requirements else None))
    return 0


def checklist_lines(path: Path, rubric: Rubric, graded: Graded) -> list[str]:
    rules = graded.rules
    failed = sum(not rule.passed for rule in rules)
    return (
        [f"tinycnn check {path}: {rubric.describe()}"]
        + [f"{'PASS' if rule.passed else 'FAIL'}  {rule.name:<10}  {rule.evidence}" for rule in rules]
        + [f"NOTE  {note}" for note in graded.notes]
        + ["all rules pass" if not failed else f"{failed} of {len(rules)} rules fail"]
    )


def gradescope(graded: Graded, rubric: Rubric) -> dict:
    """Gradescope's autograder results.json: a test per rule worth the rubric's points, the notes as
    a test of no points, and a leaderboard of the key figures."""
    figures = graded.figures
    tests = [
        {
            "name": rule.name,
            "score": rubric.point(rule.name) if rule.passed else 0,
            "max_score": rubric.point(rule.name),
            "status": "passed" if rule.passed else "failed",
            "output": rule.evidence,
            "visibility": "visible",
        }
        for rule in graded.rules
    ]
    if graded.notes:
        tests.append({"name": "notes", "score": 0, "max_score": 0, "output": "\n".join(graded.notes),
                      "visibility": "visible"})
    board = [
        {"name": "parameters", "value": figures.get("params") or 0, "order": "asc"},
        {"name": "last 3 epochs (min %)", "value": min(figures.get("last_3") or [0])},
    ]
    if "seeds_holding" in figures:
        board.append({"name": "seeds holding", "value": figures["seeds_holding"]})
    return {"score": sum(t["score"] for t in tests), "tests": tests, "leaderboard": board}


def class_table(rows: list[dict]) -> tuple[str, str]:
    """The class as Markdown and CSV, a row per submission."""
    header = ["submission", "verdict", "rules passed", "final model", "parameters", "last 3 epochs", "seeds holding",
              "failing rules", "similar to"]
    body = [
        [
            r["submission"],
            r["verdict"],
            r["passed"],
            r.get("final_model") or "",
            r.get("params") or "",
            " / ".join(f"{a:.2f}" for a in r.get("last_3", [])),
            r.get("seeds_holding", ""),
            r["failing"],
            "; ".join(r.get("similar", [])),
        ]
        for r in rows
    ]
    markdown = (
        "\n".join(
            ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            + ["| " + " | ".join(str(c).replace("|", "/") for c in row) + " |" for row in body]
        )
        + "\n"
    )
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows([header, *body])
    return markdown, text.getvalue()


def rubric_of(args: argparse.Namespace) -> Rubric:
    return load_rubric(args.rubric, steps=args.steps, budget=args.budget, epochs=args.max_epochs, target=args.target)


def check(args: argparse.Namespace) -> int:
    if (args.python or args.requirements or args.recipe) and not args.rerun:
        raise ConfigError("--recipe, --python and --requirements go with --rerun K")
    rubric = rubric_of(args)
    paths = [Path(p) for p in args.project or ["."]]
    if len(paths) == 1 and not args.table:
        graded = graded_path(paths[0], rubric, args)
        passed = all(rule.passed for rule in graded.rules)
        if args.gradescope:
            write_json(Path(args.gradescope), gradescope(graded, rubric))
        if args.json:
            print(
                json.dumps(
                    {
                        "project": str(paths[0].resolve()),
                        "rubric": asdict(rubric),
                        "passed": passed,
                        "figures": graded.figures,
                        "rules": [asdict(rule) for rule in graded.rules],
                        "notes": graded.notes,
                    },
                    indent=1,
                )
            )
        else:
            print("\n".join(checklist_lines(paths[0], rubric, graded)))
        return 0 if passed else 1
    rows, prints = [], {}
    for path in tqdm(paths, desc="submissions", unit="submission", file=sys.stderr, disable=None):
        try:
            graded = graded_path(path, rubric, args)
        except (ConfigError, DataError) as e:  # one broken submission: its row says why
            rows.append({"submission": path.name, "verdict": "ERROR", "passed": "-", "failing": str(e)})
            continue
        failing = [rule.name for rule in graded.rules if not rule.passed]
        prints[path.name] = graded.prints
        rows.append(
            {
                "submission": path.name,
                "verdict": "FAIL" if failing else "PASS",
                "passed": f"{len(graded.rules) - len(failing)}/{len(graded.rules)}",
                "failing": ", ".join(failing),
                **graded.figures,
            }
        )
    flags = similar(prints)
    for row in rows:
        row["similar"] = flags.get(row["submission"], [])
    markdown, table = class_table(rows)
    if args.table:
        written = [write_text(Path(f"{args.table}.md"), markdown), write_text(Path(f"{args.table}.csv"), table)]
        print(f"wrote {written[0]} and {written[1]}")
    print(markdown, end="")
    return 0 if all(r["verdict"] == "PASS" for r in rows) else 1
