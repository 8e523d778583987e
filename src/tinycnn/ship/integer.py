"""Integer-only int8 arithmetic for the C export, and its reference in PyTorch (the same integers).

The float layer plan (c.plan: batch norms folded into the convolutions before them) becomes a
chain of integer operations, the scheme of TensorFlow Lite Micro and CMSIS-NN:
  - activations: int8 with one scale and zero point per tensor (real = scale * (q - zero)),
    calibrated as min/max over the int8 ONNX export's 1,000 training images; the input is the raw
    pixel p itself (real = (p - round(255 * mean)) / (255 * std): the mean is rounded to a whole
    pixel level, a shift of at most half a level);
  - weights: int8 in [-127, 127] with one scale per output channel; biases int32 in accumulator units;
  - a convolution sums w * (q - zero) in int32, adds its bias and requantises: zero_out +
    (acc * mult) >> shift, rounded half away from zero, mult an int16 in [2^14, 2^15): no float at
    run time, and a result that no compiler or CPU can change;
  - ReLU clamps at the output's zero point, max pooling compares int8, the global average pool sums
    in int32 and requantises like a convolution, and the last layer writes int32 logits on one scale.
A batch norm that cannot be folded (after a ReLU or a pool) is a per-channel 1x1 convolution, and a
linear layer a convolution whose kernel covers its input map. What the arithmetic cannot hold
(an accumulator that could pass int32, a scale out of the multiplier's range) is refused, naming
the layer, before anything is written.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from tinycnn.errors import ConfigError
from tinycnn.ship.c import Layer

INT32_MAX = 2**31 - 1


@dataclass
class Conv:
    """One integer convolution; the input and output are int8 maps (the first layer's input: pixels)."""
    name: str
    shape_in: tuple              # (C, H, W)
    shape_out: tuple
    kernel: int
    stride: int
    padding: int
    groups: int
    weight: np.ndarray           # int8 (Cout, Cin / groups, k, k)
    bias: np.ndarray             # int32 per output channel, in units of input scale * weight scale
    mult: np.ndarray             # int16 per output channel
    shift: np.ndarray            # per output channel, 1..62
    in_zero: int                 # the input's zero point (the pixels': round(255 * mean))
    out_zero: int                # 0 for the logits
    relu: bool
    logits: bool = False         # the last layer: int32 logits on one scale, no zero point or clamp


@dataclass
class Pool:
    name: str
    shape_in: tuple
    shape_out: tuple
    kernel: int                  # window and stride (the C fuses such a pool into the layer before it)


@dataclass
class Gap:
    name: str
    shape_in: tuple
    shape_out: tuple
    mult: int
    shift: int
    in_zero: int
    out_zero: int


@dataclass
class Network:
    ops: list                    # Conv | Pool | Gap, in execution order
    logit_scale: float           # real logit = logit_scale * int32 logit


def multiplier(real: float, name: str) -> tuple[int, int]:
    """(mult, shift) with mult * 2^-shift = real, mult in [2^14, 2^15): an int16, exact to 2^-15 of
    the rescale, a thirtieth of a thousandth of an output step at most."""
    fraction, exponent = math.frexp(real)
    mult, shift = round(fraction * 2**15), 15 - exponent
    if mult == 2**15:
        mult, shift = mult // 2, shift - 1
    if not 1 <= shift <= 46:
        raise ConfigError(f"int8 C: layer {name} needs a rescale of {real:.3g}, outside what an int16 multiplier "
                          f"and shift express (its weights or activations are out of proportion)")
    return mult, shift


def activation_quant(low: float, high: float) -> tuple[float, int]:
    """(scale, zero point) of an int8 tensor seen in [low, high] (widened to hold 0)."""
    low, high = min(low, 0.0), max(high, 0.0)
    scale = (high - low) / 255.0 if high > low else 1.0
    return scale, int(np.clip(round(-128 - low / scale), -128, 127))


def as_convs(layers: list[Layer]) -> list[Layer]:
    """Every weighted layer as a convolution: a lone batch norm is a per-channel 1x1 conv, a linear
    layer a conv whose kernel is its input map (PyTorch flattens C, H, W: the kernel's own order)."""
    shaped, shape = [], (1, 28, 28)
    for layer in layers:
        if layer.kind == "batchnorm":
            c = shape[0]
            layer = Layer("conv", shape, shape, 1, 1, 0, c, layer.weight.reshape(c, 1, 1, 1), layer.bias,
                          layer.relu, layer.name)
        elif layer.kind == "linear":
            c, h, w = (shape + (1, 1))[:3]
            if h != w:
                raise ConfigError(f"int8 C: linear layer {layer.name} reads a {h}x{w} map; only square maps here")
            layer = Layer("conv", (c, h, w), (len(layer.weight), 1, 1), h, 1, 0, 1,
                          layer.weight.reshape(len(layer.weight), c, h, w), layer.bias, layer.relu, layer.name)
        elif layer.kind == "maxpool" and layer.kernel != layer.stride:
            raise ConfigError(f"int8 C: max pool {layer.name} has kernel {layer.kernel} and stride {layer.stride}; "
                              f"the integer C runs pools whose window is their stride")
        shaped.append(layer)
        shape = (layer.shape_out + (1, 1))[:3]
    for i, (first, then) in enumerate(zip(shaped, shaped[1:])):
        if first.kind == then.kind == "conv" and not first.relu and then.kernel == 1 and then.padding == 0 \
                and then.groups == 1:
            # a separable block's depthwise bias moves into the 1x1 conv after it (exact: nothing
            # non-linear between them), which saves the C a bias per channel of flash
            shaped[i + 1] = then = replace(then, bias=then.bias + then.weight.reshape(len(then.weight), -1) @ first.bias)
            shaped[i] = replace(first, bias=np.zeros_like(first.bias))
    return shaped


def float_run(layers: list[Layer], pixels: np.ndarray, mean: float, std: float) -> list[torch.Tensor]:
    """Each layer's float output (after its ReLU) on (N, 28, 28) pixels: what the ranges are read from."""
    x = ((torch.from_numpy(pixels.astype(np.float64)) / 255.0 - mean) / std)[:, None]
    seen = []
    for layer in layers:
        if layer.kind == "conv":
            x = F.conv2d(x, torch.from_numpy(layer.weight).double(), torch.from_numpy(layer.bias).double(),
                         layer.stride, layer.padding, 1, layer.groups)
            x = x.clamp(min=0) if layer.relu else x
        elif layer.kind == "maxpool":
            x = F.max_pool2d(x, layer.kernel)
        else:
            x = x.mean((2, 3), keepdim=True)
        seen.append(x)
    return seen


def quantise_network(layers: list[Layer], calibration: np.ndarray, mean: float, std: float) -> Network:
    """The integer network of a float layer plan, its activation ranges read on `calibration` pixels."""
    layers = as_convs(layers)
    if layers[-1].kind != "conv":
        raise ConfigError("int8 C: the model must end in a convolution or linear layer (the logits)")
    outputs = float_run(layers, calibration, mean, std)
    scale, zero = 1.0 / (255.0 * std), int(round(255.0 * mean))   # the input: pixels minus the rounded mean
    in_range = max(zero, 255 - zero)                               # the largest |q - zero| of the pixels
    ops: list = []
    for i, (layer, seen) in enumerate(zip(layers, outputs)):
        last = i == len(layers) - 1
        if layer.kind == "maxpool":
            ops.append(Pool(layer.name, layer.shape_in, layer.shape_out, layer.kernel))
            continue
        out_scale, out_zero = (None, 0) if last else activation_quant(float(seen.min()), float(seen.max()))
        if layer.kind == "gap":
            hw = layer.shape_in[1] * layer.shape_in[2]
            ops.append(Gap(layer.name, layer.shape_in, layer.shape_out, *multiplier(scale / (hw * out_scale), layer.name),
                           zero, out_zero))
        else:
            peak = np.abs(layer.weight.reshape(len(layer.weight), -1)).max(1)
            w_scale = np.where(peak > 0, peak / 127.0, 1.0)
            weight = np.clip(np.rint(layer.weight / w_scale[:, None, None, None]), -127, 127).astype(np.int8)
            bias = np.rint(layer.bias / (scale * w_scale))
            bound = np.abs(bias) + np.abs(weight.reshape(len(weight), -1).astype(np.int64)).sum(1) * in_range
            if bound.max() > INT32_MAX:
                raise ConfigError(f"int8 C: layer {layer.name} could reach {int(bound.max()):,} in its int32 "
                                  f"accumulator (over {INT32_MAX:,}): its bias or activations are out of range")
            if last:  # int32 logits on the scale of the widest channel
                logit_scale = scale * float(w_scale.max())
                rescale = w_scale / w_scale.max()
            else:
                rescale = scale * w_scale / out_scale
            mult, shift = zip(*(multiplier(float(r), layer.name) for r in rescale))
            ops.append(Conv(layer.name, layer.shape_in, (layer.shape_out + (1, 1))[:3], layer.kernel, layer.stride,
                            layer.padding, layer.groups, weight, bias.astype(np.int32), np.array(mult, np.int16),
                            np.array(shift, np.int8), zero, out_zero, layer.relu, last))
        if not last:
            scale, zero, in_range = out_scale, out_zero, max(abs(-128 - out_zero), abs(127 - out_zero))
    return Network(ops, logit_scale)


def rescaled(acc: torch.Tensor, mult, shift) -> torch.Tensor:
    """round(acc * mult / 2^shift), half away from zero, in int64: the C's `rescale`."""
    product = acc * torch.as_tensor(np.asarray(mult, np.int64)).reshape(-1, 1, 1)
    shift = torch.as_tensor(np.asarray(shift, np.int64)).reshape(-1, 1, 1)
    half = torch.ones_like(shift) << (shift - 1)
    return torch.where(product >= 0, (product + half) >> shift, -((-product + half) >> shift))


def reference_logits(network: Network, pixels: np.ndarray, batch: int = 500) -> np.ndarray:
    """The int32 logits of (N, 28, 28) uint8 pixels, computed layer by layer on whole maps in PyTorch:
    convolutions in float64 (exact: every product and partial sum is an integer far below 2^53),
    rescaling in int64. The C must give these, logit for logit."""
    found = []
    for start in range(0, len(pixels), batch):
        q = torch.from_numpy(pixels[start:start + batch].astype(np.int64))[:, None]
        for op in network.ops:
            if isinstance(op, Pool):
                q = F.max_pool2d(q.double(), op.kernel).long()
            elif isinstance(op, Gap):
                total = (q - op.in_zero).sum((2, 3), keepdim=True)
                q = (op.out_zero + rescaled(total, [op.mult], [op.shift])).clamp(-128, 127)
            else:
                acc = F.conv2d((q - op.in_zero).double(), torch.from_numpy(op.weight.astype(np.float64)), None,
                               op.stride, op.padding, 1, op.groups).round().long()
                acc = acc + torch.from_numpy(op.bias.astype(np.int64)).reshape(-1, 1, 1)
                out = rescaled(acc, op.mult, op.shift)
                q = out if op.logits else (op.out_zero + out).clamp(op.out_zero if op.relu else -128, 127)
        found.append(q.reshape(len(q), -1).numpy())
    return np.concatenate(found).astype(np.int32)
