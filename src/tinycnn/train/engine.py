"""Training and evaluation as plain functions that return metrics.

`fit` is the whole run: seed, put the data on the device, build model/optimiser/schedule once
(a `Training`), then `train_one_epoch` + `evaluate` per epoch into a history (list of per-epoch
dicts). Running sums stay on the device and are read once per epoch (or when progress is
reported), so a GPU never waits on the host inside the loop. `Events` see the `Training` when it
starts and after every epoch: the built model, its normalisation, the history, and the whole
state to resume from (`Training.checkpoint`); `fit(..., resume=state)` continues from it with
identical results. With cfg.processes > 1 the same loop (`run_epochs`) runs in as many processes,
each on its part of every batch (shards.py); this process reports and the others only compute.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tinycnn.errors import ConfigError, Diverged
from tinycnn.models.spec import ModelSpec
from tinycnn.train.augment import AffineSpec, BatchLoader
from tinycnn.train.average import WeightAverage
from tinycnn.train.config import TrainConfig
from tinycnn.train.data import MNIST, channel_stats, load_mnist, split_for
from tinycnn.train.optim import make_optimizer, make_scheduler
from tinycnn.train.shards import Shard, exchange_size, start_helpers, stop_helpers

EVAL_BATCH = 2000        # evaluation has no backward pass, so large batches are cheapest
PROGRESS_EVERY = 25      # steps between progress reports (each reads a few numbers from the device)


class Events:
    """What `fit` reports while it runs: subclass and override what you need (all no-ops here)."""

    def start(self, training: Training) -> None:
        """Once, with the model built and the data normalised, before the first (or resumed) epoch."""

    def epoch_start(self, epoch: int, steps: int) -> None:
        pass

    def step(self, step: int, loss: float, acc: float) -> None:
        """Every PROGRESS_EVERY steps and at the epoch's end: running mean loss and accuracy (%)."""

    def epoch_end(self, training: Training) -> None:
        """After each epoch: `training.history[-1]` is its entry; `training.checkpoint()` the state to resume from."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA GPU is available here (use --device auto or cpu)", key="device")
    return torch.device(name)


@dataclass
class Loaders:
    train: BatchLoader
    eval: BatchLoader
    mean: float
    std: float


def make_loaders(cfg: TrainConfig, data: MNIST, device: torch.device, shard: Shard | None = None) -> Loaders:
    """Pick the images (holdout/subsets), compute the normalisation, move everything to device.
    With a shard, this process trains on its part of every batch (shards.py)."""
    train_x, train_y, eval_x, eval_y = split_for(cfg, data)
    mean, std = channel_stats(train_x)
    generator = torch.Generator(device=device).manual_seed(cfg.seed)

    def tensors(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)

    augment = AffineSpec(degrees=cfg.rotate, translate=cfg.translate, scale=cfg.scale)
    train = BatchLoader(*tensors(train_x, train_y), cfg.batch_size, mean, std, shuffle=True,
                        augment=augment, generator=generator, channels_last=cfg.channels_last)
    train.part = shard.part if shard else None
    evaluation = BatchLoader(*tensors(eval_x, eval_y), EVAL_BATCH, mean, std, channels_last=cfg.channels_last)
    return Loaders(train, evaluation, mean, std)


class NonFinite(Exception):
    def __init__(self, step: int, lr: float):
        self.step, self.lr = step, lr


def train_one_epoch(model: nn.Module, loader: BatchLoader, optimizer: torch.optim.Optimizer, scheduler,
                    label_smoothing: float = 0.0, events: Events | None = None,
                    average: WeightAverage | None = None, shard: Shard | None = None) -> dict:
    """One pass over the training batches; returns mean loss and accuracy (%).

    With a shard, this process's part of each batch is scored by the whole batch's size and the
    processes' gradients are added (shards.py), so loss and accuracy are the whole batch's.

    Raises NonFinite (step, its learning rate) once a step's loss is not finite. The first such
    step is tracked on the device and read with the progress, so the loop never waits for it.
    """
    model.train()
    device = loader.images.device
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    first_bad = torch.zeros((), dtype=torch.long, device=device)  # 0: every loss finite so far
    lrs, seen = [], 0
    for step, (x, y) in enumerate(loader, 1):
        lrs.append(optimizer.param_groups[0]["lr"])
        logits = model(x)
        hits = (logits.detach().argmax(1) == y).sum()
        if shard is None:
            batch, loss = len(y), F.cross_entropy(logits, y, label_smoothing=label_smoothing)
        else:  # the whole batch's size, of which this process holds a part
            batch = min(loader.batch_size, len(loader.labels) - seen)
            loss = F.cross_entropy(logits, y, label_smoothing=label_smoothing, reduction="sum") / batch
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if shard is not None:
            loss, hits = shard.add_gradients(model, loss.detach(), hits)
        optimizer.step()
        scheduler.step()
        if average is not None:
            average.update()
        with torch.no_grad():
            loss_sum += loss.detach() * batch
            correct += hits.long()
            first_bad = torch.where((first_bad == 0) & ~torch.isfinite(loss), step, first_bad)
        seen += batch
        if step % PROGRESS_EVERY == 0 or step == len(loader):
            if bad := first_bad.item():
                raise NonFinite(bad, lrs[bad - 1])
            if events is not None:
                events.step(step, loss_sum.item() / seen, 100.0 * correct.item() / seen)
    return {"loss": loss_sum.item() / seen, "acc": 100.0 * correct.item() / seen}


@torch.inference_mode()
def evaluate(model: nn.Module, loader: BatchLoader, shard: Shard | None = None) -> dict:
    """Mean loss, accuracy (%) and the predicted label of every image (numpy int64). With a shard,
    each process scores its part of the images and the parts are put together."""
    model.eval()
    device = loader.images.device
    n = len(loader.labels)
    own = shard.part(n) if shard else slice(0, n)
    loss_sum = torch.zeros((), device=device)
    predictions = []
    for x, y in loader.in_order(own):
        logits = model(x)
        loss_sum += F.cross_entropy(logits, y, reduction="sum")
        predictions.append(logits.argmax(1))
    predicted = torch.cat(predictions)
    if shard is not None:
        predicted, loss_sum = shard.put_together(predicted, loss_sum, own, n)
    correct = (predicted == loader.labels).sum().item()
    return {"loss": loss_sum.item() / n, "acc": 100.0 * correct / n, "predicted": predicted.cpu().numpy()}


@dataclass
class Training:
    """Everything one run trains with, built once by `fit`: what a checkpoint saves and restores."""
    cfg: TrainConfig
    device: torch.device
    loaders: Loaders                  # the images, and their normalisation (loaders.mean, loaders.std)
    model: nn.Module                  # the trained weights
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    average: WeightAverage | None
    history: list[dict]

    @property
    def evaluated(self) -> nn.Module:
        """The model that is evaluated and shipped: the weight average when cfg.ema > 0."""
        return self.average.model if self.average else self.model

    def checkpoint(self) -> dict:
        """The whole state after the last finished epoch, as a plain dict (torch.save-able)."""
        return {"config": self.cfg.to_dict(), "epoch": len(self.history), "history": self.history,
                "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "average": self.average.model.state_dict() if self.average else None,
                "average_updates": self.average.updates if self.average else 0,
                "rng": {"torch": torch.get_rng_state(), "loader": self.loaders.train.generator.get_state(),
                        "cuda": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else []}}

    def restore(self, state: dict) -> None:
        """Load a checkpoint state (from `checkpoint`) into the training objects."""
        # A copy: the optimiser keeps the state's own tensors as its momentum buffers, and a state
        # handed to helper processes lies in shared memory, where two processes would update them.
        state = copy.deepcopy(state)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.average is not None:
            self.average.model.load_state_dict(state["average"])
            self.average.updates = state["average_updates"]
        torch.set_rng_state(state["rng"]["torch"])
        self.loaders.train.generator.set_state(state["rng"]["loader"])
        if self.device.type == "cuda" and state["rng"]["cuda"]:
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        self.history = list(state["history"])


def prepare(cfg: TrainConfig, data: MNIST, module: nn.Module | None = None, shard: Shard | None = None) -> Training:
    """Seed, put the images on the device, build the model (or take `module`, a model built in
    Python, from its current weights), optimiser, schedule and average."""
    device = resolve_device(cfg.device)
    if device.type == "cpu":
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)  # weights and dropout masks; data order uses its own generator
    loaders = make_loaders(cfg, data, device, shard)
    model = (ModelSpec.of(cfg).build() if module is None else module).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(cfg, model)
    scheduler = make_scheduler(cfg, optimizer, len(loaders.train))
    average = WeightAverage(model, cfg.ema) if cfg.ema else None
    return Training(cfg, device, loaders, model, optimizer, scheduler, average, [])


@dataclass
class FitResult:
    model: nn.Module          # the evaluated model (the weight average when cfg.ema > 0)
    history: list[dict]
    predicted: np.ndarray     # final-epoch predictions on the evaluation images
    labels: np.ndarray        # their true labels
    mean: float               # the normalisation the model was trained with (its training images')
    std: float


def fit(cfg: TrainConfig, data: MNIST | None = None, events: Events | None = None,
        resume: dict | None = None, module: nn.Module | None = None) -> FitResult:
    """Train `cfg.model` (or `module`) for `cfg.epochs` (from a checkpoint state when `resume` is given),
    in this process and, when cfg.processes > 1, as many helper processes (shards.py).

    Raises Diverged, with the history so far, when the training loss stops being finite.
    """
    check_processes(cfg, module)
    data = data if data is not None else load_mnist()
    if cfg.processes == 1:
        return run_epochs(cfg, data, events, resume, module)
    shard = start_helpers(cfg, data, resume, exchange_size(cfg, data))
    try:
        return run_epochs(cfg, data, events, resume, shard=shard)
    finally:
        stop_helpers(shard)


def check_processes(cfg: TrainConfig, module: nn.Module | None = None) -> None:
    """ConfigError for a device this machine lacks, or where cfg.processes > 1 cannot work: a model
    only this process has, or a GPU."""
    device = resolve_device(cfg.device)
    if cfg.processes == 1:
        return
    if module is not None:
        raise ConfigError("processes > 1 trains copies in other processes, which build the model by its name: "
                          "give a registry name or FILE.py:NAME, or set processes = 1", key="processes")
    if device.type != "cpu":
        raise ConfigError("processes > 1 shares a batch between CPU cores: set device = cpu, or processes = 1 "
                          "on a GPU", key="processes")


def run_epochs(cfg: TrainConfig, data: MNIST, events: Events | None = None, resume: dict | None = None,
               module: nn.Module | None = None, shard: Shard | None = None) -> FitResult:
    """`fit`'s body, in every process of a run (a helper's events are the silent defaults)."""
    events = events or Events()
    training = prepare(cfg, data, module, shard)
    if resume is not None:
        training.restore(resume)
    events.start(training)
    loaders, history = training.loaders, training.history
    augment = loaders.train.augment
    result = evaluate(training.evaluated, loaders.eval, shard) if len(history) == cfg.epochs else None
    for epoch in range(len(history) + 1, cfg.epochs + 1):
        # the last clean_epochs epochs train on the images as they are (set per epoch: a resumed run too)
        loaders.train.augment = augment if epoch <= cfg.epochs - cfg.clean_epochs else AffineSpec()
        events.epoch_start(epoch, len(loaders.train))
        start = time.perf_counter()
        lr = training.optimizer.param_groups[0]["lr"]
        try:
            train = train_one_epoch(training.model, loaders.train, training.optimizer, training.scheduler,
                                    cfg.label_smoothing, events, training.average, shard)
        except NonFinite as bad:
            raise Diverged(epoch, bad.step, bad.lr, history) from None
        result = evaluate(training.evaluated, loaders.eval, shard)
        history.append({"epoch": epoch, "train_loss": train["loss"], "train_acc": train["acc"],
                        "eval_loss": result["loss"], "eval_acc": result["acc"], "lr": lr,
                        "seconds": time.perf_counter() - start})
        events.epoch_end(training)
    return FitResult(training.evaluated, history, result["predicted"], loaders.eval.labels.cpu().numpy(),
                     loaders.mean, loaders.std)
