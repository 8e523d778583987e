"""What each `tinycnn` subcommand does, once cli.py has parsed its arguments.

Each function takes the parsed arguments, calls the library, prints what a user should see and
returns the exit status; errors propagate to cli.main, which turns them into one line.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

from . import demo as demo_page
from . import records
from .analysis import count_macs, model_tables_markdown, model_tables_text, receptive_field_facts, receptive_field_table
from .bench import run_bench
from .checklist import CheckOptions, check_project
from .config import TrainConfig, option_name
from .console import RunProgress, TrainProgress, scored_line
from .data import find_mnist, load_mnist
from .engine import resolve_device
from .errors import EXIT_DATA, EXIT_DIVERGED, EXIT_INTERRUPTED, ConfigError, DataError, Diverged
from .experiment import check_budget, default_folder, load_experiment, run_config, run_experiment
from .exporter import export as export_model
from .export_check import check_exports
from .files import write_json, write_text
from .inference import assess, probabilities
from .model import MODELS, build_model, count_parameters, model_for, model_from_spec
from .model_file import absolute, is_model_file, model_label
from .parallel import default_workers
from .plots import plot_confusion, plot_misclassified, save_seen_input
from .preprocess import preprocess_rgba, read_picture
from .project import init_project
from .report import write_all, write_experiment_report
from .report.sweep_page import write_sweep_page
from .runner import prepare_folder, train_run, writable_folder
from .sweep import load_sweep, run_sweep, study_summary
from .weights import Weights, load_model, ship, shipped_weights


# ---------------------------------------------------------------------------- train
def train(args: argparse.Namespace) -> int:
    resume = None
    if args.resume:
        if args.settings:
            raise ConfigError(f"--resume continues a run with its own settings: drop "
                              f"{', '.join(option_name(k) for k in args.settings)}")
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
        cfg = TrainConfig.from_dict(args.settings)
        cfg = cfg.replace(model=absolute(cfg.model, Path.cwd()))  # FILE.py:NAME means this file from any folder
        model_for(cfg)  # before the run folder exists: a refused model or device leaves nothing behind
        resolve_device(cfg.device)
        name = model_label(cfg.model).split(":")[-1]
        folder = Path(args.out or f"runs/{name}-seed{cfg.seed}-{datetime.now():%Y%m%d-%H%M%S}")
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
    workers = args.workers or default_workers(len(seeds))
    progress = RunProgress(f"{model_label(cfg.model)} x {len(seeds)} seeds, {workers} workers", "validation" if cfg.holdout else "test")
    print(f"data: {find_mnist(args.data_dir)}; results in {folder}", flush=True)
    start = time.perf_counter()
    try:
        found = run_experiment(exp, cfg, seeds, folder, workers, args.data_dir, args.force, progress)
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
            if (first / records.WEIGHTS).exists():  # the shipped model: the first seed, in models/ beside reports/
                print(f"weights: {ship(exp.name, first, folder.parent.parent / 'models')}")
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


# ---------------------------------------------------------------------------- summary
def summary(args: argparse.Namespace) -> int:
    if not args.model:
        for name, info in MODELS.items():
            model = build_model(name)
            facts = receptive_field_facts(receptive_field_table(model))
            print(f"{name:10s} {count_parameters(model):7,d} params {count_macs(model):10,d} MACs   "
                  f"final RF {facts.final_rf} px   {info.summary}")
        return 0
    model = model_from_spec(args.model)
    if args.markdown:
        page = f"# {args.model}\n\n{model_tables_markdown(model)}"
        print(f"wrote {write_text(args.markdown, page)}")
    else:
        print(model_tables_text(model))
    return 0


# ---------------------------------------------------------------------------- using a trained model
def evaluate(args: argparse.Namespace) -> int:
    weights = load_model(args.model, args.model_file)
    data = load_mnist(source=find_mnist(args.data_dir))
    result = assess(weights, data)
    given = Path(args.model)  # a model name, a run folder or a weights file: its last part names the output
    out = Path(args.out or f"runs/evaluate-{given.name if given.is_dir() else given.stem}")
    plot_confusion(result.confusion, out / "confusion.png", f"{weights.name}: test accuracy {result.accuracy:.2f}%")
    plot_misclassified(data.test_images, result.misclassified, out / "misclassified.png",
                       f"{weights.name}: {len(result.misclassified)} misclassified test images (true -> predicted; first 40)")
    if args.json:
        print(json.dumps({"model": weights.name, "weights": str(weights.path), **result.as_dict()}))
        return 0
    print(f"{weights.name} ({weights.path}): test accuracy {result.accuracy:.2f}%, loss {result.loss:.4f}, "
          f"{len(result.misclassified)} of {len(data.test_labels):,} misclassified")
    print("per class: " + "  ".join(f"{d}: {a:.2f}%" for d, a in enumerate(result.per_class)))
    print(f"wrote {out / 'confusion.png'} and {out / 'misclassified.png'}")
    return 0


def predict(args: argparse.Namespace) -> int:
    weights = load_model(args.model, args.model_file)
    results, failed = [], 0
    for path in args.images:
        try:
            picture = read_picture(path)       # DataError names the file
            seen = preprocess_rgba(picture)    # ValueError: no digit in it
        except DataError as e:
            print(f"tinycnn: {e}", file=sys.stderr)
            failed += 1
            continue
        except ValueError as e:
            print(f"tinycnn: {path}: {e}", file=sys.stderr)
            failed += 1
            continue
        p = probabilities(weights, seen[None])[0]
        results.append({"file": str(path), "prediction": int(p.argmax()), "probabilities": [float(v) for v in p]})
        if args.show:
            save_seen_input(picture, seen, Path(args.show) / f"{Path(path).stem}.seen.png")
        if not args.json:
            top = p.argsort()[::-1][:3]
            print(f"{path}: {int(p.argmax())}   (" + ", ".join(f"{d}: {100 * p[d]:.1f}%" for d in top) + ")")
    if args.json:
        print(json.dumps(results))
    return EXIT_DATA if failed else 0


def export(args: argparse.Namespace) -> int:
    weights = load_model(args.model, args.model_file)
    out = Path(args.out)
    created = not out.exists()
    writable_folder(out)
    try:
        exported = export_model(weights, args.format, out, load_mnist(source=find_mnist(args.data_dir)), args.weights)
    except BaseException:
        if created:  # nothing half-written: a refused or failed export leaves no folder behind
            shutil.rmtree(out, ignore_errors=True)
        raise
    for path in exported.files.values():
        print(f"wrote {path} ({path.stat().st_size:,} bytes)")
    if agreed := exported.agreement:
        print(f"test accuracy of the exported model: {agreed.test_accuracy:.2f}% (PyTorch: "
              f"{agreed.pytorch_test_accuracy:.2f}%; {agreed.predictions_equal_to_pytorch:,} of 10,000 "
              f"predictions equal; largest logit difference {agreed.largest_logit_difference:.2g})")
    else:
        print(f"not checked: {exported.c['checked']}")
    print(f"wrote {out / 'model.json'}")
    return 0


def export_check(args: argparse.Namespace) -> int:
    out = Path(args.out)
    writable_folder(out)
    only = [name for name in args.only.split(",") if name] if args.only else None
    last = out / "exports.json"
    try:
        previous = json.loads(last.read_text()) if only and last.is_file() else None
    except ValueError as e:
        raise ConfigError(f"{last} is not readable JSON ({e}): run without --only") from None
    result = check_exports(load_mnist(source=find_mnist(args.data_dir)), Path(args.reports), shipped_weights("Model_3"),
                           only, previous)
    print(f"wrote {write_json(out / 'exports.json', result)}; `tinycnn report` renders it")
    return 0


def demo(args: argparse.Namespace) -> int:
    own = own_models(args.weights, args.own_models)
    if args.static:
        print(f"wrote {demo_page.build(Path(args.static), own=own)}: serve it with any static web server")
        return 0
    folder = demo_page.build(Path("build/demo"), own=own)
    try:
        demo_page.serve(folder, args.port, announce=lambda line: print(line, flush=True))
    except OSError as e:
        raise ConfigError(f"cannot serve on 127.0.0.1:{args.port}: {e.strerror or e}") from None
    except KeyboardInterrupt:
        print("tinycnn demo: stopped")
    return 0


def own_models(runs: list[str], specs: list[str]) -> list[Weights]:
    """`demo --weights RUN [--model FILE.py:NAME]`: each run's weights, its model rebuilt from the
    file the weights record, or from the --model given in the same place (a file that moved)."""
    if specs and len(specs) != len(runs):
        raise ConfigError(f"--model goes with --weights, one each: got {len(specs)} --model for {len(runs)} --weights")
    loaded = []
    for run, spec in zip(runs, specs or [None] * len(runs)):
        if spec is not None and not is_model_file(spec):
            raise ConfigError(f"--model {spec}: give the model file as FILE.py:NAME")
        weights = load_model(run, spec.rsplit(":", 1)[0] if spec else None)
        if spec is not None and model_label(spec).split(":")[1] != weights.name.split(":")[-1]:
            raise ConfigError(f"--model {spec}: the weights in {run} are of {weights.name}")
        loaded.append(weights)
    return loaded


def check(args: argparse.Namespace) -> int:
    options = CheckOptions(args.steps, args.budget, args.max_epochs, args.target)
    rules = check_project(Path(args.project), options)
    passed = all(rule.passed for rule in rules)
    if args.json:
        print(json.dumps({"project": str(Path(args.project).resolve()), "options": asdict(options), "passed": passed,
                          "rules": [asdict(rule) for rule in rules]}, indent=1))
    else:
        print(f"tinycnn check {args.project}: {options.steps} steps, fewer than {options.budget:,} parameters, at most "
              f"{options.epochs} epochs, {options.target:.2f}% on each of the last 3 epochs")
        for rule in rules:
            print(f"{'PASS' if rule.passed else 'FAIL'}  {rule.name:<10}  {rule.evidence}")
        failed = sum(not rule.passed for rule in rules)
        print("all rules pass" if passed else f"{failed} of {len(rules)} rules fail")
    return 0 if passed else 1
