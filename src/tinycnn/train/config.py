"""Training settings as one validated dataclass, and the TOML reading that files built on it share."""
from __future__ import annotations

import dataclasses
import math
import tomllib
import typing
from dataclasses import dataclass
from pathlib import Path

from tinycnn.errors import ConfigError
from tinycnn.models.names import check_layout, portable_model

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("onecycle", "step", "none")
DEVICES = ("auto", "cpu", "cuda")
# What each numeric setting may be (NaN fails every test, so it is always refused).
RANGES = [
    ("epochs", lambda v: 1 <= v <= 1000, "between 1 and 1000"),
    ("batch_size", lambda v: 1 <= v <= 60_000, "between 1 and 60000"),
    ("lr", lambda v: v > 0, "positive"),
    ("momentum", lambda v: 0 <= v < 1, "in [0, 1)"),
    ("weight_decay", lambda v: v >= 0, "zero or positive"),
    ("pct_start", lambda v: 0 < v < 1, "in (0, 1)"),
    ("div_factor", lambda v: v > 0, "positive"),
    ("final_div_factor", lambda v: v > 0, "positive"),
    ("step_size", lambda v: v >= 1, "at least 1"),
    ("gamma", lambda v: v > 0, "positive"),
    ("label_smoothing", lambda v: 0 <= v < 1, "in [0, 1)"),
    ("ema", lambda v: 0 <= v < 1, "in [0, 1) (0 = off)"),
    ("dropout", lambda v: v == -1 or 0 <= v < 1, "-1 (the model's own) or in [0, 1)"),
    ("rotate", lambda v: 0 <= v <= 180, "between 0 and 180 (degrees)"),
    ("translate", lambda v: 0 <= v < 0.5, "in [0, 0.5) (a fraction of the image)"),
    ("scale", lambda v: 0 <= v < 1, "in [0, 1)"),
    ("clean_epochs", lambda v: v >= 0, "zero or more"),
    ("holdout", lambda v: 0 <= v < 60_000, "in [0, 60000): it must leave training images"),
    ("train_subset", lambda v: 0 <= v <= 60_000, "between 0 (all) and 60000"),
    ("test_subset", lambda v: 0 <= v <= 60_000, "between 0 (all) and 60000"),
    ("seed", lambda v: 0 <= v < 2**63, "in [0, 2**63)"),
    ("threads", lambda v: 1 <= v <= 1024, "between 1 and 1024"),
    ("processes", lambda v: 1 <= v <= 64, "between 1 and 64"),
]

@dataclass
class TrainConfig:
    # The defaults are step 3's recipe (experiments/step3.toml): what `make train` and `tinycnn train` run.
    model: str = "Model_3"          # registry name (tinycnn summary lists them), or FILE.py:NAME of your own
    epochs: int = 14                # the challenge allows at most 15
    batch_size: int = 128           # images per step, shared by the processes (64 each in step 3)
    optimizer: str = "sgd"          # sgd | adam | adamw
    lr: float = 0.2                 # peak learning rate for onecycle, start rate otherwise
    momentum: float = 0.9           # sgd only
    nesterov: bool = True           # sgd only
    weight_decay: float = 0.0       # L2 (sgd/adam) or decoupled (adamw)
    schedule: str = "onecycle"      # onecycle | step | none
    pct_start: float = 0.2          # onecycle: fraction of steps spent warming up to lr
    div_factor: float = 10.0        # onecycle: start lr = lr / div_factor
    final_div_factor: float = 100.0 # onecycle: end lr = start lr / final_div_factor
    step_size: int = 6              # step: epochs between decays
    gamma: float = 0.1              # step: decay factor
    label_smoothing: float = 0.0    # 0 = plain cross-entropy
    ema: float = 0.999              # 0 = off; else evaluate an exponential moving average of the
                                    # weights with this decay per step (0.999: about the last 1,000 steps)
    dropout: float = -1.0           # -1 = the model's own dropout; 0..1 overrides it (for tuning)
    layout: str = ""                # "" = the model's own layers; else a TinyNet layout string such
                                    # as "c8,c12,t8,m,c16,c16,c16" (tuning and sweeps, see models/blocks.py)
    rotate: float = 7.0             # augmentation: max rotation in degrees (0 = off)
    translate: float = 0.05         # augmentation: max shift as a fraction of 28 px (0.05 = 1.4 px)
    scale: float = 0.05             # augmentation: max zoom change, e.g. 0.05 = 0.95x..1.05x
    clean_epochs: int = 3           # the last N epochs train on the images as they are, unaugmented
                                    # (the test images are; 0 = augment every epoch; >= epochs: none)
    holdout: int = 0                # >0: train on the first 60000-holdout images and evaluate on
                                    # the last `holdout` (validation); 0: evaluate on the test set
    train_subset: int = 0           # >0: use only the first N training images (quick checks)
    test_subset: int = 0            # >0: evaluate on the first N evaluation images
    seed: int = 0                   # seeds weights, data order and augmentation
    device: str = "cpu"             # cpu | cuda | auto (cuda if available); step 3 is a CPU recipe:
                                    # its two processes share each batch on the CPU
    threads: int = 1                # CPU threads; 1 is fastest for these tiny convs (tinycnn bench)
    channels_last: bool = True      # NHWC memory format: faster convolutions on CPU
    processes: int = 2              # CPU processes sharing every batch, gradients added (train/shards.py);
                                    # part of the recipe: each one's batch norm sees its part of the batch

    def __post_init__(self) -> None:
        check_types(self)
        choices = {"optimizer": OPTIMIZERS, "schedule": SCHEDULES, "device": DEVICES}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} must be one of {', '.join(allowed)}, not {getattr(self, name)!r}", name)
        for name, ok, wanted in RANGES:
            value = getattr(self, name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"{name} must be a finite number, not {value}", name)
            if not ok(value):
                raise ConfigError(f"{name} must be {wanted}, not {value}", name)
        if self.batch_size < self.processes:
            raise ConfigError(f"batch_size {self.batch_size} cannot be shared by {self.processes} processes", "processes")
        if self.layout:
            try:
                check_layout(self.layout)
            except ValueError as e:
                raise ConfigError(str(e), "layout") from None

    @classmethod
    def from_dict(cls, values: dict, where: str = "config") -> "TrainConfig":
        unknown = sorted(set(values) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}", unknown[0])
        return cls(**values)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)


def check_types(obj) -> None:
    """Wrong types are errors (TOML 3 for a float is fine; a string for a number is not)."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value, expected = getattr(obj, f.name), hints[f.name]
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            setattr(obj, f.name, float(value))
            continue
        origin = typing.get_origin(expected) or expected
        if origin is int and isinstance(value, bool) or not isinstance(value, origin):
            raise ConfigError(f"{f.name} must be {getattr(origin, '__name__', origin)}, "
                              f"not {type(value).__name__} {value!r}", f.name)


def repo_path(path: str | Path) -> str:
    """`experiments/<file>`: how reports name a file, the same from any working directory."""
    path = Path(path)
    return f"{path.parent.name}/{path.name}"


def read_toml(path: Path, kind: str, allowed: set[str], required: set[str]) -> dict:
    """A TOML file's top-level table; ConfigError for a missing file, bad TOML, unknown or missing keys."""
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such {kind} file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from None
    unknown, missing = sorted(set(raw) - allowed), sorted(required - set(raw))
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(unknown)}")
    if missing:
        raise ConfigError(f"{path}: missing key(s) {', '.join(missing)}")
    return raw


def changed_settings(given: dict, reference: dict, ignore: tuple[str, ...] = ()) -> dict:
    """The settings in `given` whose value differs from `reference`'s, {name: given value}, in given's order.
    A model of your own is the same setting wherever its project lies: records store its absolute
    path, and a project is cloned, moved and graded elsewhere (its content is checked by SHA-256)."""
    return {k: v for k, v in given.items() if k not in ignore and
            (portable_model(reference.get(k)) != portable_model(v) if k == "model" else reference.get(k) != v)}


def option_name(key: str) -> str:
    """A setting as the command line spells it: batch_size -> --batch-size."""
    return "--" + key.replace("_", "-")
