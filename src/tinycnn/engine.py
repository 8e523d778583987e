"""Training and evaluation as plain functions that return metrics.

`fit` is the whole run: seed, put the data on the device, build model/optimiser/schedule, then
`train_one_epoch` + `evaluate` per epoch into a history (list of per-epoch dicts).
Running sums stay on the device and are read once per epoch (or when a progress callback asks),
so a GPU never waits on the host inside the loop.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .augment import AffineSpec, BatchLoader
from .config import TrainConfig
from .data import MNIST, channel_stats, load_mnist
from .model import build_model

EVAL_BATCH = 2000        # evaluation has no backward pass, so large batches are cheapest
PROGRESS_EVERY = 25      # steps between progress callbacks (each reads two numbers)

StepCallback = Callable[[int, float, float], None]     # (steps done, mean loss, accuracy %)
EpochCallback = Callable[[dict], None]


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for but no CUDA GPU is available")
    return torch.device(name)


@dataclass
class Loaders:
    train: BatchLoader
    test: BatchLoader
    mean: float
    std: float


def split_for(cfg: TrainConfig, data: MNIST) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train images, train labels, evaluation images, evaluation labels) that `cfg` uses."""
    train_x, train_y = data.train_images, data.train_labels
    if cfg.holdout:
        # Validation = the last `holdout` training images; the test set is not touched.
        eval_x, eval_y = train_x[-cfg.holdout:], train_y[-cfg.holdout:]
        train_x, train_y = train_x[:-cfg.holdout], train_y[:-cfg.holdout]
    else:
        eval_x, eval_y = data.test_images, data.test_labels
    if cfg.train_subset:
        train_x, train_y = train_x[:cfg.train_subset], train_y[:cfg.train_subset]
    if cfg.test_subset:
        eval_x, eval_y = eval_x[:cfg.test_subset], eval_y[:cfg.test_subset]
    return train_x, train_y, eval_x, eval_y


def make_loaders(cfg: TrainConfig, data: MNIST, device: torch.device) -> Loaders:
    """Pick the images (holdout/subsets), compute the normalisation, move everything to device."""
    train_x, train_y, test_x, test_y = split_for(cfg, data)
    mean, std = channel_stats(train_x)
    generator = torch.Generator(device=device).manual_seed(cfg.seed)

    def tensors(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)

    augment = AffineSpec(degrees=cfg.rotate, translate=cfg.translate, scale=cfg.scale)
    train = BatchLoader(*tensors(train_x, train_y), cfg.batch_size, mean, std, shuffle=True,
                        augment=augment, generator=generator, channels_last=cfg.channels_last)
    test = BatchLoader(*tensors(test_x, test_y), EVAL_BATCH, mean, std,
                       channels_last=cfg.channels_last)
    return Loaders(train, test, mean, std)


def model_for(cfg: TrainConfig) -> nn.Module:
    """The model a config trains (the registered one, or its tuning overrides)."""
    return build_model(cfg.model, cfg.dropout, cfg.layout)


def make_optimizer(cfg: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    params = model.parameters()
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum,
                               nesterov=cfg.nesterov and cfg.momentum > 0, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def make_scheduler(cfg: TrainConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int):
    """A scheduler stepped once per batch (StepLR's step_size is converted from epochs)."""
    if cfg.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=cfg.lr, epochs=cfg.epochs, steps_per_epoch=steps_per_epoch,
            pct_start=cfg.pct_start, div_factor=cfg.div_factor, final_div_factor=cfg.final_div_factor,
            cycle_momentum=cfg.optimizer == "sgd" and cfg.momentum > 0)
    if cfg.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.step_size * steps_per_epoch,
                                               gamma=cfg.gamma)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)


class WeightAverage:
    """An exponential moving average of a model's weights, evaluated in place of the raw weights.

    Batch-norm running statistics are averaged with the same decay as the weights: they describe
    the activations of the recent weights that the average is made of (keeping the raw model's
    statistics would pair averaged weights with the last batches' statistics). The decay warms up
    as min(decay, (1 + t) / (10 + t)) after t updates, so the random initial weights are forgotten
    within the first epoch instead of lingering for 1 / (1 - decay) steps.
    """

    def __init__(self, model: nn.Module, decay: float):
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay, self.updates = decay, 0
        self.source = averaged_tensors(model)
        self.average = averaged_tensors(self.model)

    @torch.no_grad()
    def update(self) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        torch._foreach_lerp_(self.average, self.source, 1 - decay)


def averaged_tensors(model: nn.Module) -> list[torch.Tensor]:
    """Parameters and floating-point buffers (BN means and variances; not the batch counter)."""
    return [t.detach() for t in (*model.parameters(), *model.buffers()) if t.is_floating_point()]


def train_one_epoch(model: nn.Module, loader: BatchLoader, optimizer: torch.optim.Optimizer,
                    scheduler, label_smoothing: float = 0.0,
                    on_step: StepCallback | None = None, average: WeightAverage | None = None) -> dict:
    """One pass over the training batches; returns mean loss and accuracy (%)."""
    model.train()
    device = loader.images.device
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    seen = 0
    for step, (x, y) in enumerate(loader, 1):
        logits = model(x)
        loss = F.cross_entropy(logits, y, label_smoothing=label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if average is not None:
            average.update()
        with torch.no_grad():
            loss_sum += loss.detach() * len(y)
            correct += (logits.argmax(1) == y).sum()
        seen += len(y)
        if on_step is not None and (step % PROGRESS_EVERY == 0 or step == len(loader)):
            on_step(step, loss_sum.item() / seen, 100.0 * correct.item() / seen)
    return {"loss": loss_sum.item() / seen, "acc": 100.0 * correct.item() / seen}


@torch.inference_mode()
def evaluate(model: nn.Module, loader: BatchLoader) -> dict:
    """Mean loss, accuracy (%) and the predicted label of every image (numpy int64)."""
    model.eval()
    device = loader.images.device
    loss_sum = torch.zeros((), device=device)
    predictions = []
    for x, y in loader:
        logits = model(x)
        loss_sum += F.cross_entropy(logits, y, reduction="sum")
        predictions.append(logits.argmax(1))
    predicted = torch.cat(predictions)
    correct = (predicted == loader.labels).sum().item()
    n = len(loader.labels)
    return {"loss": loss_sum.item() / n, "acc": 100.0 * correct / n, "predicted": predicted.cpu().numpy()}


@dataclass
class FitResult:
    model: nn.Module
    optimizer: torch.optim.Optimizer
    history: list[dict]
    predicted: np.ndarray     # final-epoch predictions on the evaluation images
    labels: np.ndarray        # their true labels
    mean: float
    std: float


def fit(cfg: TrainConfig, data: MNIST | None = None, on_step: StepCallback | None = None,
        on_epoch: EpochCallback | None = None, on_epoch_start: Callable[[int, int], None] | None = None) -> FitResult:
    """Train `cfg.model` for `cfg.epochs`; returns the model, optimiser and per-epoch history."""
    device = resolve_device(cfg.device)
    if device.type == "cpu":
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)  # weights and dropout masks; data order uses its own generator
    data = data if data is not None else load_mnist()
    loaders = make_loaders(cfg, data, device)
    model = model_for(cfg).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(cfg, model)
    scheduler = make_scheduler(cfg, optimizer, len(loaders.train))
    average = WeightAverage(model, cfg.ema) if cfg.ema else None
    evaluated = average.model if average else model

    history: list[dict] = []
    result = None
    for epoch in range(1, cfg.epochs + 1):
        if on_epoch_start:
            on_epoch_start(epoch, len(loaders.train))
        start = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        train = train_one_epoch(model, loaders.train, optimizer, scheduler, cfg.label_smoothing, on_step, average)
        result = evaluate(evaluated, loaders.test)
        record = {"epoch": epoch, "train_loss": train["loss"], "train_acc": train["acc"],
                  "test_loss": result["loss"], "test_acc": result["acc"], "lr": lr,
                  "seconds": time.perf_counter() - start}
        history.append(record)
        if on_epoch:
            on_epoch(record)
    return FitResult(evaluated, optimizer, history, result["predicted"],
                     loaders.test.labels.cpu().numpy(), loaders.mean, loaders.std)
