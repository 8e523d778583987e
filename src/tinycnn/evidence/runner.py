"""One training run in its folder: settings first, a checkpoint and the metrics after every epoch,
the weights and curves once it completes; a stopped run resumes from its last finished epoch.

This is what `tinycnn train` does, and what each worker of `tinycnn run` does for one seed. The
folder's format belongs to records.py.
"""
from __future__ import annotations

import time
from pathlib import Path

from tinycnn.errors import ConfigError, Diverged
from tinycnn.evidence import records
from tinycnn.evidence.plots import plot_history
from tinycnn.files import check_writable
from tinycnn.machine import machine_description
from tinycnn.models.model import count_parameters
from tinycnn.models.spec import ModelSpec
from tinycnn.ship.inference import misclassified
from tinycnn.ship.weights import save_weights
from tinycnn.train.config import TrainConfig
from tinycnn.train.data import MNIST
from tinycnn.train.engine import Events, Training, fit


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


class RunFolder(Events):
    """Writes the run folder as `fit` goes: the checkpoint and the metrics so far after every epoch;
    passes every event on to `inner` (a progress bar, a worker's messages)."""

    def __init__(self, cfg: TrainConfig, folder: Path, data_source: str, inner: Events | None, earlier: float):
        self.cfg, self.folder, self.data_source, self.inner = cfg, folder, data_source, inner or Events()
        self.earlier, self.started = earlier, time.perf_counter()  # wall time of the run before a resume
        self.training: Training | None = None

    def record(self, status: str, **extra) -> dict:
        training = self.training
        spec = ModelSpec.of(self.cfg)
        if spec.is_file:  # what `tinycnn check` compares with the file as it is now
            extra["model_file_sha256"] = spec.sha256()
        return records.metrics_record(self.cfg, training.history, params=count_parameters(training.model),
                                      mean=training.loaders.mean, std=training.loaders.std, status=status,
                                      wall_seconds=self.earlier + time.perf_counter() - self.started,
                                      machine=machine_description(self.cfg.device, self.cfg.threads, self.cfg.processes),
                                      data=self.data_source, **extra)

    def start(self, training: Training) -> None:
        self.training = training
        self.inner.start(training)

    def epoch_start(self, epoch: int, steps: int) -> None:
        self.inner.epoch_start(epoch, steps)

    def step(self, step: int, loss: float, acc: float) -> None:
        self.inner.step(step, loss, acc)

    def epoch_end(self, training: Training) -> None:
        records.save_checkpoint(self.folder, training.checkpoint())
        records.write_metrics(self.folder, self.record("running"))
        self.inner.epoch_end(training)


def train_run(cfg: TrainConfig, folder: Path, data: MNIST, data_source: str,
              events: Events | None = None, resume: dict | None = None) -> dict:
    """Train `cfg` into `folder` (from the checkpoint state `resume`); returns the metrics record.

    A diverged run leaves its metrics (status "diverged") and raises Diverged.
    """
    folder = Path(folder)
    so_far = folder / records.METRICS
    earlier = records.read_metrics(so_far)["wall_seconds"] if resume and so_far.exists() else 0.0
    run = RunFolder(cfg, folder, data_source, events, earlier)
    records.start_run(folder, cfg)
    try:
        result = fit(cfg, data, run, resume)
    except Diverged as d:
        records.write_metrics(folder, run.record("diverged", diverged={"epoch": d.epoch, "step": d.step, "lr": d.lr}))
        raise
    final = run.record("complete", misclassified=misclassified(result.predicted, result.labels))
    norm = run.training.loaders
    spec = ModelSpec.of(cfg)
    model_file = {"model_file_sha256": final["model_file_sha256"]} if spec.is_file else {}
    save_weights(folder / records.WEIGHTS, result.model, spec, norm.mean, norm.std,
                 **model_file, seed=cfg.seed, channels_last=cfg.channels_last, evaluated_on=final["evaluated_on"],
                 eval_acc=result.history[-1]["eval_acc"])
    plot_history([result.history], folder / records.CURVES, title=f"{spec.label}, seed {cfg.seed}")
    records.write_metrics(folder, final)  # last: "complete" promises that everything above is there
    return final
