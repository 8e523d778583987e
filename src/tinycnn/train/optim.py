"""The optimiser a TrainConfig names, and its learning-rate schedule (stepped once per batch)."""
from __future__ import annotations

import math

import torch
from torch import nn

from tinycnn.train.config import TrainConfig


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
        # OneCycleLR divides by its warm-up's length in steps minus one: a warm-up of exactly one step
        # (5 steps in all at pct_start 0.2, a quick check on 640 images) would divide by zero; 1.5 works
        warmup = cfg.epochs * steps_per_epoch * cfg.pct_start
        pct_start = 1.5 * cfg.pct_start / warmup if math.isclose(warmup, 1.0) else cfg.pct_start
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=cfg.lr, epochs=cfg.epochs, steps_per_epoch=steps_per_epoch,
            pct_start=pct_start, div_factor=cfg.div_factor, final_div_factor=cfg.final_div_factor,
            cycle_momentum=cfg.optimizer == "sgd" and cfg.momentum > 0)
    if cfg.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.step_size * steps_per_epoch,
                                               gamma=cfg.gamma)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
