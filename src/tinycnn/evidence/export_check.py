"""`tinycnn export-check`: export the reported models to every format and measure what each gives.

For the step-3 seeds 0-4 and seed 0 of the frontier, record and budget-curve models: test accuracy
of fp32 ONNX, int8 ONNX, fp32 C and integer-only int8 C, agreement with PyTorch, file sizes, the C
model's constants and RAM, images per second on one core, and the integer C as firmware on each
emulated Cortex-M board (firmware.py: flash, RAM, instructions per digit); and, for the shipped
Model_3, how often the MNIST-style preprocessing of `tinycnn predict` keeps the test-set prediction
of MNIST test digits pasted, scaled and inverted into large canvases. The result is
reports/export/exports.json; the report side renders it (report/export_page.py). `--only
EXPERIMENT` measures that experiment's rows again and keeps the others from the last exports.json,
when it was measured on a machine of the same description (a table of rows from different CPUs
would compare kernels, not models).
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from tinycnn.errors import ConfigError
from tinycnn.evidence import records
from tinycnn.evidence.challenge import TARGET
from tinycnn.machine import int8_kernels, machine_description
from tinycnn.models.model import count_parameters
from tinycnn.models.tables import count_macs
from tinycnn.ship import firmware
from tinycnn.ship.inference import probabilities
from tinycnn.ship.onnx import export
from tinycnn.ship.preprocess import preprocess_rgba
from tinycnn.ship.weights import SHIPPED, Weights, load_weights
from tinycnn.train.config import repo_path
from tinycnn.train.data import MNIST

CHECKED = [("step3", seed) for seed in range(5)] + [(name, 0) for name in ("step3_wide", "frontier", "curve3k", "record",
                                                                          "curve5k")]
PASTED_DIGITS = 1000
PASTE_SEED = 0


def run_weights(reports_dir: Path, experiment: str, seed: int) -> Path:
    """A seed's weights from its run folder; seed 0's shipped copy (the same bytes) when the run
    folder is not here (a fresh clone has the shipped weights only)."""
    path = records.seed_run_folder(reports_dir / experiment, seed) / records.WEIGHTS
    shipped = reports_dir.parent / SHIPPED / f"{experiment}.safetensors"
    if not path.is_file() and seed == 0 and shipped.is_file():
        return shipped
    if not path.is_file():
        raise ConfigError(f"{path} is missing: run `tinycnn run experiments/{experiment}.toml` first (its seeds' "
                          f"weights stay in their run folders)")
    return path


def measure_model(weights: Weights, data: MNIST) -> dict:
    """Every format's facts for one model."""
    found = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, fmt, c_weights in (("onnx", "onnx", "fp32"), ("int8", "int8", "fp32"),
                                     ("c", "c", "fp32"), ("c_int8", "c", "int8")):
            exported = export(weights, fmt, Path(tmp) / name, data, c_weights)
            agreed = exported.agreement
            if agreed is None:
                raise ConfigError("export-check runs the C exports: install a C compiler (cc)")
            found[name] = {"test_accuracy": agreed.test_accuracy,
                           "predictions_equal_to_pytorch": agreed.predictions_equal_to_pytorch,
                           "largest_logit_difference": agreed.largest_logit_difference,
                           "bytes": sum(path.stat().st_size for path in exported.files.values()),
                           "holds_target": agreed.test_accuracy >= TARGET}
            if exported.c:
                found[name].update({k: exported.c[k] for k in ("flash_bytes", "constant_bytes", "largest_buffer_bytes",
                                                                "static_ram_bytes",
                                                                "arena_bytes", "images_per_second_one_core")
                                    if k in exported.c})
            if name == "c_int8":
                found[name]["firmware"] = on_microcontrollers(Path(tmp) / name, weights.name, data)
            if exported.int8:
                found[name]["int8"] = exported.int8
        found["pytorch_test_accuracy"] = agreed.pytorch_test_accuracy
        found["parameters"], found["macs_per_image"] = count_parameters(weights.model), count_macs(weights.model)
    return found


def on_microcontrollers(c_folder: Path, model: str, data: MNIST) -> dict:
    """The integer C as firmware on each emulated board: flash, RAM, instructions per digit, and its
    answers on the first test digits against the host build's."""
    found = {}
    for target in firmware.TARGETS:
        folder = c_folder / target
        folder.mkdir()
        for name in ("tinycnn_model.c", "tinycnn_model.h"):
            shutil.copyfile(c_folder / name, folder / name)
        found[target] = firmware.measure(folder, target, model, data.test_images[:firmware.DIGITS])[1]
    return found


def pasted_digits(data: MNIST, count: int, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    """MNIST test digits scaled 2-6x onto 200x300 canvases at random places, half of them inverted
    (dark ink on white), as RGBA pictures; with the indices of the digits used."""
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(data.test_images), count, replace=False)
    pictures = []
    for index in picked:
        size = int(28 * rng.uniform(2, 6))
        digit = np.asarray(Image.fromarray(data.test_images[index]).resize((size, size), Image.BILINEAR)) / 255.0
        canvas = np.zeros((200, 300))
        y, x = rng.integers(0, 200 - size), rng.integers(0, 300 - size)
        canvas[y:y + size, x:x + size] = digit
        if rng.random() < 0.5:
            canvas = 1.0 - canvas
        pictures.append(np.dstack([canvas, canvas, canvas, np.ones_like(canvas)]))
    return pictures, picked


def preprocessing_agreement(weights: Weights, data: MNIST, count: int = PASTED_DIGITS, seed: int = PASTE_SEED) -> dict:
    pictures, picked = pasted_digits(data, count, seed)
    seen = np.stack([preprocess_rgba(p) for p in pictures])
    on_canvas = probabilities(weights, seen).argmax(1)
    as_tested = probabilities(weights, data.test_images[picked]).argmax(1)
    return {"digits": count, "seed": seed, "same_prediction": int((on_canvas == as_tested).sum()),
            "correct_on_canvas": int((on_canvas == data.test_labels[picked]).sum()),
            "correct_as_tested": int((as_tested == data.test_labels[picked]).sum())}


def kept_rows(previous: dict | None, only: list[str]) -> dict[tuple[str, int], dict]:
    """The rows of the last exports.json that `--only` keeps: every row of another experiment (an
    experiment with no row there yet stays without one until it is measured)."""
    unknown = sorted(set(only) - {experiment for experiment, _ in CHECKED})
    if unknown:
        raise ConfigError(f"--only {', '.join(unknown)}: export-check measures "
                          f"{', '.join(dict.fromkeys(e for e, _ in CHECKED))}")
    here = {"machine": machine_description(), "int8_kernels": int8_kernels(), "toolchain": firmware.toolchain()}
    if previous is None or any(previous.get(key) != value for key, value in here.items()):
        raise ConfigError("--only keeps the other rows of the last exports.json, which must exist and come from a "
                          f"machine like this one ({here['machine']}; {here['int8_kernels']}; the same ARM compiler "
                          f"and QEMU): run without --only")
    return {(m["experiment"], m["seed"]): m for m in previous["models"] if m["experiment"] not in only}


def check_exports(data: MNIST, reports_dir: Path, shipped: Path, only: list[str] | None = None,
                  previous: dict | None = None, log=print) -> dict:
    """Measure every model of CHECKED (or only those of the experiments in `only`, keeping the
    other rows of `previous`, the last result)."""
    kept = kept_rows(previous, only) if only else {}
    todo = [key for key in CHECKED if key[0] in only] if only else CHECKED
    paths = {key: run_weights(reports_dir, *key) for key in todo}  # all there, before any work
    for target in firmware.TARGETS:
        firmware.check_tools(target)
    result = {"machine": machine_description(), "int8_kernels": int8_kernels(), "toolchain": firmware.toolchain(),
              "models": []}
    for experiment, seed in CHECKED:
        if (experiment, seed) in kept:
            result["models"].append(kept[experiment, seed])
        if (experiment, seed) not in paths:  # kept, or (with --only) not measured yet
            continue
        log(f"{experiment} seed {seed}: exporting to ONNX, int8 ONNX, C (fp32, and integer-only int8 also as "
            f"firmware for {', '.join(firmware.TARGETS)})")
        weights = load_weights(paths[experiment, seed])
        result["models"].append({"experiment": experiment, "seed": seed, "model": weights.name,
                                 **measure_model(weights, data)})
    if only and "step3" not in only and previous.get("preprocessing"):  # it runs step 3's shipped weights
        result["preprocessing"] = previous["preprocessing"]
    else:
        log(f"preprocessing: {PASTED_DIGITS} pasted test digits through the shipped Model_3")
        result["preprocessing"] = {"weights": repo_path(shipped),
                                   **preprocessing_agreement(load_weights(shipped), data)}
    return result

