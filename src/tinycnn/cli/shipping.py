"""`tinycnn export`, `export-check` and `demo`: a trained model as files for elsewhere, checked.

Each function takes the parsed arguments, calls the library, prints what a user should see and
returns the exit status; errors propagate to main.py, which turns them into one line.
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from tinycnn.demo import page as demo_page
from tinycnn.errors import ConfigError
from tinycnn.evidence.export_check import check_exports
from tinycnn.evidence.runner import writable_folder
from tinycnn.files import write_json
from tinycnn.models.names import is_model_file
from tinycnn.models.spec import ModelSpec
from tinycnn.ship import firmware
from tinycnn.ship.onnx import export as export_model
from tinycnn.ship.weights import Weights, load_model, shipped_weights
from tinycnn.train.data import find_mnist, load_mnist


def c_weights(args: argparse.Namespace) -> str:
    """--weights, defaulting to int8 with --target; --target and --ram-limit only for the integer C."""
    chosen = args.weights or ("int8" if args.target else "fp32")
    for flag, value in (("--target", args.target), ("--ram-limit", args.ram_limit)):
        if value is not None and (args.format != "c" or chosen != "int8"):
            raise ConfigError(f"{flag} is for the integer-only C: --format c --weights int8")
    if args.target:
        firmware.check_tools(args.target)
    return chosen


def export(args: argparse.Namespace) -> int:
    weights = load_model(args.model, args.model_file)
    precision = c_weights(args)
    out = Path(args.out)
    created = not out.exists()
    writable_folder(out)
    try:
        data = load_mnist(source=find_mnist(args.data_dir))
        exported = export_model(weights, args.format, out, data, precision, args.ram_limit)
        if args.target:
            files, built = firmware.measure(out, args.target, weights.name, data.test_images[:firmware.DIGITS])
            write_json(out / "model.json", {**exported.description, "firmware": built})
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
    if exported.c and "arena_bytes" in exported.c:
        print(f"arena (tinycnn_model.h: TINYCNN_ARENA_BYTES): {exported.c['arena_bytes']:,} bytes")
    if args.target:
        for path in files.values():
            print(f"wrote {path}")
        print(f"firmware for the {built['board']}, built with {built['compiler']}: `make -C {out} run` runs it in "
              f"qemu-system-arm\n  flash {built['flash_model_bytes']:,} bytes (the model) / "
              f"{built['flash_firmware_bytes']:,} (the firmware); RAM {built['ram_bytes']:,} bytes (arena "
              f"{built['arena_bytes_measured']:,} + stack {built['stack_bytes']:,} + image 784); "
              f"{built['instructions_per_digit']:,} instructions per digit\n  {built['predictions_equal_to_host']} of "
              f"{built['images']} digits equal to the host build's, logits "
              f"{'equal' if built['logits_equal_to_host'] else 'NOT equal'}")
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
        if spec is not None and ModelSpec(spec).name != weights.spec.name:
            raise ConfigError(f"--model {spec}: the weights in {run} are of {weights.name}")
        loaded.append(weights)
    return loaded
