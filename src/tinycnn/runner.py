"""One training run in its folder: settings first, a checkpoint and the metrics after every epoch,
the weights and curves once it completes; a stopped run resumes from its last finished epoch.

This is what `tinycnn train` does, and what each worker of `tinycnn run` does for one seed. The
folder's format belongs to records.py.
"""
from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import torch

from . import records
from .config import TrainConfig
from .data import MNIST, channel_stats
from .engine import Events, fit, model_for, split_for
from .errors import ConfigError, Diverged
from .files import check_writable
from .model import count_parameters
from .plots import plot_history
from .weights import save_weights


def machine_description(cfg: TrainConfig) -> str:
    if torch.cuda.is_available() and cfg.device != "cpu":
        return f"{torch.cuda.get_device_name()} (torch {torch.__version__})"
    return (f"{platform.machine()} CPU, {os.cpu_count()} cores, {cfg.threads} thread(s), "
            f"{torch.backends.cpu.get_cpu_capability()} kernels (torch {torch.__version__})")


def writable_folder(folder: Path) -> None:
    """Create `folder` and prove it writable, before any training starts."""
    try:
        check_writable(folder)
    except OSError as e:
        raise ConfigError(f"cannot write to the output folder {folder}: {e.strerror or e}") from None


def prepare_folder(folder: Path, force: bool = False) -> None:
    """An output folder must be writable and must not hold another run (unless `force`)."""
    if records.holds_a_run(folder) and not force:
        raise ConfigError(f"{folder} already holds a run: resume it with --resume {folder}, or pass --force "
                          f"to replace it")
    writable_folder(folder)
    for name in (records.CONFIG, records.METRICS, records.CHECKPOINT, records.WEIGHTS, records.CURVES):
        (folder / name).unlink(missing_ok=True)


class FolderEvents(Events):
    """Saves the checkpoint and the metrics so far after every epoch, then passes events on."""

    def __init__(self, folder: Path, record, inner: Events | None):
        self.folder, self.record, self.inner = folder, record, inner or Events()

    def epoch_start(self, epoch: int, steps: int) -> None:
        self.inner.epoch_start(epoch, steps)

    def step(self, step: int, loss: float, acc: float) -> None:
        self.inner.step(step, loss, acc)

    def epoch_end(self, record: dict, checkpoint) -> None:
        state = checkpoint()
        records.save_checkpoint(self.folder, state)
        records.write_metrics(self.folder, self.record(state["history"], "running"))
        self.inner.epoch_end(record, checkpoint)


def train_run(cfg: TrainConfig, folder: Path, data: MNIST, data_source: str,
              events: Events | None = None, resume: dict | None = None) -> dict:
    """Train `cfg` into `folder` (from the checkpoint state `resume`); returns the metrics record.

    A diverged run leaves its metrics (status "diverged") and raises Diverged.
    """
    folder = Path(folder)
    so_far = folder / records.METRICS
    earlier = records.read_metrics(so_far)["wall_seconds"] if resume and so_far.exists() else 0.0
    start = time.perf_counter()
    params = count_parameters(model_for(cfg))
    mean, std = channel_stats(split_for(cfg, data)[0])  # as the engine normalises the same images

    def record(history, status, **extra) -> dict:
        return records.metrics_record(cfg, history, params=params, mean=mean, std=std, status=status,
                                      wall_seconds=earlier + time.perf_counter() - start,
                                      machine=machine_description(cfg), data=data_source, **extra)

    records.start_run(folder, cfg)
    try:
        result = fit(cfg, data, FolderEvents(folder, record, events), resume)
    except Diverged as d:
        records.write_metrics(folder, record(d.history, "diverged",
                                             diverged={"epoch": d.epoch, "step": d.step, "lr": d.lr}))
        raise
    final = record(result.history, "complete", misclassified=records.misclassified(result.predicted, result.labels))
    save_weights(folder / records.WEIGHTS, result.model, cfg.model, cfg.layout, cfg.dropout, mean, std,
                 seed=cfg.seed, channels_last=cfg.channels_last, evaluated_on=final["evaluated_on"],
                 eval_acc=result.history[-1]["eval_acc"])
    plot_history([result.history], folder / records.CURVES, title=f"{cfg.model}, seed {cfg.seed}")
    records.write_metrics(folder, final)  # last: "complete" promises that everything above is there
    return final

