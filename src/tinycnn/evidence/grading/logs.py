"""Training logs as printed (a notebook cell's outputs, a block pasted into a README): one record per
evaluated epoch, with its test accuracy, the running train accuracy before it, its printed epoch
label and the line itself; and the runs those records form.

Read as printed, in the spellings courses use:
- test accuracy from the counts where a line has them (`Accuracy: 9942/10000 (99%)`: the printed
  percentage is rounded, the counts are not), else the percentage or fraction (`Test Accuracy:
  99.45%`, `test accuracy 99.45%`, `val_accuracy: 0.9934`, `test_acc=99.4`); a `Train set: ...
  59000/60000` line is train;
- train accuracy from a progress bar's running `Accuracy=98.12` or a `Train ... accuracy: 98.1`;
- epoch labels `EPOCH: 3`, `EPOCH - 3`, `Epoch 3/15`, `epoch num ==== 3`, `Epoch: 3` (0- or 1-based:
  an epoch is a record, so labels only split runs); a scheduler's `Epoch 00011: reducing learning
  rate` or `Adjusting learning rate` line is not an epoch;
- a summary table's `Total params: 7,712`.
`pattern` (a regex with a group named `acc`, in percent or as a fraction) replaces the test formats.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

SCHEDULER = re.compile(r"reducing learning rate|adjusting learning rate|learning rate of group", re.I)
EPOCH = re.compile(r"\bepoch(?:\s*(?:num(?:ber)?|no\.?|#))?[\s:=#\-\[]*(\d{1,4})\b", re.I)
COUNTS = re.compile(r"(\d{1,6})\s*/\s*(\d{2,6})\s*\(\s*\d{1,3}(?:\.\d+)?\s*%\s*\)")
# `accuracy: 99.4`, `acc=0.994`, and with a percent sign also `accuracy 99.44%` (a number with no
# separator and no sign could be anything: an epoch count, a batch size)
PERCENT_AFTER_ACC = re.compile(
    r"acc(?:uracy)?\b\s*(?:\(%\))?\s*(?:[:=]\s*|(?=\d{1,3}(?:\.\d+)?\s*%))(\d{1,3}(?:\.\d+)?|0?\.\d+)\s*(%?)", re.I
)
KERAS_VAL = re.compile(r"\bval_acc(?:uracy)?\s*[:=]\s*(\d?\.\d+|\d{1,3}(?:\.\d+)?)")
TRAIN_WORD = re.compile(r"\btrain(?:ing)?\b|\btrain_", re.I)
TEST_WORD = re.compile(r"\b(?:test|val|valid|validation|eval)", re.I)
RUNNING = re.compile(r"\bacc(?:uracy)?\s*=\s*(\d{1,3}(?:\.\d+)?)", re.I)
TOTAL_PARAMS = re.compile(r"Total params:\s*([\d,]+)")
LOSS = re.compile(r"loss\W{0,3}\s*[:=]?\s*(\d+\.\d+)", re.I)


@dataclass
class Epoch:
    test: float  # percent, from the counts where printed
    train: float | None = None  # the last running train accuracy before it
    label: int | None = None  # the epoch number as printed, if any
    line: str = ""  # the test line as printed (what two copied logs share)


@dataclass
class Run:
    """One training run as it printed: its epochs, where it printed them and how it ended."""

    epochs: list[Epoch] = field(default_factory=list)
    where: str = ""  # "S7_Model3.ipynb cell 9-11", "README.md"
    cell: int | None = None  # the notebook cell (0-based) it began printing in
    total_params: int | None = None  # the summary table printed before it
    stopped: str = ""  # "KeyboardInterrupt" when its author stopped it
    model: object = None  # what it trained: set by the notebook reader (a ModelRef)

    @property
    def test(self) -> list[float]:
        return [e.test for e in self.epochs]

    @property
    def train(self) -> list[float]:
        return [e.train for e in self.epochs if e.train is not None]

    def reached(self, target: float) -> int | None:
        """The epoch (1-based, as counted) from which every test accuracy is at or above `target`."""
        for epoch in range(1, len(self.epochs) + 1):
            if all(a >= target for a in self.test[epoch - 1 :]):
                return epoch
        return None


def as_percent(text: str) -> float:
    value = float(text)
    return round(value * 100, 6) if value <= 1 else value  # a fraction: 0.9912 is 99.12%


def test_accuracy(line: str, custom: re.Pattern | None) -> float | None:
    """The test accuracy a line prints, or None (a train line, no accuracy)."""
    if custom is not None:
        match = custom.search(line)
        return as_percent(match["acc"]) if match else None
    test = TEST_WORD.search(line)
    if TRAIN_WORD.search(line) and not test:
        return None
    if (match := COUNTS.search(line, test.start() if test else 0)) and int(match[2]) > 0 and "acc" in line.lower():
        return round(100 * int(match[1]) / int(match[2]), 6)
    if match := KERAS_VAL.search(line):
        return as_percent(match[1])
    if test and (match := PERCENT_AFTER_ACC.search(line, test.start())):
        return as_percent(match[1]) if not match[2] else float(match[1])
    return None


def train_accuracy(line: str) -> float | None:
    """The train accuracy a line (or the part of it before its test figures) prints, or None."""
    if test := TEST_WORD.search(line):
        line = line[: test.start()]
    if match := RUNNING.search(line):
        return float(match[1])
    if TRAIN_WORD.search(line) and (match := COUNTS.search(line)) and int(match[2]) > 0:
        return round(100 * int(match[1]) / int(match[2]), 6)
    if TRAIN_WORD.search(line) and (match := PERCENT_AFTER_ACC.search(line)):
        return as_percent(match[1]) if not match[2] else float(match[1])
    return None


@dataclass
class Reading:
    """What one text printed, in order: epochs, and the summary table's count before them."""

    epochs: list[Epoch] = field(default_factory=list)
    total_params: int | None = None
    resets: list[int] = field(default_factory=list)  # indices of epochs whose label starts again


def read_text(text: str, pattern: str | None = None) -> Reading:
    reading, running, label = Reading(), None, None
    custom = re.compile(pattern) if pattern else None
    for line in text.splitlines():
        if match := TOTAL_PARAMS.search(line):
            reading.total_params = int(match[1].replace(",", ""))
            continue
        if SCHEDULER.search(line):
            continue  # `Epoch 00011: reducing learning rate ...` is a scheduler's line, not an epoch
        if (train := train_accuracy(line)) is not None:
            running = train
        test = test_accuracy(line, custom)
        if test is None:
            if (match := EPOCH.search(line)) and not COUNTS.search(line[: match.start()]):
                label = int(match[1])
            continue
        if label is None and (match := EPOCH.search(line)):
            label = int(match[1])
        previous = reading.epochs[-1].label if reading.epochs else None
        if label is not None and previous is not None and label <= previous:
            reading.resets.append(len(reading.epochs))
        reading.epochs.append(Epoch(test, running, label, line.strip()))
        running, label = None, None
    return reading


def runs_in(text: str, where: str, pattern: str | None = None) -> list[Run]:
    """A text's runs: a new one wherever the printed epoch labels start again."""
    reading = read_text(text, pattern)
    cuts = [0, *reading.resets, len(reading.epochs)]
    runs = [Run(reading.epochs[a:b], where) for a, b in zip(cuts, cuts[1:]) if b > a]
    if runs:
        runs[0].total_params = reading.total_params
    return runs
