"""`tinycnn summary`, `evaluate` and `predict`: a model's tables, and a trained model at work.

Each function takes the parsed arguments, calls the library, prints what a user should see and
returns the exit status; errors propagate to main.py, which turns them into one line.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tinycnn.errors import EXIT_DATA, DataError
from tinycnn.evidence.plots import plot_confusion, plot_misclassified, save_seen_input
from tinycnn.files import write_text
from tinycnn.models.model import MODELS, build_model, count_parameters
from tinycnn.models.spec import ModelSpec
from tinycnn.models.tables import (
    count_macs,
    model_tables_markdown,
    model_tables_text,
    receptive_field_facts,
    receptive_field_table,
)
from tinycnn.ship.inference import assess, probabilities
from tinycnn.ship.preprocess import preprocess_rgba, read_picture
from tinycnn.ship.weights import load_model
from tinycnn.train.data import find_mnist, load_mnist


# ---------------------------------------------------------------------------- summary
def summary(args: argparse.Namespace) -> int:
    if not args.model:
        for name, info in MODELS.items():
            model = build_model(name)
            facts = receptive_field_facts(receptive_field_table(model))
            print(f"{name:10s} {count_parameters(model):7,d} params {count_macs(model):10,d} MACs   "
                  f"final RF {facts.final_rf} px   {info.summary}")
        return 0
    model = ModelSpec(args.model).build()
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
