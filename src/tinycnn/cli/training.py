"""`tinycnn train` and `tinycnn run`: one training run, and an experiment over seeds.

Each function takes the parsed arguments, calls the library, prints what a user should see and
returns the exit status; errors propagate to main.py, which turns them into one line.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime
from pathlib import Path

from tinycnn.cli.progress import RunProgress, TrainProgress, scored_line
from tinycnn.errors import EXIT_DIVERGED, EXIT_INTERRUPTED, ConfigError, Diverged
from tinycnn.evidence import records
from tinycnn.evidence.experiment import check_budget, default_folder, load_experiment, run_config, run_experiment
from tinycnn.evidence.parallel import default_workers
from tinycnn.evidence.runner import prepare_folder, train_run
from tinycnn.models.spec import ModelSpec
from tinycnn.models.user_file import absolute
from tinycnn.report import write_experiment_report
from tinycnn.ship.weights import ship
from tinycnn.train.config import TrainConfig, option_name
from tinycnn.train.data import find_mnist, load_mnist
from tinycnn.train.engine import check_processes
from tinycnn.train.recipes import recipe


# ---------------------------------------------------------------------------- train
def train(args: argparse.Namespace) -> int:
    resume = None
    if args.resume:
        if args.settings or args.recipe:
            given = [option_name(k) for k in args.settings] + (["--recipe"] if args.recipe else [])
            raise ConfigError(f"--resume continues a run with its own settings: drop {', '.join(given)}")
        folder = Path(args.resume)
        status = records.run_status(folder)
        if status == "complete":
            print(f"{folder}: this run is complete; nothing to resume")
            return 0
        if status == "diverged":
            raise ConfigError(f"{folder}: this run diverged; start a new one with a lower --lr")
        resume = records.load_checkpoint(folder)
        cfg = TrainConfig.from_dict(resume["config"])
    else:
        cfg = TrainConfig.from_dict({**(recipe(args.recipe).to_dict() if args.recipe else {}), **args.settings})
        spec = ModelSpec.of(cfg).resolved(Path.cwd())  # FILE.py:NAME means this file from any folder
        cfg = cfg.replace(model=spec.model)
        spec.build()  # before the run folder exists: a refused model or device leaves nothing behind
        check_processes(cfg)  # resolves the device too
        folder = Path(args.out or f"runs/{spec.slug}-seed{cfg.seed}-{datetime.now():%Y%m%d-%H%M%S}")
        prepare_folder(folder, force=args.force)
    source = find_mnist(args.data_dir)
    data = load_mnist(source=source)
    evaluated_on = "validation" if cfg.holdout else "test"
    print(f"data: {source}" + (f"; resuming {folder} after epoch {resume['epoch']}" if resume else ""), flush=True)
    progress = TrainProgress(cfg.epochs, evaluated_on, args.quiet)
    try:
        record = train_run(cfg, folder, data, str(source), progress, resume)
    except KeyboardInterrupt:
        progress.close()
        saved = (folder / records.CHECKPOINT).exists()
        print("tinycnn: interrupted; " + (f"resume with: tinycnn train --resume {folder}" if saved
                                          else "no epoch had finished, so there is nothing to resume"),
              file=sys.stderr)
        return EXIT_INTERRUPTED
    except Diverged as d:
        progress.close()
        print(f"tinycnn: error: {d}; the history so far is in {folder / records.METRICS}", file=sys.stderr)
        return EXIT_DIVERGED
    finally:
        progress.close()
    print(f"done in {record['wall_seconds']:.0f}s; {scored_line(record['history'], evaluated_on)}; "
          f"run folder: {folder}")
    return 0


# ---------------------------------------------------------------------------- run (experiments)
def run(args: argparse.Namespace) -> int:
    exp = load_experiment(args.experiment)
    given = {**args.settings, **({"model": absolute(args.settings["model"], Path.cwd())} if "model" in args.settings else {})}
    cfg = run_config(exp, given, args.validate)  # a FILE.py:NAME given here is relative to this folder
    check_budget(exp, cfg)
    seeds = args.seeds or exp.seeds
    report_folder = None if args.out else default_folder(exp, cfg, args.validate)
    folder = Path(args.out) if args.out else report_folder
    workers = args.workers or max(1, default_workers(len(seeds)) // cfg.processes)  # a seed of N processes takes N cores
    cluster = args.cluster or os.environ.get("TINYCNN_CLUSTER")
    where = f"on the Dask cluster at {cluster}" if cluster else f"{workers} workers"
    progress = RunProgress(f"{ModelSpec.of(cfg).label} x {len(seeds)} seeds, {where}", "validation" if cfg.holdout else "test")
    print(f"data: {find_mnist(args.data_dir)}; results in {folder}" + (f"; seeds {where}" if cluster else ""), flush=True)
    start = time.perf_counter()
    try:
        found = run_experiment(exp, cfg, seeds, folder, workers, args.data_dir, args.force, progress, cluster,
                               args.allow_mixed_kernels)
    except KeyboardInterrupt:
        progress.close()
        print("interrupted; run the same command again to resume (finished seeds are kept)", file=sys.stderr)
        return EXIT_INTERRUPTED
    progress.close()
    for seed, record in found.items():
        print(f"seed {seed}: " + ("DIVERGED" if record["status"] == "diverged"
                                  else scored_line(record["history"], record["evaluated_on"])))
    if report_folder is not None and not args.validate:
        if records.read_seeds(folder, exp.seeds) is None:
            print(f"report: waits for the other seeds of {exp.path} ({', '.join(map(str, exp.seeds))})")
        else:
            first = records.seed_run_folder(folder, exp.seeds[0])
            if (first / records.WEIGHTS).exists():  # the shipped model: the first seed, in weights/ beside reports/
                print(f"weights: {ship(exp.name, first, folder.parent.parent)}")
            try:
                print(f"report: {write_experiment_report(exp, report_folder.parent, data_dir=args.data_dir)}")
            except ConfigError as e:  # e.g. its text quotes an experiment whose seeds are still running
                print(f"report not written yet ({e}); `tinycnn report` writes it once it can")
    trained = f"trained seeds {', '.join(map(str, progress.trained))}" if progress.trained else \
        "nothing to train: every seed was complete"
    print(f"wall time {time.perf_counter() - start:.0f}s; {trained}")
    diverged = [seed for seed, record in found.items() if record["status"] == "diverged"]
    if diverged:
        print(f"tinycnn: seeds {', '.join(map(str, diverged))} diverged (recorded as such)", file=sys.stderr)
        return EXIT_DIVERGED
    return 0
