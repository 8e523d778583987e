"""Pure augmentation functions over whole batches, and the on-device batch loader.

Images stay in [0, 1] (black background = 0) until after augmentation, so `grid_sample`'s zero
padding fills uncovered corners with the true background; normalisation comes last.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from tinycnn.train.data import standardise


@dataclass(frozen=True)
class AffineSpec:
    degrees: float = 0.0    # rotation drawn uniformly from [-degrees, +degrees]
    translate: float = 0.0  # shift drawn uniformly from [-translate, +translate] x image size
    scale: float = 0.0      # zoom factor drawn uniformly from [1 - scale, 1 + scale]

    @property
    def is_identity(self) -> bool:
        return self.degrees == 0 and self.translate == 0 and self.scale == 0


def affine_matrices(angles_deg: torch.Tensor, shifts: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """(N, 2, 3) matrices for `affine_grid`: rotate by angle, zoom by scale, shift by fraction.

    `affine_grid` maps output coordinates to input coordinates in [-1, 1] units, so the inverse
    of the wanted image transform is built: rotate by -angle, divide by the zoom, move back by
    the shift (a fraction f of the image is 2f in these units).
    """
    theta = torch.deg2rad(angles_deg)
    cos, sin = torch.cos(theta) / scales, torch.sin(theta) / scales
    tx, ty = -2 * shifts[:, 0], -2 * shifts[:, 1]
    row0 = torch.stack([cos, sin, cos * tx + sin * ty], dim=1)
    row1 = torch.stack([-sin, cos, -sin * tx + cos * ty], dim=1)
    return torch.stack([row0, row1], dim=1)


def affine_draws(n: int, spec: AffineSpec, generator: torch.Generator | None = None,
                 device: torch.device | str = "cpu") -> tuple[torch.Tensor, ...] | None:
    """Random (angles in degrees, shifts, zooms) for n images; None when `spec` changes nothing.

    Random draws use `generator` (which must live on `device`) so runs repeat exactly.
    """
    if spec.is_identity:
        return None

    def uniform(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator, device=device) * 2 - 1

    angles = uniform(n) * spec.degrees
    shifts = uniform(n, 2) * spec.translate
    scales = 1 + uniform(n) * spec.scale
    return angles, shifts, scales


def random_affine(images: torch.Tensor, spec: AffineSpec, generator: torch.Generator | None = None) -> torch.Tensor:
    """Randomly rotate, shift and zoom every image of an (N, C, H, W) float batch in [0, 1]."""
    draws = affine_draws(images.shape[0], spec, generator, images.device)
    return images if draws is None else affine_transform(images, *draws)


def affine_transform(images: torch.Tensor, angles_deg: torch.Tensor, shifts: torch.Tensor,
                     scales: torch.Tensor) -> torch.Tensor:
    """Apply the given per-image rotation (degrees), shift (fraction) and zoom; bilinear."""
    theta = affine_matrices(angles_deg, shifts, scales).to(images.dtype)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


class BatchLoader:
    """Yields (images, labels) batches from tensors that already live on the device.

    An epoch is a seeded permutation cut into batches; the last short batch is kept so every
    image is seen once per epoch. Augmentation and normalisation happen per batch, on device.
    Without shuffle (evaluation) the images come in order and are never augmented.
    """

    def __init__(self, images_uint8: torch.Tensor, labels: torch.Tensor, batch_size: int,
                 mean: float, std: float, *, shuffle: bool = False, augment: AffineSpec = AffineSpec(),
                 generator: torch.Generator | None = None, channels_last: bool = False):
        # (N, 28, 28) uint8 -> (N, 1, 28, 28) float in [0, 1]; 60k images are ~188 MB as float32.
        self.images = images_uint8.unsqueeze(1).float().div_(255.0)
        self.labels = labels
        self.batch_size = batch_size
        self.mean, self.std = mean, std
        self.shuffle, self.augment, self.generator = shuffle, augment, generator
        self.channels_last = channels_last
        self.part = None  # train on one part of each batch (data-parallel runs: shards.py)

    def __len__(self) -> int:
        return math.ceil(len(self.labels) / self.batch_size)

    def __iter__(self):
        n = len(self.labels)
        device = self.images.device
        if not self.shuffle:
            yield from self.in_order(slice(0, n))
            return
        order = torch.randperm(n, generator=self.generator, device=device)
        for start in range(0, n, self.batch_size):
            index = order[start:start + self.batch_size]
            draws = affine_draws(len(index), self.augment, self.generator, device)  # the whole batch's
            if self.part is not None:  # drawn alike in every process, so each keeps its own images' draws
                keep = self.part(len(index))
                index, draws = index[keep], draws and tuple(d[keep] for d in draws)
            x = self.images[index]
            x = x if draws is None else affine_transform(x, *draws)
            yield self.ready(x), self.labels[index]

    def in_order(self, part: slice):
        """The images of `part` in order, unaugmented, in batches (evaluation)."""
        for start in range(part.start, part.stop, self.batch_size):
            index = slice(start, min(start + self.batch_size, part.stop))
            yield self.ready(self.images[index]), self.labels[index]

    def ready(self, x: torch.Tensor) -> torch.Tensor:
        x = standardise(x, self.mean, self.std)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x
