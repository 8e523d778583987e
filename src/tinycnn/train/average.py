"""An exponential moving average of a model's weights, evaluated and shipped in place of the raw weights."""
from __future__ import annotations

import copy

import torch
from torch import nn


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
