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
from dataclasses import asdict
from pathlib import Path

from tqdm import tqdm

from tinycnn.errors import ConfigError, DataError
from tinycnn.evidence.checklist import CheckOptions, Rule, check_project
from tinycnn.evidence.grading.rerun import rerun, rerun_rule
from tinycnn.evidence.grading.rules import grade
from tinycnn.evidence.grading.submission import read_submission, unpacked
from tinycnn.files import write_json, write_text


def rules_of(path: Path, options: CheckOptions, args: argparse.Namespace) -> tuple[list[Rule], dict]:
    """The rules for one path (a project, a submission folder or a .zip), and its key figures."""
    if path.is_dir() and (path / "experiments").is_dir():
        if args.rerun:
            raise ConfigError(f"{path}: --rerun is for submissions; a tinycnn project's seeds are its experiments' own")
        return check_project(path, options), {"kind": "tinycnn project"}
    if not path.exists():
        raise ConfigError(f"{path}: no such folder or file")
    with tempfile.TemporaryDirectory(prefix="tinycnn-unzip-") as tmp:
        sub = read_submission(unpacked(path, Path(tmp)), args.log_pattern)
        last = sub.steps[-1]
        log = last.notebook.log if last.notebook else None
        rules = grade(sub, options)
        figures = {
            "kind": "submission",
            "final_model": last.model,
            "params": last.measured.get("params"),
            "last_3": log.test[-3:] if log else [],
            "epochs": log.epochs if log else 0,
        }
        if args.rerun:
            with tqdm(total=args.rerun, desc=f"{path.name}: runs", unit="run", file=sys.stderr, disable=None) as bar:
                how, runs = rerun(
                    sub,
                    args.rerun,
                    Path(args.recipe) if args.recipe else None,
                    args.rerun_seconds,
                    bar,
                    args.cluster or os.environ.get("TINYCNN_CLUSTER"),
                )
            rules.append(rerun_rule(how, runs, options.target))
            figures["seeds_holding"] = f"{sum(r.holds(options.target) for r in runs)}/{len(runs)}"
        return rules, figures


def checklist_lines(path: Path, options: CheckOptions, rules: list[Rule]) -> list[str]:
    passed = all(rule.passed for rule in rules)
    failed = sum(not rule.passed for rule in rules)
    return (
        [
            f"tinycnn check {path}: {options.steps} steps, fewer than {options.budget:,} parameters, at most "
            f"{options.epochs} epochs, {options.target:.2f}% on each of the last 3 epochs"
        ]
        + [f"{'PASS' if rule.passed else 'FAIL'}  {rule.name:<10}  {rule.evidence}" for rule in rules]
        + ["all rules pass" if passed else f"{failed} of {len(rules)} rules fail"]
    )


def gradescope(rules: list[Rule], figures: dict) -> dict:
    """Gradescope's autograder results.json: a test per rule, and a leaderboard of the key figures."""
    tests = [
        {
            "name": rule.name,
            "score": int(rule.passed),
            "max_score": 1,
            "status": "passed" if rule.passed else "failed",
            "output": rule.evidence,
            "visibility": "visible",
        }
        for rule in rules
    ]
    board = [
        {"name": "parameters", "value": figures.get("params") or 0, "order": "asc"},
        {"name": "last 3 epochs (min %)", "value": min(figures.get("last_3") or [0])},
    ]
    if "seeds_holding" in figures:
        board.append({"name": "seeds holding", "value": figures["seeds_holding"]})
    return {"score": sum(t["score"] for t in tests), "tests": tests, "leaderboard": board}


def class_table(rows: list[dict]) -> tuple[str, str]:
    """The class as Markdown and CSV, a row per submission."""
    header = [
        "submission",
        "verdict",
        "rules passed",
        "final model",
        "parameters",
        "last 3 epochs",
        "seeds holding",
        "failing rules",
    ]
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


def check(args: argparse.Namespace) -> int:
    options = CheckOptions(args.steps, args.budget, args.max_epochs, args.target)
    paths = [Path(p) for p in args.project or ["."]]
    if len(paths) == 1 and not args.table:
        rules, figures = rules_of(paths[0], options, args)
        passed = all(rule.passed for rule in rules)
        if args.gradescope:
            write_json(Path(args.gradescope), gradescope(rules, figures))
        if args.json:
            print(
                json.dumps(
                    {
                        "project": str(paths[0].resolve()),
                        "options": asdict(options),
                        "passed": passed,
                        "figures": figures,
                        "rules": [asdict(rule) for rule in rules],
                    },
                    indent=1,
                )
            )
        else:
            print("\n".join(checklist_lines(paths[0], options, rules)))
        return 0 if passed else 1
    rows = []
    for path in tqdm(paths, desc="submissions", unit="submission", file=sys.stderr, disable=None):
        try:
            rules, figures = rules_of(path, options, args)
        except (ConfigError, DataError) as e:  # one broken submission: its row says why
            rows.append({"submission": path.name, "verdict": "ERROR", "passed": "-", "failing": str(e)})
            continue
        failing = [rule.name for rule in rules if not rule.passed]
        rows.append(
            {
                "submission": path.name,
                "verdict": "FAIL" if failing else "PASS",
                "passed": f"{len(rules) - len(failing)}/{len(rules)}",
                "failing": ", ".join(failing),
                **figures,
            }
        )
    markdown, table = class_table(rows)
    if args.table:
        written = [write_text(Path(f"{args.table}.md"), markdown), write_text(Path(f"{args.table}.csv"), table)]
        print(f"wrote {written[0]} and {written[1]}")
    print(markdown, end="")
    return 0 if all(r["verdict"] == "PASS" for r in rows) else 1
