"""Run and experiment records on disk: the one reader and writer of their format.

A run folder (`tinycnn train`, and `<experiment folder>/seed<N>/` for each seed of `tinycnn run`):
  config.json        the run's TrainConfig
  metrics.json       its metrics record (below), rewritten after every epoch
  checkpoint.pt      training state after the last finished epoch (`resume`): model, weight
                     average, optimiser, scheduler, every random-number state, history, config
  model.safetensors  the evaluated weights (see weights.py), written when the run completes
  curves.png         loss and accuracy per epoch

An experiment folder (`tinycnn run`; reports/<experiment>/ by default):
  experiment.json    {"experiment": file, "seeds": [...], "config": {...}, "wall_seconds": s,
                      "workers": n, "trained": [...]}: how the last `tinycnn run` that trained
                      went (a resumed run trains, and times, only the seeds not yet finished)
  seed<N>.json       the metrics record of seed N (committed beside the reports that quote it)
  seed<N>/           the run folder of seed N (weights and checkpoint; not committed)

A metrics record (JSON), format 3:
  format 3; status "complete", "running" or "diverged"; config (TrainConfig as a dict); params;
  evaluated_on "test" or "validation" (the last `holdout` training images); history: one dict per
  epoch {epoch, train_loss, train_acc, eval_loss, eval_acc, lr, seconds} (accuracies in %, lr at the
  epoch's start); misclassified: [[index into the evaluation images, true, predicted], ...] after
  the last epoch; normalisation {mean, std}; wall_seconds; machine; data (where the images came
  from); diverged {epoch, step, lr} when status is "diverged".
Format 1 (no "format" key; the first records) named the evaluation metrics test_loss/test_acc
even on the validation split, and predates the settings in ADDED_SETTINGS. Formats 1 and 2 predate
step 3's faster layout: their `Model_3` is the layout step 3 had then (models/model.py). `read_metrics`
`read_experiment_run` and `load_checkpoint` upgrade both, so every reader sees format 3 (an
experiment.json and a checkpoint have their own "format" key from format 3 on).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from tinycnn.files import atomic_path, read_json, write_json
from tinycnn.models.model import layout_before_step3_changed
from tinycnn.ship.weights import WEIGHTS  # noqa: F401  (a run folder's files are all named here)
from tinycnn.train.config import ConfigError, TrainConfig
from tinycnn.train.data import DataError

FORMAT = 3
# Settings added after the first records, with the value that means "what runs before them did".
ADDED_SETTINGS = {"ema": 0.0, "processes": 1, "clean_epochs": 0}

CONFIG, METRICS, CHECKPOINT, CURVES = "config.json", "metrics.json", "checkpoint.pt", "curves.png"
EXPERIMENT = "experiment.json"


def upgrade_config(config: dict, format: int = FORMAT) -> dict:
    """Settings of a record of `format`, as a TrainConfig of today reads them."""
    config = {**ADDED_SETTINGS, **config}
    if format < 3:
        config["layout"] = layout_before_step3_changed(config["model"], config.get("layout", ""))
    return config


def upgrade(record: dict) -> dict:
    """A metrics record of any format as format 3 (settings it predates filled in as they were)."""
    format = record.get("format", 1)
    config = upgrade_config(record["config"], format)
    if format >= 2:
        return {**record, "format": FORMAT, "config": config}
    renamed = {"test_loss": "eval_loss", "test_acc": "eval_acc"}
    history = [{renamed.get(k, k): v for k, v in r.items()} for r in record["history"]]
    return {"format": FORMAT, "status": "complete", **record, "config": config, "history": history,
            "evaluated_on": "validation" if config["holdout"] else "test"}


def read_metrics(path: Path) -> dict:
    try:
        return upgrade(read_json(path))
    except (ValueError, KeyError, TypeError) as e:
        raise DataError(f"{path}: not a tinycnn metrics record ({e})") from None


def metrics_record(cfg: TrainConfig, history: list[dict], *, params: int, mean: float, std: float,
                   wall_seconds: float, machine: str, data: str, status: str = "complete",
                   misclassified: list | None = None, diverged: dict | None = None,
                   model_file_sha256: str | None = None) -> dict:
    record = {"format": FORMAT, "status": status, "config": cfg.to_dict(), "params": params,
              "evaluated_on": "validation" if cfg.holdout else "test", "history": history,
              "misclassified": misclassified or [], "normalisation": {"mean": mean, "std": std},
              "wall_seconds": wall_seconds, "machine": machine, "data": data}
    if diverged:
        record["diverged"] = diverged
    if model_file_sha256:  # a model of your own: the file it was trained with
        record["model_file_sha256"] = model_file_sha256
    return record


# ---------------------------------------------------------------------------- run folders
def write_metrics(folder: Path, record: dict) -> None:
    write_json(Path(folder) / METRICS, record)


def start_run(folder: Path, cfg: TrainConfig) -> None:
    write_json(Path(folder) / CONFIG, cfg.to_dict())


def save_checkpoint(folder: Path, state: dict) -> None:
    with atomic_path(Path(folder) / CHECKPOINT) as tmp:
        torch.save({**state, "format": FORMAT}, tmp)


def load_checkpoint(folder: Path) -> dict:
    """The training state saved after the last finished epoch; DataError if missing or damaged."""
    path = Path(folder) / CHECKPOINT
    if not path.is_file():
        raise ConfigError(f"{folder}: no {CHECKPOINT} to resume from (not a tinycnn run folder, or no epoch "
                          f"had finished)")
    try:
        state = torch.load(path, weights_only=True)  # tensors and plain containers only: no code
        state["config"] = upgrade_config(state["config"], state.get("format", 2))
        TrainConfig.from_dict(state["config"])
        return state
    except ConfigError as e:
        raise DataError(f"{path}: its settings are not valid here ({e})") from None
    except Exception as e:  # torch raises many kinds (zip reader, unpickler, EOF) for a damaged file
        raise DataError(f"{path}: damaged or not a tinycnn checkpoint ({type(e).__name__}: "
                        f"{str(e).splitlines()[0] if str(e) else 'unreadable'})") from None


def run_config(folder: Path) -> dict | None:
    """The settings a run folder was started with (None if it has none)."""
    path = Path(folder) / CONFIG
    return upgrade_config(read_json(path)) if path.is_file() else None


def run_status(folder: Path) -> str | None:
    """"complete", "running" (stopped midway), "diverged", or None when nothing ran there."""
    path = Path(folder) / METRICS
    if path.is_file():
        return read_metrics(path)["status"]
    return "running" if (Path(folder) / CHECKPOINT).is_file() else None


def holds_a_run(folder: Path) -> bool:
    return any((Path(folder) / name).exists() for name in (CONFIG, METRICS, CHECKPOINT, WEIGHTS))


# ---------------------------------------------------------------------------- experiment folders
def seed_path(folder: Path, seed: int) -> Path:
    return Path(folder) / f"seed{seed}.json"


def seed_run_folder(folder: Path, seed: int) -> Path:
    return Path(folder) / f"seed{seed}"


def write_seed(folder: Path, seed: int, record: dict) -> None:
    write_json(seed_path(folder, seed), record)


def read_seeds(folder: Path, seeds: list[int]) -> dict[int, dict] | None:
    """{seed: record} when every seed's record is there, else None."""
    paths = {seed: seed_path(folder, seed) for seed in seeds}
    if not all(p.exists() for p in paths.values()):
        return None
    return {seed: read_metrics(p) for seed, p in paths.items()}


@dataclass
class ExperimentRun:
    experiment: str         # the experiment file, as reports name it
    seeds: list[int]
    config: dict
    wall_seconds: float | None  # of the `tinycnn run` that wrote this file, for the seeds it trained
    workers: int | None
    trained: list[int] | None = None  # the seeds that run trained or finished (None: not recorded)


def write_experiment_run(folder: Path, run: ExperimentRun) -> None:
    write_json(Path(folder) / EXPERIMENT, {"format": FORMAT, **run.__dict__})


def read_experiment_run(folder: Path) -> ExperimentRun | None:
    path = Path(folder) / EXPERIMENT
    if not path.exists():
        return None
    raw = read_json(path)
    return ExperimentRun(raw["experiment"], raw["seeds"], upgrade_config(raw["config"], raw.get("format", 2)),
                         raw.get("wall_seconds"), raw.get("workers"), raw.get("trained"))
