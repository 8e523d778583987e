"""The `tinycnn` command line: the parser, and the one place errors become exit statuses.

Bad input ends with one line on stderr and a non-zero exit status, never a traceback (errors.py):
2 for bad arguments, settings or files, 1 for bad data, 3 for a diverged run, 130 when interrupted.
The subcommands live in one module per family (COMMANDS), imported only once the arguments have
parsed: they pull in torch, matplotlib, Optuna and ONNX, and `tinycnn --help` or a mistyped option
should answer at once (start-up times in docs/design.md).
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import os
import sys
import typing

from tinycnn.errors import (
    EXIT_DATA,
    EXIT_DIVERGED,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    ConfigError,
    DataError,
    Diverged,
    UnknownModelError,
)
from tinycnn.train.config import TrainConfig, option_name

# Which module of this package holds each subcommand (a function named as the command, - as _).
COMMANDS = {"train": "training", "run": "training", "summary": "models", "evaluate": "models", "predict": "models",
            "export": "shipping", "export-check": "shipping", "demo": "shipping", "report": "evidence",
            "bench": "evidence", "sweep": "evidence", "init": "evidence", "check": "grading",
            "course-env": "grading"}


def add_config_options(parser: argparse.ArgumentParser, defaults_shown: bool) -> None:
    """One --option per TrainConfig field (None when not given, so a given option is known)."""
    hints = typing.get_type_hints(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        shown = f"default: {f.default}" if defaults_shown else "overrides the file"
        if hints[f.name] is bool:
            parser.add_argument(option_name(f.name), action=argparse.BooleanOptionalAction, help=shown)
        else:
            parser.add_argument(option_name(f.name), type=hints[f.name], metavar=f.name.upper(), help=shown)


# ---------------------------------------------------------------------------- parser
class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (`tinycnn: error: ...`), exit status 2."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"tinycnn: error: {message}\n")


def seed_list(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 0,1,2, not {text!r}") from None
    if any(seed < 0 for seed in seeds):
        raise argparse.ArgumentTypeError(f"seeds must be 0 or more, not {text!r}")
    return seeds


def int_between(low: int, high: int):
    """An argparse type: a whole number from `low` to `high`."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected a number from {low} to {high}, not {text}")
        return value
    return parse


positive_int = int_between(1, 100_000)  # workers, trials, steps, repeats


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="tinycnn", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    train = sub.add_parser("train", help="train one model on MNIST and write a run folder")
    add_config_options(train, defaults_shown=True)
    train.add_argument("--data-dir", help="folder with the MNIST IDX files (default: $TINYCNN_DATA, else the "
                                          "bundled copy)")
    train.add_argument("--out", help="run folder (default: runs/<model>-seed<seed>-<time>)")
    train.add_argument("--force", action="store_true", help="replace a run already in --out")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue a stopped run from its last finished epoch, "
                                                            "with its own settings")
    train.add_argument("--quiet", action="store_true", help="no progress bar, only the epoch lines")
    train.add_argument("--recipe", metavar="NAME", help="start from a named recipe's settings, its model included "
                       "(step3: the defaults; step3_wide: step 3 as first reported; fast: the time-to-target record, "
                       "step 3's recipe under Model_9); options given "
                       "override it")

    run = sub.add_parser("run", help="train every seed of an experiment file and write its report")
    run.add_argument("experiment", help="experiments/stepN.toml")
    run.add_argument("--seeds", type=seed_list, help="comma-separated seeds (default: the file's)")
    run.add_argument("--validate", action="store_true",
                     help="tune mode: train on the first 50,000 images and evaluate on the last 10,000 "
                          "(written under reports/validation/<name>-<settings that differ>)")
    run.add_argument("--workers", type=positive_int, help="parallel worker processes (default: one per core)")
    run.add_argument("--out", help="output folder (default: reports/<name>)")
    run.add_argument("--force", action="store_true", help="retrain seeds already in the output folder")
    run.add_argument("--data-dir", help="MNIST folder (see train)")
    run.add_argument("--cluster", metavar="tcp://HOST:8786", help="train the seeds on this Dask scheduler's workers "
                     "(default: $TINYCNN_CLUSTER; none: this machine's processes)")
    run.add_argument("--allow-mixed-kernels", action="store_true", help="with --cluster: accept workers whose CPU "
                     "kernels differ from this machine's (same distribution, other digits)")
    add_config_options(run, defaults_shown=False)

    summary = sub.add_parser("summary", help="parameter, MAC and receptive-field tables of a model "
                                             "(no model: list the registered ones)")
    summary.add_argument("model", nargs="?", help="a registered model name, e.g. Model_3, or FILE.py:NAME: an "
                         "nn.Module class (or a function returning one) in your own file, which is imported, so its "
                         "code runs")
    summary.add_argument("--markdown", metavar="FILE", help="write the tables as Markdown to FILE")

    report = sub.add_parser("report", help="regenerate every report and the README's generated blocks "
                                           "from the committed metrics (no training)")
    report.add_argument("project", nargs="?", default=".", help="the project folder (default: this one); the "
                        "options below default to its experiments/, reports/ and README.md")
    report.add_argument("--experiments", help="folder of experiment files")
    report.add_argument("--reports", help="folder of committed metrics and reports")
    report.add_argument("--readme", help="README holding the generated blocks")
    report.add_argument("--data-dir", help="MNIST folder (for the misclassified images)")

    init = sub.add_parser("init", help="start a project of your own for the challenge: model.py with Model_1.."
                                       "Model_3, experiments/step1..3.toml, a README; refuses a non-empty folder")
    init.add_argument("folder", help="the new project's folder (created; it must be empty if it exists)")

    check = sub.add_parser("check", help="check a project, or submissions as handed in, against the challenge's "
                                         "rules: one line per rule with its evidence; exit 0 only when all pass")
    check.add_argument("project", nargs="*", help="a tinycnn project, a submission folder or .zip (README, "
                       "notebooks, model.py); several: one table for the class (default: this folder)")
    check.add_argument("--rubric", metavar="EDITION|FILE.toml", help="the assignment's edition: three-steps "
                       "(default: 3 steps, fewer than 8,000 parameters), four-steps (4, fewer than 10,000), five-steps "
                       "(at least 5, fewer than 10,000), or a rubric file")
    check.add_argument("--steps", type=positive_int, help="number of steps asked (over the rubric's; default 3)")
    check.add_argument("--budget", type=positive_int, help="parameters must be fewer than this (over the rubric's; "
                                                           "default 8000)")
    check.add_argument("--max-epochs", type=positive_int, help="epochs allowed (over the rubric's; default 15)")
    check.add_argument("--target", type=float, help="test accuracy (%%) each scored epoch must reach (over the "
                                                    "rubric's; default 99.4)")
    check.add_argument("--json", action="store_true", help="the checklist as JSON, for a grader")
    check.add_argument("--gradescope", metavar="FILE", help="also write Gradescope's autograder results.json")
    check.add_argument("--table", metavar="PREFIX", help="the class table as PREFIX.md and PREFIX.csv")
    check.add_argument("--log-pattern", metavar="REGEX", help="a log line's test accuracy, as a group named acc, "
                       "for a format the defaults miss")
    check.add_argument("--rerun", type=positive_int, metavar="K", help="re-run a submission's final step on seeds "
                       "0..K-1: its notebook as written, or with --recipe")
    check.add_argument("--recipe", metavar="NAME|FILE.toml", help="with --rerun: train the final model class with these "
                       "settings instead (one recipe for the class): a named recipe (step3, step3_wide, fast) or a TOML file")
    check.add_argument("--rerun-seconds", type=positive_int, default=1800, help="wall-clock limit of one run (default 1800)")
    check.add_argument("--python", metavar="PATH", help="with --rerun: the interpreter of the class's own environment "
                       "that runs the notebook (it needs nbclient and ipykernel)")
    check.add_argument("--requirements", metavar="FILE", help="with --rerun: build the course environment from this "
                       "list instead of the default course stack (torch, torchvision, torchsummary, ...), once")
    check.add_argument("--cluster", metavar="tcp://HOST:8786", help="with --rerun: run the seeds on this Dask "
                       "scheduler's workers, each in its sandbox there (default: $TINYCNN_CLUSTER)")

    course = sub.add_parser("course-env", help="build (once) the course environment a notebook re-run uses "
                            "(torchvision and friends; about 5.5 GB) and print its Python")
    course.add_argument("--requirements", metavar="FILE", help="the list to build from (default: the course stack)")

    bench = sub.add_parser("bench", help="training/evaluation throughput against a per-image reference "
                                         "pipeline, step breakdown and scaling")
    bench.add_argument("--out", default="reports/bench", help="folder for bench.json")
    bench.add_argument("--steps", type=positive_int, default=150, help="training steps per measurement")
    bench.add_argument("--repeats", type=positive_int, default=5, help="alternations of the pipeline comparison")
    bench.add_argument("--full", action="store_true", help="also time one whole tinycnn train of each named "
                       "recipe end to end, alone (step3, step3_wide, fast: about 10 minutes on 2 cores)")
    bench.add_argument("--five-seeds", action="store_true", help="also time the five-seed step-3 run end to end "
                                                                 "(about 25 minutes on 2 cores)")
    bench.add_argument("--data-dir", help="MNIST folder (see train)")

    sweep = sub.add_parser("sweep", help="Optuna search of layouts and settings under a parameter budget "
                                         "(scored on the validation split)")
    sweep.add_argument("sweep", help="sweep file, e.g. experiments/frontier_sweep.toml")
    sweep.add_argument("--trials", type=positive_int, help="run or resume until the study holds exactly this "
                       "many finished trials (all workers, on all machines, together)")
    sweep.add_argument("--workers", type=positive_int, help="parallel worker processes (default: one per core)")
    sweep.add_argument("--report", action="store_true", help="write the study report (also the default "
                                                             "when --trials is not given)")
    sweep.add_argument("--out", default="reports/sweeps", help="folder for the study report")
    sweep.add_argument("--data-dir", help="MNIST folder (see train)")

    evaluate = sub.add_parser("evaluate", help="test accuracy, per-class accuracy, confusion matrix and "
                                               "misclassified images of a trained model")
    evaluate.add_argument("model", help=MODEL_HELP)
    evaluate.add_argument("--model-file", metavar="FILE.py", help=MODEL_FILE_HELP)
    evaluate.add_argument("--json", action="store_true", help="print the numbers as JSON")
    evaluate.add_argument("--out", help="folder for confusion.png and misclassified.png (default: runs/evaluate-<model>)")
    evaluate.add_argument("--data-dir", help="MNIST folder (see train)")

    predict = sub.add_parser("predict", help="read digits from your own pictures (PNG, JPEG, ...)")
    predict.add_argument("model", help=MODEL_HELP)
    predict.add_argument("--model-file", metavar="FILE.py", help=MODEL_FILE_HELP)
    predict.add_argument("images", nargs="+", metavar="IMAGE", help="picture files, one digit each")
    predict.add_argument("--json", action="store_true",
                         help="print a JSON list of {file, prediction, probabilities}")
    predict.add_argument("--show", metavar="DIR", help="save the 28x28 input the model saw beside each picture")

    export = sub.add_parser("export", help="export a trained model to ONNX, int8 ONNX or dependency-free C")
    export.add_argument("model", help=MODEL_HELP)
    export.add_argument("--model-file", metavar="FILE.py", help=MODEL_FILE_HELP)
    export.add_argument("--format", required=True, choices=("onnx", "int8", "c"), help="what to write")
    export.add_argument("--weights", choices=("fp32", "int8"),
                        help="C only: fp32 (the default), or int8: integer-only C with a planned arena")
    export.add_argument("--target", choices=("cortex-m0", "cortex-m4"),
                        help="int8 C: also write firmware for an emulated board, build it with arm-none-eabi-gcc "
                             "and run it in qemu-system-arm (flash, RAM and instructions per digit)")
    export.add_argument("--ram-limit", type=int, metavar="BYTES",
                        help="int8 C: refuse a model whose arena needs more than BYTES")
    export.add_argument("--out", required=True, help="folder to write into")
    export.add_argument("--data-dir", help="MNIST folder (the export is checked on the test images)")

    check = sub.add_parser("export-check", help="export the step-3 seeds 0-4 and the other reported models to "
                                                "every format and measure accuracy, size and speed (minutes)")
    check.add_argument("--reports", default="reports", help="folder of the experiments' run folders")
    check.add_argument("--out", default="reports/export", help="folder for exports.json")
    check.add_argument("--data-dir", help="MNIST folder (see train)")
    check.add_argument("--only", metavar="EXPERIMENT[,...]",
                       help="measure these experiments' rows again, keeping the others from the last exports.json")

    demo = sub.add_parser("demo", help="a page where you draw a digit and watch the network read it "
                                       "(served on 127.0.0.1 only)")
    demo.add_argument("--port", type=int_between(0, 65535), default=8000, help="port on 127.0.0.1 (0: any free one)")
    demo.add_argument("--static", metavar="DIR", help="write a self-contained folder for any static host instead")
    demo.add_argument("--weights", metavar="RUN", action="append", default=[],
                      help="add a trained model of your own to the picker: its run folder or weights file "
                           "(repeatable; the model is rebuilt from the file its weights record)")
    demo.add_argument("--model", dest="own_models", metavar="FILE.py:NAME", action="append", default=[],
                      help="with --weights: the model file, where it is now (checked by SHA-256; needed when it "
                           "moved since training); the file is imported, so its code runs")
    return parser


MODEL_HELP = "a registered model name (its shipped weights, e.g. Model_3), a run folder, or a weights file"
MODEL_FILE_HELP = ("for weights of a model of your own (FILE.py:NAME) whose file has moved since training: "
                   "where it is now (it must be the same file: its SHA-256 is checked)")


def named_option(error: ConfigError) -> str:
    """An option's error as the command line spells it: "--batch-size must be ...", not "batch_size"."""
    text = str(error)
    if text.startswith(error.key + " "):
        return option_name(error.key) + text[len(error.key):]
    return f"{option_name(error.key)}: {text}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # The training settings given on the command line (an option left out is None), for the commands.
    args.settings = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
                     if getattr(args, f.name, None) is not None}
    try:
        # Each given setting is checked on its own here, before the slow import (no setting's
        # range depends on another's, so what passes here passes over an experiment file too).
        TrainConfig.from_dict(args.settings)
    except ConfigError as e:
        print(f"tinycnn: error: {named_option(e)}", file=sys.stderr)
        return EXIT_USAGE
    try:
        family = importlib.import_module(f"tinycnn.cli.{COMMANDS[args.command]}")  # deferred: see above
        return getattr(family, args.command.replace("-", "_"))(args)  # export-check -> export_check
    except ConfigError as e:
        print(f"tinycnn: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except UnknownModelError as e:
        print(f"tinycnn: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except DataError as e:
        print(f"tinycnn: data error: {e}", file=sys.stderr)
        return EXIT_DATA
    except Diverged as e:
        print(f"tinycnn: error: {e}", file=sys.stderr)
        return EXIT_DIVERGED
    except KeyboardInterrupt:
        print("tinycnn: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # output piped into a reader that stopped early (`tinycnn summary | head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so exit's flush stays quiet
        return 0


if __name__ == "__main__":
    sys.exit(main())
