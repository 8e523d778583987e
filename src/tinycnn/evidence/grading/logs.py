"""Training logs as printed into a notebook's outputs (or pasted into a README): per-epoch test
accuracy, train accuracy where the progress bar shows it, and the summary table's parameter count.

Formats read by default: the `Test set: Average loss: ..., Accuracy: N/10000 (P%)` line of
PyTorch's MNIST example, each the next epoch (whether an epoch line, `EPOCH: 14` or `Epoch 3/15`,
comes before it or not); a tqdm bar with a running `Accuracy=98.12`; Keras-like
`val_accuracy: 0.9934`; torchsummary's and torchinfo's `Total params: 7,712`. `pattern` (a regex
with a group named `acc`, in percent or as a fraction) replaces the test-accuracy formats.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

TEST = re.compile(r"Test set: Average loss: [\d.]+, Accuracy: (\d+)/(\d+) \((\d{1,3}(?:\.\d+)?)%\)")
VAL = re.compile(r"\bval_acc(?:uracy)?\s*[:=]\s*(\d?\.\d+)")
TRAIN = re.compile(r"\b(?:train(?:ing)?\s*)?acc(?:uracy)?\s*=\s*(\d{1,3}(?:\.\d+)?)", re.I)
TOTAL_PARAMS = re.compile(r"Total params:\s*([\d,]+)")


@dataclass
class Log:
    test: list[float] = field(default_factory=list)  # per epoch, percent
    train: list[float] = field(default_factory=list)  # the last running train accuracy of each epoch
    total_params: int | None = None  # a summary table's count

    @property
    def epochs(self) -> int:
        return len(self.test)

    def reached(self, target: float) -> int | None:
        """The epoch from which every logged test accuracy is at or above `target`."""
        for epoch in range(1, self.epochs + 1):
            if all(a >= target for a in self.test[epoch - 1 :]):
                return epoch
        return None


def as_percent(text: str) -> float:
    value = float(text)
    return round(value * 100, 6) if value <= 1 else value  # a fraction: 0.9912 is 99.12%


def read_log(text: str, pattern: str | None = None) -> Log:
    log, running = Log(), None
    custom = re.compile(pattern) if pattern else None
    for line in text.splitlines():
        if match := TOTAL_PARAMS.search(line):
            log.total_params = int(match[1].replace(",", ""))
        if custom is not None:
            if match := custom.search(line):
                log.test.append(as_percent(match["acc"]))
            continue
        if match := TRAIN.search(line):
            running = float(match[1])
        test = TEST.search(line) or VAL.search(line)
        if test:
            log.test.append(float(test[3]) if test.re is TEST else as_percent(test[1]))
            if running is not None:
                log.train.append(running)
                running = None
    return log
