"""Training settings as one validated dataclass, and experiment files (TOML) built on it."""
from __future__ import annotations

import dataclasses
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("onecycle", "step", "none")


class ConfigError(ValueError):
    """A bad setting or experiment file; the message says which key and why."""


@dataclass
class TrainConfig:
    model: str = "Model_3"          # registry name (tinycnn summary lists them)
    epochs: int = 15                # the challenge allows at most 15
    batch_size: int = 64            # images per step; 64 gives twice the updates of 128 in 15 epochs
    optimizer: str = "sgd"          # sgd | adam | adamw
    lr: float = 0.1                 # peak learning rate for onecycle, start rate otherwise
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
    ema: float = 0.0                # 0 = off; else evaluate an exponential moving average of the
                                    # weights with this decay per step (0.999: about the last 1,000 steps)
    dropout: float = -1.0           # -1 = the model's own dropout; 0..1 overrides it (for tuning)
    layout: str = ""                # "" = the model's own layers; else a TinyNet layout string such
                                    # as "c8,c12,t8,m,c16,c16,c16" (tuning and sweeps, see model.py)
    rotate: float = 7.0             # augmentation: max rotation in degrees (0 = off)
    translate: float = 0.05         # augmentation: max shift as a fraction of 28 px (0.05 = 1.4 px)
    scale: float = 0.05             # augmentation: max zoom change, e.g. 0.05 = 0.95x..1.05x
    holdout: int = 0                # >0: train on the first 60000-holdout images and evaluate on
                                    # the last `holdout` (validation); 0: evaluate on the test set
    train_subset: int = 0           # >0: use only the first N training images (quick checks)
    test_subset: int = 0            # >0: evaluate on the first N evaluation images
    seed: int = 0                   # seeds weights, data order and augmentation
    device: str = "auto"            # auto (cuda if available) | cpu | cuda
    threads: int = 1                # CPU threads; 1 is fastest for these tiny convs (tinycnn bench)
    channels_last: bool = True      # NHWC memory format: faster convolutions on CPU

    def __post_init__(self) -> None:
        check_types(self)
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, not {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"schedule must be one of {', '.join(SCHEDULES)}, not {self.schedule!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"device must be auto, cpu or cuda, not {self.device!r}")
        positive = ("epochs", "batch_size", "lr", "threads", "step_size")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, not {getattr(self, name)}")
        for name in ("holdout", "train_subset", "test_subset", "rotate", "translate", "scale",
                     "weight_decay", "label_smoothing", "momentum"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must not be negative, not {getattr(self, name)}")
        if not 0 <= self.ema < 1:
            raise ConfigError(f"ema must be in [0, 1) (0 = off), not {self.ema}")
        if not (self.dropout == -1 or 0 <= self.dropout < 1):
            raise ConfigError(f"dropout must be -1 (model default) or in [0, 1), not {self.dropout}")
        if self.layout:
            from .model import check_layout
            try:
                check_layout(self.layout)
            except ValueError as e:
                raise ConfigError(str(e)) from None
        if self.holdout >= 60_000:
            raise ConfigError("holdout must leave training images (< 60000)")

    @classmethod
    def from_dict(cls, values: dict, where: str = "config") -> "TrainConfig":
        unknown = sorted(set(values) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}")
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
                              f"not {type(value).__name__} {value!r}")


@dataclass
class Experiment:
    """One step of the challenge: why (target), how (train settings, seeds), what we learned."""
    name: str
    title: str
    target: str
    analysis: str
    train: TrainConfig
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    path: str = ""


EXPERIMENT_KEYS = {"title", "target", "analysis", "seeds", "train"}


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


def load_experiment(path: str | Path) -> Experiment:
    path = Path(path)
    raw = read_toml(path, "experiment", EXPERIMENT_KEYS, EXPERIMENT_KEYS - {"seeds"})
    if not isinstance(raw["train"], dict):
        raise ConfigError(f"{path}: [train] must be a table")
    seeds = raw.get("seeds", [0, 1, 2, 3, 4])
    if not (isinstance(seeds, list) and seeds and all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)):
        raise ConfigError(f"{path}: seeds must be a non-empty list of integers")
    for key in ("title", "target", "analysis"):
        if not isinstance(raw[key], str):
            raise ConfigError(f"{path}: {key} must be a string")
    try:
        train = TrainConfig.from_dict(raw["train"], where=f"{path} [train]")
    except ConfigError as e:
        raise ConfigError(f"{path} [train]: {e}" if str(path) not in str(e) else str(e)) from None
    return Experiment(name=path.stem, title=raw["title"], target=raw["target"].strip(),
                      analysis=raw["analysis"].strip(), train=train, seeds=seeds, path=str(path))
