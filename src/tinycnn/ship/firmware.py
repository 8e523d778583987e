"""The integer C as firmware for an emulated Cortex-M, built with arm-none-eabi-gcc -Os and run in
qemu-system-arm, measured as embedded engineers measure it:

- flash: `arm-none-eabi-size` of model.elf, an ELF of tinycnn_model.o alone with the libgcc
  routines it calls (weights, code and constants; no start-up, no main), and of the whole firmware;
- RAM: the arena (its bytes the emulator saw written, against the size the header states), the
  stack high-water mark of tinycnn_predict (stack painting), and the 784-byte input image;
- instructions per digit: QEMU's -icount shift=0 makes each guest instruction one nanosecond of
  virtual time, which SysTick counts; a loop of a known 200,000 instructions converts ticks.

The firmware prints each digit's answer and int32 logits, which must equal the host build's.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinycnn.errors import ConfigError
from tinycnn.files import write_bytes, write_text
from tinycnn.ship.c import compile_and_run
from tinycnn.ship.c_integer import IMAGE_BYTES
from tinycnn.ship.c_integer_source import HARNESS
from tinycnn.ship.firmware_source import LINKER, MAIN, MAKEFILE, STARTUP

CALIBRATION_INSTRUCTIONS = 200_000  # the known loop in main.c
RUN_SECONDS = 600
DIGITS = 200                        # test digits the firmware classifies when exported or checked


@dataclass(frozen=True)
class Board:
    name: str
    machine: str      # qemu-system-arm -M
    cpu: str          # -mcpu
    flash_kib: int
    ram_kib: int      # what the linker script gives the firmware (the stack at its top)


TARGETS = {
    "cortex-m0": Board("BBC micro:bit (nRF51822, Cortex-M0)", "microbit", "cortex-m0", 256, 16),
    "cortex-m4": Board("ARM MPS2 AN386 (Cortex-M4)", "mps2-an386", "cortex-m4", 4096, 64),
}
TOOLS = {"arm-none-eabi-gcc": "gcc-arm-none-eabi", "qemu-system-arm": "qemu-system-arm", "make": "make"}


def board(target: str) -> Board:
    if target not in TARGETS:
        raise ConfigError(f"--target must be one of {', '.join(TARGETS)}, not {target!r}")
    return TARGETS[target]


def missing_tools() -> list[str]:
    """The Debian packages to install for building and running firmware (none: all here)."""
    return [package for tool, package in TOOLS.items() if shutil.which(tool) is None]


def toolchain() -> dict:
    """The versions that built and ran the firmware, as they print them."""
    def first_line(*command):
        return subprocess.run(command, capture_output=True, text=True).stdout.splitlines()[0]
    return {"compiler": first_line("arm-none-eabi-gcc", "--version"), "emulator": first_line("qemu-system-arm", "--version")}


def write_project(folder: Path, target: str, model: str, images: np.ndarray) -> dict[str, Path]:
    """The firmware project beside the model's C in `folder`: start-up, main, linker script,
    Makefile, and digits.bin (the images it classifies)."""
    chosen = board(target)
    return {"main.c": write_text(folder / "main.c", MAIN), "startup.c": write_text(folder / "startup.c", STARTUP),
            "board.ld": write_text(folder / "board.ld", LINKER.format(board=chosen.name, flash_kib=chosen.flash_kib,
                                                                          ram_kib=chosen.ram_kib)),
            "Makefile": write_text(folder / "Makefile", MAKEFILE.format(model=model, board=chosen.name,
                                                                        cpu=chosen.cpu, machine=chosen.machine)),
            "digits.bin": write_bytes(folder / "digits.bin", np.ascontiguousarray(images, np.uint8).tobytes())}


def sizes(elf: Path) -> int:
    """text + data of an ELF (what goes in flash), from arm-none-eabi-size."""
    text, data = subprocess.run(["arm-none-eabi-size", str(elf)], capture_output=True, text=True,
                                check=True).stdout.splitlines()[1].split()[:2]
    return int(text) + int(data)


def build(folder: Path, target: str) -> dict:
    """make the firmware and model.elf (the model with its libgcc routines only); their flash bytes."""
    chosen = board(target)
    made = subprocess.run(["make", "-s", "-C", str(folder), "firmware.elf"], capture_output=True, text=True)
    if made.returncode:
        raise ConfigError(f"the firmware did not build: {(made.stderr or made.stdout).strip().splitlines()[-1]}")
    subprocess.run(["arm-none-eabi-gcc", f"-mcpu={chosen.cpu}", "-mthumb", "-nostdlib", "-Wl,--gc-sections",
                    "-Wl,-e,tinycnn_predict", str(folder / "tinycnn_model.o"), "-lgcc", "-o", str(folder / "model.elf")],
                   check=True, capture_output=True)
    return {"flash_model_bytes": sizes(folder / "model.elf"), "flash_firmware_bytes": sizes(folder / "firmware.elf")}


def run(folder: Path, target: str, seconds: int = RUN_SECONDS) -> dict:
    """Run the built firmware in QEMU on its digits.bin: each digit's answer and logits, and what
    it measured (module docstring)."""
    chosen = board(target)
    command = ["qemu-system-arm", "-M", chosen.machine, "-nographic", "-monitor", "none", "-serial", "none",
               "-icount", "shift=0", "-semihosting-config", "enable=on,target=native", "-kernel", "firmware.elf"]
    try:
        ran = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=seconds)
    except subprocess.TimeoutExpired:
        raise ConfigError(f"the firmware did not finish in {seconds} s in qemu-system-arm -M {chosen.machine}") from None
    if ran.returncode:
        raise ConfigError(f"the firmware stopped with an error in qemu-system-arm -M {chosen.machine}: "
                          f"{(ran.stderr or ran.stdout).strip()[-300:]}")
    lines = ran.stdout.splitlines()
    answers = np.array([[int(v) for v in line.split()] for line in lines if not line.startswith("#")], np.int64)
    found = dict(re.findall(r"^# (\w+) (-?\d+)$", ran.stdout, re.M))
    measured = {key: int(value) for key, value in found.items()}
    per_tick = CALIBRATION_INSTRUCTIONS / measured["calibration_ticks_for_200000_instructions"]
    digits = measured["digits"]
    return {"digits": answers[:, 0].reshape(-1), "logits": answers[:, 1:].reshape(digits, 10),
            "instructions_per_digit": round(measured["ticks"] * per_tick / digits),
            "instructions_per_tick": per_tick, "stack_bytes": measured["stack_bytes"],
            "arena_bytes_measured": measured["arena_bytes_written"], "arena_bytes_stated": measured["arena_bytes_stated"],
            "images": digits}


def check_tools(target: str) -> None:
    """Refuse, before anything is written, a target this machine cannot build or run."""
    board(target)
    missing = missing_tools()
    if missing:
        raise ConfigError(f"--target needs the ARM toolchain and QEMU: apt-get install {' '.join(missing)}")


def measure(folder: Path, target: str, model: str, images: np.ndarray) -> tuple[dict[str, Path], dict]:
    """Write, build and run the firmware in `folder` (which holds the integer C) on `images`, and
    the host build on the same images: (the project's files, the figures)."""
    check_tools(target)
    files = write_project(folder, target, model, images)
    built = build(folder, target)
    ran = run(folder, target)
    host = compile_and_run(folder, images, HARNESS, np.int32)
    if host is None:
        raise ConfigError("--target compares the firmware with the host build: install a C compiler (cc)")
    return files, {
        "target": target, "board": board(target).name, **toolchain(), **built,
        "ram_bytes": ran["arena_bytes_measured"] + ran["stack_bytes"] + IMAGE_BYTES,
        **{key: ran[key] for key in ("arena_bytes_stated", "arena_bytes_measured", "stack_bytes",
                                     "instructions_per_digit", "instructions_per_tick", "images")},
        "input_bytes": IMAGE_BYTES,
        "predictions_equal_to_host": int((ran["digits"] == host[0]).sum()),
        "logits_equal_to_host": bool(np.array_equal(ran["logits"], host[1])),
        "instructions_counted": "qemu-system-arm -icount shift=0 (one instruction per virtual ns), read by SysTick"}
