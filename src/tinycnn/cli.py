"""The `tinycnn` command: it parses arguments and calls the library, nothing more.

Bad input (unknown model, bad setting, missing or corrupt data) ends with one clear line on
stderr and a non-zero exit status, never a traceback.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
import typing
from datetime import datetime
from pathlib import Path

from .config import ConfigError, TrainConfig, load_experiment
from .data import DataError
from .model import MODELS, UnknownModelError

EXIT_USAGE = 2  # bad arguments, settings or model names (argparse's own convention)
EXIT_DATA = 1


# ---------------------------------------------------------------------------- train
def add_config_options(parser: argparse.ArgumentParser, with_defaults: bool) -> None:
    """One --option per TrainConfig field; help shows the default."""
    hints = typing.get_type_hints(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        default = f.default if with_defaults else None
        shown = f"default: {f.default}" if with_defaults else "overrides the file"
        if hints[f.name] is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=shown)
        else:
            parser.add_argument(flag, type=hints[f.name], default=default, metavar=f.name.upper(), help=shown)


def config_from_args(args: argparse.Namespace, base: TrainConfig | None = None) -> TrainConfig:
    changes = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
               if getattr(args, f.name, None) is not None}
    base = base or TrainConfig()
    if changes.get("model", base.model) not in MODELS:
        raise UnknownModelError(changes["model"])
    return TrainConfig.from_dict({**base.to_dict(), **changes})


def cmd_train(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .data import load_mnist
    from .engine import fit
    from .experiment import epoch_line
    from .runs import metrics_record, save_run

    cfg = config_from_args(args)
    start = time.perf_counter()
    data = load_mnist(args.data_dir)
    folder = Path(args.out) if args.out else Path("runs") / f"{cfg.model}-seed{cfg.seed}-{datetime.now():%Y%m%d-%H%M%S}"
    bar = None

    def on_epoch_start(epoch: int, steps: int) -> None:
        nonlocal bar
        bar = tqdm(total=steps, desc=f"epoch {epoch}/{cfg.epochs}", unit="step", leave=False,
                   dynamic_ncols=True, disable=args.quiet)

    def on_step(step: int, loss: float, acc: float) -> None:
        bar.set_postfix(loss=f"{loss:.4f}", acc=f"{acc:.2f}%", refresh=False)
        bar.update(step - bar.n)

    def on_epoch(record: dict) -> None:
        bar.close()
        print(epoch_line(record), flush=True)

    from .engine import model_for
    from .model import count_parameters
    train_images = cfg.train_subset or len(data.train_labels) - cfg.holdout
    print(f"{cfg.model}: {count_parameters(model_for(cfg)):,} parameters; {train_images:,} training images; "
          f"evaluating on the {'validation' if cfg.holdout else 'test'} set", flush=True)
    result = fit(cfg, data, on_step=on_step, on_epoch=on_epoch, on_epoch_start=on_epoch_start)
    record = metrics_record(cfg, result, time.perf_counter() - start)
    save_run(folder, cfg, result, record)
    last = [r["test_acc"] for r in result.history[-3:]]
    print(f"done in {record['wall_seconds']:.0f}s; last {len(last)} test accuracies: "
          + ", ".join(f"{a:.2f}%" for a in last) + f"; run folder: {folder}")
    return 0


# ---------------------------------------------------------------------------- run (experiments)
def cmd_run(args: argparse.Namespace) -> int:
    from .experiment import default_workers, run_seeds
    from .runs import write_json

    exp = load_experiment(args.experiment)
    cfg = config_from_args(args, base=exp.train)
    seeds = args.seeds or exp.seeds
    if args.validate:
        cfg = cfg.replace(holdout=10_000)
    elif cfg != exp.train.replace(seed=cfg.seed) and not args.out:
        raise ConfigError(f"these settings differ from {exp.path}; the report folder holds only runs of the file "
                          f"as written: add --out FOLDER (or --validate for tuning runs)")
    out = Path(args.out) if args.out else (Path("reports") / ("validation" if args.validate else "") / exp.name)
    workers = args.workers or default_workers(len(seeds))
    start = time.perf_counter()
    records = run_seeds(cfg, seeds, out, data_dir=args.data_dir, workers=workers)
    wall = time.perf_counter() - start
    write_json(out / "experiment.json", {"experiment": exp.path, "seeds": seeds, "config": cfg.to_dict(),
                                         "wall_seconds": wall, "workers": workers})
    for seed, record in records.items():
        last = [r["test_acc"] for r in record["history"][-3:]]
        print(f"seed {seed}: last 3 " + ", ".join(f"{a:.2f}%" for a in last))
    if not args.validate and not args.out:
        from .report import write_experiment_report
        try:
            print(f"report: {write_experiment_report(exp, Path('reports'), data_dir=args.data_dir)}")
        except ConfigError as e:  # the runs are saved; only the page waits (e.g. for another step's metrics)
            print(f"report not written yet: {e}\nrun `tinycnn report` once it can be")
    print(f"wall time {wall:.0f}s for {len(seeds)} seeds")
    return 0


# ---------------------------------------------------------------------------- report
def cmd_report(args: argparse.Namespace) -> int:
    from .report import write_all

    for path in write_all(Path(args.experiments), Path(args.reports), Path(args.readme), data_dir=args.data_dir):
        print(f"wrote {path}")
    return 0


# ---------------------------------------------------------------------------- bench
def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import run_bench, write_bench

    out = Path(args.out)
    result = run_bench(out, data_dir=args.data_dir, steps=args.steps, repeats=args.repeats, full=args.full,
                       five_seeds=args.five_seeds)
    write_bench(result, out)
    print(f"wrote {out / 'bench.md'}")
    return 0


# ---------------------------------------------------------------------------- sweep
def cmd_sweep(args: argparse.Namespace) -> int:
    from .sweep import default_workers, load_sweep, run_sweep, sweep_report

    load_sweep(args.sweep)  # validate the file before anything starts
    if args.trials:
        run_sweep(args.sweep, args.trials, workers=args.workers or default_workers(), data_dir=args.data_dir)
    if args.report or not args.trials:
        print(f"wrote {sweep_report(args.sweep, Path(args.out))}")
    return 0


# ---------------------------------------------------------------------------- summary
def cmd_summary(args: argparse.Namespace) -> int:
    from .analysis import NotAChainError, receptive_field_facts, receptive_field_table
    from .model import build_model, count_parameters
    from .report import model_tables_markdown

    if not args.model:
        for name in MODELS:
            model = build_model(name)
            facts = receptive_field_facts(receptive_field_table(model))
            print(f"{name:10s} {count_parameters(model):7,d} params   final RF {facts.final_rf} px   "
                  f"{(MODELS[name].__doc__ or '').strip().splitlines()[0]}")  # the model's own line
        return 0
    model = build_model(args.model)
    try:
        text = model_tables_markdown(model) if args.markdown else model_tables_text(model)
    except NotAChainError as e:
        print(f"tinycnn: {e}", file=sys.stderr)
        return EXIT_USAGE
    if args.markdown:
        Path(args.markdown).write_text(f"# {args.model}\n\n{text}")
        print(f"wrote {args.markdown}")
    else:
        print(text)
    return 0


def model_tables_text(model) -> str:
    from .analysis import describe_rf, receptive_field_facts, receptive_field_table, rf_table_text, summary

    rows = receptive_field_table(model)
    return (f"{summary(model)}\n\nReceptive field\n{rf_table_text(rows)}\n\n"
            f"{describe_rf(receptive_field_facts(rows))}")


# ---------------------------------------------------------------------------- parser
def seed_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 0,1,2, not {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tinycnn", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train one model on MNIST and write a run folder",
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_config_options(train, with_defaults=True)
    train.add_argument("--data-dir", help="folder with MNIST IDX files or the cache (default: $TINYCNN_DATA or ~/.cache/tinycnn)")
    train.add_argument("--out", help="run folder (default: runs/<model>-seed<seed>-<time>)")
    train.add_argument("--quiet", action="store_true", help="no progress bar, only the epoch lines")
    train.set_defaults(func=cmd_train)

    run = sub.add_parser("run", help="train every seed of an experiment file and write its report")
    run.add_argument("experiment", help="experiments/stepN.toml")
    run.add_argument("--seeds", type=seed_list, help="comma-separated seeds (default: the file's, usually 0-4)")
    run.add_argument("--validate", action="store_true",
                     help="tune mode: train on the first 50,000 images and evaluate on the last 10,000 "
                          "(written under reports/validation/)")
    run.add_argument("--workers", type=int, help="parallel worker processes (default: one per core)")
    run.add_argument("--out", help="output folder (default: reports/<name>)")
    run.add_argument("--data-dir", help="MNIST folder (see train)")
    add_config_options(run, with_defaults=False)
    run.set_defaults(func=cmd_run)
    summary = sub.add_parser("summary", help="parameter and receptive-field tables of a model "
                                               "(no model: list the registered ones)")
    summary.add_argument("model", nargs="?", help="registered model name, e.g. Model_3")
    summary.add_argument("--markdown", metavar="FILE", help="write both tables as Markdown to FILE")
    summary.set_defaults(func=cmd_summary)
    report = sub.add_parser("report", help="regenerate every report and the README results table "
                                             "from the committed metrics (no training)")
    report.add_argument("--experiments", default="experiments", help="folder of experiment files")
    report.add_argument("--reports", default="reports", help="folder of committed metrics and reports")
    report.add_argument("--readme", default="README.md", help="README holding the results table")
    report.add_argument("--data-dir", help="MNIST folder (for the misclassified images)")
    report.set_defaults(func=cmd_report)
    bench = sub.add_parser("bench", help="training/evaluation throughput against a per-image reference "
                                           "pipeline, step breakdown and scaling")
    bench.add_argument("--out", default="reports/bench", help="folder for bench.json, bench.md, bench.png")
    bench.add_argument("--steps", type=int, default=150, help="training steps per measurement")
    bench.add_argument("--repeats", type=int, default=5, help="alternations of the pipeline comparison")
    bench.add_argument("--full", action="store_true", help="also time one 15-epoch tinycnn train end to end "
                                                           "(about 6 minutes on 2 cores)")
    bench.add_argument("--five-seeds", action="store_true", help="also time the five-seed step-3 run end to end "
                                                                 "(about 25 minutes on 2 cores)")
    bench.add_argument("--data-dir", help="MNIST folder (see train)")
    bench.set_defaults(func=cmd_bench)
    sweep = sub.add_parser("sweep", help="Optuna search of layouts and settings under a parameter budget "
                                           "(scored on the validation split)")
    sweep.add_argument("sweep", help="sweep file, e.g. experiments/frontier_sweep.toml")
    sweep.add_argument("--trials", type=int, help="run or resume until the study holds this many finished trials "
                       "(with several workers, trials already under way then still finish)")
    sweep.add_argument("--workers", type=int, help="parallel worker processes (default: one per core)")
    sweep.add_argument("--report", action="store_true", help="write the study report (also the default "
                                                             "when --trials is not given)")
    sweep.add_argument("--out", default="reports/sweeps", help="folder for the study report")
    sweep.add_argument("--data-dir", help="MNIST folder (see train)")
    sweep.set_defaults(func=cmd_sweep)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, UnknownModelError) as e:
        print(f"tinycnn: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except DataError as e:
        print(f"tinycnn: data error: {e}", file=sys.stderr)
        return EXIT_DATA
    except KeyboardInterrupt:
        print("tinycnn: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
