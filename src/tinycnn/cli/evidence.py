"""`tinycnn report`, `bench`, `sweep` and `init`: pages, timings, searches and projects.

Each function takes the parsed arguments, calls the library, prints what a user should see and
returns the exit status; errors propagate to main.py, which turns them into one line.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from tinycnn.errors import ConfigError
from tinycnn.evidence.bench import run_bench
from tinycnn.evidence.parallel import default_workers
from tinycnn.evidence.project import init_project
from tinycnn.evidence.sweep import load_sweep, run_sweep, study_summary
from tinycnn.files import write_json
from tinycnn.report import write_all
from tinycnn.report.sweep_page import write_sweep_page


# ---------------------------------------------------------------------------- report, bench, sweep
def report(args: argparse.Namespace) -> int:
    project = Path(args.project)
    if not project.is_dir():
        raise ConfigError(f"{project}: no such project folder")
    for path in write_all(Path(args.experiments or project / "experiments"), Path(args.reports or project / "reports"),
                          Path(args.readme or project / "README.md"), data_dir=args.data_dir):
        print(f"wrote {path}")
    return 0


def init(args: argparse.Namespace) -> int:
    folder = init_project(Path(args.folder))
    print(f"created {folder}: model.py, experiments/step1..3.toml, README.md, .gitignore\n"
          f"next: cd {folder} && tinycnn run experiments/step1.toml")
    return 0


def bench(args: argparse.Namespace) -> int:
    out = Path(args.out)
    result = run_bench(data_dir=args.data_dir, steps=args.steps, repeats=args.repeats, full=args.full,
                       five_seeds=args.five_seeds)
    write_json(out / "bench.json", result)
    print(f"wrote {out / 'bench.json'}; `tinycnn report` renders it")
    return 0


def sweep(args: argparse.Namespace) -> int:
    sweep = load_sweep(args.sweep)  # validate the file before anything starts
    if args.trials:
        run_sweep(args.sweep, args.trials, workers=args.workers or default_workers(), data_dir=args.data_dir)
    if args.report or not args.trials:
        print(f"wrote {write_sweep_page(study_summary(sweep), Path(args.out))}")
    return 0

