"""The errors a user can cause or meet, and the exit status `tinycnn` gives each.

The command line prints one line for any of these, never a traceback:
  2  ConfigError, UnknownModelError: bad arguments, settings, experiment or sweep files
  1  DataError: missing, damaged or foreign data, checkpoints, weights or study databases
  3  Diverged: training produced a non-finite loss (the history so far is saved)
"""
from __future__ import annotations

EXIT_DATA, EXIT_USAGE, EXIT_DIVERGED, EXIT_INTERRUPTED = 1, 2, 3, 130


class ConfigError(ValueError):
    """A bad setting or input file; the message says which key and why (`key`: the setting)."""

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key

    def __reduce__(self):
        return ConfigError, (str(self), self.key)


class DataError(Exception):
    """A problem with data or files a user can fix (missing, damaged or mismatched)."""


class UnknownModelError(KeyError):
    def __init__(self, name: str, known: list[str]):
        super().__init__(name)
        self.name, self.known = name, known

    def __str__(self) -> str:
        return (f"unknown model {self.name!r}; known models: {', '.join(self.known)}; or FILE.py:NAME for a model "
                f"of your own")


class Diverged(RuntimeError):
    """The training loss became non-finite; `history` holds the epochs finished before."""

    def __init__(self, epoch: int, step: int, lr: float, history: list[dict]):
        self.epoch, self.step, self.lr, self.history = epoch, step, lr, history
        super().__init__(f"training diverged at epoch {epoch}, step {step} (learning rate {lr:.3g}): "
                         f"the loss is not a finite number; lower the learning rate (--lr) and try again")

    def __reduce__(self):  # picklable, so a worker process can hand it to its parent
        return Diverged, (self.epoch, self.step, self.lr, self.history)
