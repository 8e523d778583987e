"""What a finished training run leaves behind: a metrics record and a run folder.

A run folder holds config.json, metrics.json (the history and final facts), checkpoint.pt
(model state, optimiser state, config: a plain dict) and curves.png.
"""
from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import torch

from .config import TrainConfig
from .engine import FitResult
from .model import count_parameters


def metrics_record(cfg: TrainConfig, result: FitResult, wall_seconds: float) -> dict:
    """Everything a report needs about one run, as JSON-ready data."""
    wrong = (result.predicted != result.labels).nonzero()[0]
    return {
        "config": cfg.to_dict(),
        "params": count_parameters(result.model),
        "history": result.history,
        # [index into the evaluation images, true label, predicted label] after the last epoch
        "misclassified": [[int(i), int(result.labels[i]), int(result.predicted[i])] for i in wrong],
        "normalisation": {"mean": result.mean, "std": result.std},
        "wall_seconds": wall_seconds,
        "machine": machine_description(cfg),
    }


def machine_description(cfg: TrainConfig) -> str:
    if torch.cuda.is_available() and cfg.device != "cpu":
        return f"{torch.cuda.get_device_name()} (torch {torch.__version__})"
    return f"{platform.machine()} CPU, {os.cpu_count()} cores, {cfg.threads} thread(s) (torch {torch.__version__})"


def write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)


def read_json(path: Path):
    return json.loads(Path(path).read_text())


def save_run(folder: Path, cfg: TrainConfig, result: FitResult, record: dict) -> None:
    from .plots import plot_history  # matplotlib is only needed once there is something to plot

    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "config.json", cfg.to_dict())
    write_json(folder / "metrics.json", record)
    torch.save({"model": result.model.state_dict(), "optimizer": result.optimizer.state_dict(),
                "config": cfg.to_dict(), "normalisation": record["normalisation"]},
               folder / "checkpoint.pt")
    plot_history([record["history"]], folder / "curves.png", title=f"{cfg.model}, seed {cfg.seed}")
