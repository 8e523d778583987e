"""The export page, reports/export.md, and the README's "use" block, from reports/export/exports.json."""
from __future__ import annotations

from pathlib import Path

from tinycnn.evidence.challenge import TARGET
from tinycnn.files import write_text
from tinycnn.report.template import render
from tinycnn.ship import firmware
from tinycnn.ship.c import CFLAGS

FORMATS = ("onnx", "int8", "c", "c_int8")


def accuracy_rows(result: dict) -> str:
    def cell(model: dict, fmt: str) -> str:
        acc = model[fmt]["test_accuracy"]
        return f"**{acc:.2f}%**" if acc < TARGET else f"{acc:.2f}%"
    return "\n".join(f"| `{m['model']}` ({m['experiment']}) | {m['seed']} | {m['pytorch_test_accuracy']:.2f}% | "
                     + " | ".join(cell(m, fmt) for fmt in FORMATS) + " |" for m in result["models"])


def verdict(result: dict) -> str:
    """Does int8 keep 99.4% for the models that reach it in fp32? (Those below it in fp32 are named apart.)"""
    def name(m: dict) -> str:
        return f"`{m['model']}` seed {m['seed']}"
    models = result["models"]
    fp32_below = [m for m in models if m["pytorch_test_accuracy"] < TARGET]
    reaching = [m for m in models if m not in fp32_below]
    lost = [name(m) for m in reaching if min(m["int8"]["test_accuracy"], m["c_int8"]["test_accuracy"]) < TARGET]
    changes = [m[fmt]["test_accuracy"] - m["pytorch_test_accuracy"] for m in models for fmt in ("int8", "c_int8")]
    text = (f"**Yes, for all {len(reaching)} models that reach 99.4% in fp32**: each stays at or above it in both "
            f"int8 forms." if not lost else
            f"**Not for every model:** of the {len(reaching)} models that reach 99.4% in fp32, {', '.join(lost)} "
            f"{'drops' if len(lost) == 1 else 'drop'} below it in an int8 form (bold): a thin fp32 margin can be "
            f"lost to quantisation.")
    if fp32_below:
        accuracies = ", ".join(f"{m['pytorch_test_accuracy']:.2f}%" for m in fp32_below)
        text += (f" {', '.join(name(m) for m in fp32_below)}: below 99.4% already in fp32 ({accuracies}), so no "
                 f"exported form reaches it either.")
    return (text + f" The int8 forms (ONNX and C) change test accuracy by {min(changes):+.2f} to {max(changes):+.2f} "
            f"points against fp32 PyTorch over the {len(models)} models.")


def size_rows(result: dict) -> str:
    return "\n".join(
        f"| `{m['model']}` ({m['experiment']}) | {m['seed']} | {m['parameters']:,} | {m['macs_per_image']:,} | "
        f"{m['onnx']['bytes']:,} | {m['int8']['bytes']:,} | {m['c']['flash_bytes']:,} / "
        f"{m['c_int8']['constant_bytes']:,} | {m['c']['static_ram_bytes']:,} / {m['c_int8']['arena_bytes']:,} | "
        f"{m['c']['images_per_second_one_core']:,.0f} / {m['c_int8']['images_per_second_one_core']:,.0f} |"
        for m in result["models"])


def microcontroller_rows(result: dict) -> str:
    """Per model and board: the firmware's flash, RAM and instructions per digit, and its answers."""
    rows = []
    for m in result["models"]:
        for target, f in m["c_int8"]["firmware"].items():
            same = "all equal" if f["logits_equal_to_host"] and f["predictions_equal_to_host"] == f["images"] else \
                f"**{f['predictions_equal_to_host']} equal**"
            rows.append(f"| `{m['model']}` ({m['experiment']}) | {m['seed']} | {target} | {f['flash_model_bytes']:,} | "
                        f"{f['flash_firmware_bytes']:,} | {f['arena_bytes_measured']:,} of {f['arena_bytes_stated']:,} | "
                        f"{f['stack_bytes']:,} | **{f['ram_bytes']:,}** | {f['instructions_per_digit']:,} | "
                        f"{f['images']} digits: {same} |")
    return "\n".join(rows)


def microcontroller_goals(result: dict) -> str:
    """The issue's goals, read off the rows: Model_7 within 8 KB flash and 4 KB RAM, Model_3 within 8 KB RAM."""
    lines = []
    for name, experiment, flash, ram in (("Model_7", "curve5k", 8192, 4096), ("Model_3", "step3", None, 8192)):
        model = next((m for m in result["models"] if m["experiment"] == experiment and m["seed"] == 0), None)
        if model is None:
            continue
        worst = max(model["c_int8"]["firmware"].values(), key=lambda f: f["ram_bytes"])
        heaviest = max(f["flash_model_bytes"] for f in model["c_int8"]["firmware"].values())
        held = worst["ram_bytes"] <= ram and (flash is None or heaviest <= flash)
        lines.append(f"- `{name}` seed 0: integer C {model['c_int8']['test_accuracy']:.2f}% (PyTorch "
                     f"{model['pytorch_test_accuracy']:.2f}%), RAM at most {worst['ram_bytes']:,} bytes"
                     + (f", model flash at most {heaviest:,} bytes" if flash else "")
                     + f": {'within' if held else '**over**'} the goal of " + (f"{flash:,} bytes of flash and " if flash
                                                                             else "") + f"{ram:,} bytes of RAM.")
    return "\n".join(lines)


def agreement(result: dict) -> str:
    lines = []
    for fmt, name in (("onnx", "ONNX fp32"), ("c", "C fp32"), ("int8", "ONNX int8"), ("c_int8", "C int8, integers only")):
        equal = [m[fmt]["predictions_equal_to_pytorch"] for m in result["models"]]
        worst = max(m[fmt]["largest_logit_difference"] for m in result["models"])
        lines.append(f"- {name}: {min(equal):,} to {max(equal):,} of 10,000 predictions equal to PyTorch's per model; "
                     f"largest logit difference {worst:.2g}.")
    exact = all(m[fmt]["predictions_equal_to_pytorch"] == 10_000 for m in result["models"] for fmt in ("onnx", "c"))
    lines.append("" if not exact else "\nThe fp32 exports agree with PyTorch on every test image; their logits differ "
                 "only in the last bits, because they sum the same products in another order (C: one multiply-add at "
                 "a time, batch norm folded into the weights).")
    return "\n".join(lines).rstrip()


def every_cpu(result: dict) -> str:
    """Why the int8 figures hold on other CPUs, from each model's integer-kernel check."""
    checks = [m["int8"]["int8"] for m in result["models"] if "int8" in m["int8"]]
    if len(checks) < len(result["models"]):
        return "Measured before tinycnn checked its int8 kernels: rerun `tinycnn export-check`."
    equal = [c["predictions_equal_to_float_emulation"] for c in checks]
    return (f"onnxruntime picks its integer kernels by CPU; here they were {result['int8_kernels']}. On x86 CPUs "
            f"without VNNI (AVX2, and AVX-512 before Cascade Lake) they add pairs of uint8 x int8 products into an "
            f"int16, which saturates above 32,767, so tinycnn quantises the weights to 7 bits (integers in [-64, 64]): "
            f"the largest pair sum any of these models can meet is {max(c['int16_pair_bound'] for c in checks):,}, "
            f"so every kernel (int16 pairs, VNNI, ARM's dot products) computes the same exact integer sums. Checked "
            f"for each model above: its int8 file run with the integer kernels against the same quantised graph run "
            f"as float operations, with no integer kernel at all: {min(equal):,} to {max(equal):,} of 10,000 "
            f"predictions equal, largest logit difference "
            f"{max(c['largest_logit_difference_to_float_emulation'] for c in checks):.2g} (one activation's last "
            f"bit where float rounding lands on a half step). The test suite also runs the int8 `Model_3` on an "
            f"emulated Haswell (qemu: AVX2, no AVX-512, no VNNI) and requires the same logits to the last bit; "
            f"the same model with full-range weights fails there.")


def preprocessing(result: dict) -> str:
    p = result["preprocessing"]
    return (f"{p['digits']:,} MNIST test digits, scaled 2-6x onto 200x300 canvases at random places, half of them "
            f"inverted to dark ink on white (seed {p['seed']}), went through the same preprocessing as a photo: "
            f"the shipped `Model_3` kept its test-set prediction for **{p['same_prediction']:,}** of them "
            f"({100 * p['same_prediction'] / p['digits']:.1f}%); {p['correct_on_canvas']:,} were read correctly "
            f"(as plain test images: {p['correct_as_tested']:,}).")


def write_export_page(result: dict, out_dir: Path) -> Path:
    tools = result["toolchain"]
    page = render("export.md", machine=result.get("machine", "this machine"), cflags=" ".join(CFLAGS),
                  verdict=verdict(result), accuracy_rows=accuracy_rows(result), size_rows=size_rows(result),
                  microcontroller_rows=microcontroller_rows(result), microcontroller_goals=microcontroller_goals(result),
                  compiler=tools["compiler"], emulator=tools["emulator"], digits=firmware.DIGITS,
                  boards="; ".join(f"{target}: {board.name}, qemu-system-arm -M {board.machine}"
                                   for target, board in firmware.TARGETS.items()),
                  agreement=agreement(result), every_cpu=every_cpu(result), preprocessing=preprocessing(result))
    return write_text(out_dir / "export.md", page)


def use_block(result: dict) -> str:
    """README: what the shipped models give when exported."""
    rows = ["| model | params | PyTorch | ONNX fp32 | ONNX int8 | C fp32 | C int8 | Cortex-M0: flash / RAM (bytes) "
            "| instructions per digit | C fp32 images/s |", "|---|---|---|---|---|---|---|---|---|---|"]
    for m in (m for m in result["models"] if m["seed"] == 0):
        m0 = m["c_int8"]["firmware"]["cortex-m0"]
        rows.append(f"| `{m['model']}` ({m['experiment']}, seed 0) | {m['parameters']:,} | {m['pytorch_test_accuracy']:.2f}% | "
                    + " | ".join(f"{m[fmt]['test_accuracy']:.2f}%" for fmt in FORMATS)
                    + f" | {m0['flash_model_bytes']:,} / {m0['ram_bytes']:,} | {m0['instructions_per_digit']:,} | "
                    f"{m['c']['images_per_second_one_core']:,.0f} |")
    tools = result["toolchain"]
    return "\n".join(rows + ["", f"Cortex-M0: the integer-only C (`--target cortex-m0`) on an emulated BBC micro:bit, "
                                  f"built with {tools['compiler']}, run in {tools['emulator']}; RAM is the arena, the "
                                  f"stack's high-water mark and the 784-byte image, as measured there "
                                  f"([export report](reports/export.md#on-a-microcontroller)).", "",
                              preprocessing(result)])


def microcontroller_block(result: dict) -> str:
    """README: the shipped models' integer C as firmware on both emulated boards, a row per model."""
    rows = ["| model | params | C int8 | Cortex-M0: flash / RAM (bytes), instructions per digit | Cortex-M4: the same |",
            "|---|---|---|---|---|"]
    for m in (m for m in result["models"] if m["seed"] == 0):
        cells = [f"{f['flash_model_bytes']:,} / **{f['ram_bytes']:,}**, {f['instructions_per_digit'] / 1e6:.1f}M"
                 for f in m["c_int8"]["firmware"].values()]
        rows.append(f"| `{m['model']}` ({m['experiment']}) | {m['parameters']:,} | {m['c_int8']['test_accuracy']:.2f}% | "
                    + " | ".join(cells) + " |")
    tools = result["toolchain"]
    return "\n".join(rows + ["", f"The [integer-only int8 C](docs/use.md#on-a-microcontroller) (the same bits on every "
                                  f"compiler and CPU) as firmware; RAM: arena + stack + image. {tools['compiler']}, "
                                  f"{tools['emulator']}; answers and logits on {firmware.DIGITS} test digits equal the "
                                  f"host build's ([how each figure is measured](reports/export.md#on-a-microcontroller))."])
