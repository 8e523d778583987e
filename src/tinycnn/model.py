"""Tiny MNIST CNNs built from a few small blocks, and the registry that names them.

A network is written as a short layout string, read left to right:
  c16   3x3 conv block (conv-BN-ReLU-dropout) with 16 output channels, no padding (n -= 2)
  c16p  the same with padding 1 (size kept)
  c16k5 the same with a 5x5 kernel (n -= 4; c16pk5 pads 2): a first layer that sees RF 5 at once
  s24   depthwise-separable block: a 3x3 conv per channel, BN, a 1x1 conv to 24 channels, BN,
        ReLU (n -= 2; s24p pads 1); about a ninth of a full 3x3's weights for the same widths
  t10   1x1 transition conv to 10 channels (mixes channels, no BN/ReLU: it feeds a pool or conv)
  m     2x2 max pool (halves the size, doubles the jump of the receptive field)
and always ends in the head: global average pool, then a 1x1 conv to the 10 classes.
The three challenge steps are `Model_1`, `Model_2`, `Model_3`; their docstrings carry the step's
Target / Result / Analysis, and tests check the Result lines against the committed metrics.
"""
from __future__ import annotations

import inspect
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from torch import nn

from .config import LAYOUT_TOKEN, TrainConfig, check_layout
from .data import NUM_CLASSES
from .errors import ConfigError, UnknownModelError
from .model_file import is_model_file, load_model_file, model_label


@dataclass(frozen=True)
class ModelInfo:
    build: Callable[..., nn.Module]   # takes an optional dropout rate
    experiment: str                   # the experiment that reports it (experiments/<name>.toml);
                                      # its shipped weights are models/<experiment>.safetensors

    @property
    def summary(self) -> str:
        """The first line of the model's docstring: what it is."""
        return inspect.getdoc(self.build).splitlines()[0]


MODELS: dict[str, ModelInfo] = {}


def register(experiment: str) -> Callable:
    """Register a model builder under its function name; a second model of that name is an error."""
    def add(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if fn.__name__ in MODELS:
            raise ValueError(f"a model named {fn.__name__!r} is registered already")
        MODELS[fn.__name__] = ModelInfo(fn, experiment)
        return fn
    return add


def model_info(name: str) -> ModelInfo:
    if name not in MODELS:
        raise UnknownModelError(name, list(MODELS))
    return MODELS[name]


def build_model(name: str, dropout: float = -1.0, layout: str = "") -> nn.Module:
    """The registered model `name`; for tuning runs, dropout >= 0 replaces the model's own rate
    and a non-empty layout replaces its layers by a TinyNet of that layout."""
    build = model_info(name).build
    if layout:
        return TinyNet(layout, max(dropout, 0.0))
    return build() if dropout < 0 else build(dropout=dropout)


def model_for(cfg: TrainConfig) -> nn.Module:
    """The model a config trains: the registered one (or its tuning overrides), or a user's FILE.py:NAME."""
    if is_model_file(cfg.model):
        if cfg.layout:
            raise ConfigError(f"--layout changes registered models only, not {model_label(cfg.model)}", key="model")
        model = load_model_file(cfg.model)
        return model if cfg.dropout < 0 else with_dropout(model, cfg.dropout, model_label(cfg.model))
    return build_model(cfg.model, cfg.dropout, cfg.layout)


def with_dropout(model: nn.Module, rate: float, label: str) -> nn.Module:
    """A user's model with every dropout layer set to `rate` (dropout called in forward, F.dropout,
    is the user's code and cannot be reached: a model with no dropout layer is refused)."""
    layers = [m for m in model.modules() if isinstance(m, nn.modules.dropout._DropoutNd)]
    if not layers:
        raise ConfigError(f"--dropout {rate:g}: {label} has no dropout layer (nn.Dropout, nn.Dropout2d, ...) to set",
                          key="dropout")
    for layer in layers:
        layer.p = rate
    return model


def model_from_spec(spec: str, base: Path = Path(".")) -> nn.Module:
    """A registered model by name, or a user's model from FILE.py:NAME (FILE relative to `base`)."""
    if spec in MODELS:
        return build_model(spec)
    if is_model_file(spec):
        return load_model_file(spec, base)
    raise UnknownModelError(spec, list(MODELS))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------------------- blocks
class ConvBlock(nn.Sequential):
    """3x3 (or kxk) conv (no bias: BN supplies it) -> BatchNorm -> ReLU -> optional dropout."""

    def __init__(self, cin: int, cout: int, padding: int = 0, dropout: float = 0.0, kernel: int = 3):
        layers = [nn.Conv2d(cin, cout, kernel, padding=padding, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout2d(dropout))
        super().__init__(*layers)


class SeparableBlock(nn.Sequential):
    """3x3 depthwise conv -> BatchNorm -> 1x1 conv -> BatchNorm -> ReLU -> optional dropout: 9*cin +
    cin*cout weights instead of 9*cin*cout. No ReLU between the two convs: the 1x1 mixes the
    per-channel filters linearly first, so together they act as one (factorised) 3x3 layer."""

    def __init__(self, cin: int, cout: int, padding: int = 0, dropout: float = 0.0):
        layers = [nn.Conv2d(cin, cin, 3, padding=padding, groups=cin, bias=False), nn.BatchNorm2d(cin),
                  nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout2d(dropout))
        super().__init__(*layers)


class Transition(nn.Sequential):
    """1x1 conv that changes the channel count cheaply (cin*cout weights)."""

    def __init__(self, cin: int, cout: int):
        super().__init__(nn.Conv2d(cin, cout, 1, bias=False))


class Head(nn.Sequential):
    """Global average pool, then a 1x1 conv to class logits: no big fully connected layer."""

    def __init__(self, cin: int, classes: int = NUM_CLASSES):
        super().__init__(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin, classes, 1, bias=False), nn.Flatten())


class TinyNet(nn.Sequential):
    """A straight chain of blocks described by a layout string (see the module docstring)."""

    def __init__(self, layout: str, dropout: float = 0.0, in_channels: int = 1):
        layers: dict[str, nn.Module] = {}  # named conv1, sep1, trans1, pool1, ... for readable tables
        channels = in_channels
        for token in check_layout(layout):
            t = LAYOUT_TOKEN.match(token).groupdict()
            if t["conv"]:
                kernel = int(t["kernel"] or 3)
                block = ConvBlock(channels, int(t["conv"]), padding=kernel // 2 if t["pad"] else 0, dropout=dropout,
                                  kernel=kernel)
                channels = int(t["conv"])
            elif t["sep"]:
                block = SeparableBlock(channels, int(t["sep"]), padding=1 if t["sep_pad"] else 0, dropout=dropout)
                channels = int(t["sep"])
            elif t["trans"]:
                block = Transition(channels, int(t["trans"]))
                channels = int(t["trans"])
            else:
                block = nn.MaxPool2d(2)
            kind = {"c": "conv", "s": "sep", "t": "trans", "m": "pool"}[token[0]]
            count = sum(name.startswith(kind) for name in layers) + 1
            layers[f"{kind}{count}"] = block
        layers["head"] = Head(channels)
        super().__init__(OrderedDict(layers))
        self.layout, self.dropout = layout, dropout

    def extra_repr(self) -> str:
        return f"layout={self.layout!r}, dropout={self.dropout}"


# ---------------------------------------------------------------------------- the three steps
# The skeleton of steps 1 and 2: 28 -> c8 -> c12 (RF 5: edges and stroke pieces) -> t8 + pool
# (RF 6, size 12) -> c16 -> c16 -> c16 (RF 18, size 6) -> GAP (RF 28: the whole digit).
# The 24x24 layers cost most of the compute, so they stay narrow; capacity sits after the pool.
SKELETON = "c8,c12,t8,m,c16,c16,c16"
# Step 3 spends most of the remaining budget on the last block (RF 18, digit parts).
WIDE_END = "c8,c12,t8,m,c16,c16,c20"


@register("step1")
def Model_1(dropout: float = 0.0) -> nn.Module:
    """Step 1: the lean skeleton (reports/step1.md).

    Target: a correct structure under 8,000 parameters: two 3x3 convs, a 1x1 transition and max
    pool at RF 6, three 3x3 convs, global average pooling and a 1x1 classifier, BN in every block;
    plain SGD at a constant learning rate, no dropout, no augmentation, to see how it fits.
    Result: 7,088 params; last-3-epoch test accuracy min 99.07%, mean 99.221% over 5 seeds;
    0/5 seeds hold >= 99.4%.
    Analysis: mild overfitting (train accuracy above test from the middle epochs on), a test
    plateau with epoch-to-epoch jumps under the constant learning rate; the receptive field (28)
    and the budget are not the limit, so regularise next.
    """
    return TinyNet(SKELETON, dropout)


@register("step2")
def Model_2(dropout: float = 0.1) -> nn.Module:
    """Step 2: regularise the skeleton (reports/step2.md).

    Target: close step 1's train-test gap without adding parameters: channel dropout (p = 0.1)
    after every conv block, everything else as in step 1.
    Result: 7,088 params; last-3-epoch test accuracy min 98.92%, mean 99.049% over 5 seeds;
    0/5 seeds hold >= 99.4%.
    Analysis: the gap closed and overshot: train accuracy far below test, and test accuracy below
    step 1's. The 7k net cannot spare the capacity dropout takes: it underfits. Regularise with
    data instead, and anneal the learning rate.
    """
    return TinyNet(SKELETON, dropout)


@register("step3")
def Model_3(dropout: float = 0.0) -> nn.Module:
    """Step 3: augmentation instead of dropout, annealing, a weight average (reports/step3.md).

    Target: 99.4% on each of the last 3 epochs on at least 19 of 20 seeds. Step 2 underfit
    (dropout took capacity a 7k net lacks) and plateaued at a constant learning rate, so: batch
    rotation, shift and zoom instead of dropout, a one-cycle schedule, batch 64, 16 -> 20 channels
    in the last block, and an exponential moving average of the weights evaluated in their place
    (all chosen on the validation split).
    Result: 7,712 params; last-3-epoch test accuracy min 99.42%, mean 99.507% over 20 seeds;
    20/20 seeds hold >= 99.4%.
    Analysis: no overfitting (test at or above train accuracy at every epoch, test loss falling
    to the end); the annealed schedule and the average keep the scored epochs flat; RF 28 covers
    the image. The margin is small (a few test images), so 20 seeds, not five, are the evidence.
    """
    return TinyNet(WIDE_END, dropout)


# ---------------------------------------------------------------------------- beyond the challenge
# The frontier under 4,000 parameters: the best trial of the sweeps (reports/sweeps/frontier2.md),
# taken as found. The step-3 skeleton, narrower, with a second max pool before the last conv:
# 28 -> c6 -> c10 (RF 5) -> t6 + pool (RF 6, size 12) -> c8 -> c12 (RF 14, size 8) -> pool
# (size 4, jump 4) -> c14 (RF 24, size 2) -> GAP (RF 28). The second pool buys receptive field
# without weights, so the three late convs can stay at 8-14 channels.
SECOND_POOL = "c6,c10,t6,m,c8,c12,m,c14"
SECOND_POOL_DROPOUT = 0.002329991712981679  # the trial's sampled rate, unrounded (next to no effect)


@register("frontier")
def Model_4(dropout: float = SECOND_POOL_DROPOUT) -> nn.Module:
    """The frontier: the best configuration under 4,000 parameters (reports/frontier.md).

    Target: the challenge (>= 99.4% on each of the last 3 epochs on every seed) with fewer than
    4,000 parameters, half of Model_3's budget. Two Optuna studies searched widths, transitions,
    padding, a second pool, dropout, schedule and training settings under 4,000 parameters on the
    validation split; this is their best trial, with its training settings as found
    (experiments/frontier.toml).
    Result: 3,702 params; last-3-epoch test accuracy min 99.25%, mean 99.363% over 5 seeds;
    1/5 seeds hold >= 99.4%.
    Analysis: missed: the mean itself is below the line; train accuracy stays below test (no
    memorising: the net is at its capacity). The same seeds on AVX-512 kernels held on more
    seeds: at this margin five seeds do not rank it against the wider Model_5.
    """
    return TinyNet(SECOND_POOL, dropout)


# The budget ladder's best rung (reports/sweeps/ladder.md): the step-3 skeleton and recipe with the
# layers after the pool narrowed to 12 -> 12 -> 16.
LADDER_BEST = "c8,c12,t8,m,c12,c12,c16"


@register("ladder")
def Model_5(dropout: float = 0.0) -> nn.Module:
    """The budget ladder's best rung: the step-3 recipe on a narrower skeleton (reports/ladder.md).

    Target: the challenge on every seed with fewer parameters than the best public result (about
    5,900, one run). Model_4 showed what the sweeps could do under 4,000; a ladder of narrower
    step-3 skeletons (4,596 to 6,216 parameters, step-3 recipe without the weight average) on the
    validation split put this rung highest, so it is tested on five seeds like step 3's first five.
    Result: 5,200 params; last-3-epoch test accuracy min 99.30%, mean 99.397% over 5 seeds;
    2/5 seeds hold >= 99.4%.
    Analysis: missed: the mean sits on the line and the seeds spread more than Model_3's, so
    seeds fall on either side; a few hundredths ahead of Model_4, within the noise of five seeds.
    """
    return TinyNet(LADDER_BEST, dropout)


# ---------------------------------------------------------------------------- the record and the budget curve
# Depthwise-separable layouts (issue 20): a separable 3x3 block costs 9*cin + cin*cout weights, a
# ninth of a full one, so a small budget buys wide late blocks. Chosen on the validation split with
# the step-3 recipe (reports/validation/record-*), then 20 test seeds each.
# 28 -> c10 -> c12 (RF 5) -> pool (RF 6, size 12) -> s20 -> s24 (RF 14, size 8) -> pool (size 4)
# -> s28 (RF 24, size 2) -> GAP (RF 28).
RECORD = "c10,c12,m,s20,s24,m,s28"
# 28 -> c14k5 (RF 5) -> pool (RF 6, size 12) -> s24 -> s28 -> s32 -> s32 (RF 22, size 4) -> GAP (RF 28).
CURVE_5K = "c14k5,m,s24,s28,s32,s32"


@register("record")
def Model_6(dropout: float = 0.0) -> nn.Module:
    """The record attempt: the best network found with at most 3,700 parameters (reports/record.md).

    Target: at least 19 of 20 seeds holding 99.4%, none under 99.35%, with at most 3,700
    parameters, below the smallest public claim (3,762, one run): two 3x3 blocks, a pool, three
    depthwise-separable blocks around a second pool, the step-3 recipe with its weight average
    (the best of the candidates at this size on the validation split, reports/record.md).
    Result: 3,646 params; last-3-epoch test accuracy min 99.26%, mean 99.367% over 20 seeds;
    5/20 seeds hold >= 99.4%.
    Analysis: missed: the mean sits just under the line, so seeds fall on both sides; no
    overfitting (train below test throughout). The bar of 19 of 20 is first reached at the
    5,000-parameter point (Model_7).
    """
    return TinyNet(RECORD, dropout)


@register("curve5k")
def Model_7(dropout: float = 0.0) -> nn.Module:
    """The budget curve's 5,000-parameter point: the best network found under 5,000 (reports/curve5k.md).

    Target: at least 19 of 20 seeds holding 99.4%, none under 99.35%, with at most 5,000
    parameters: a 5x5 first layer, a pool and four depthwise-separable blocks, the step-3 recipe
    with its weight average (chosen on the validation split, reports/record.md).
    Result: 4,936 params; last-3-epoch test accuracy min 99.33%, mean 99.464% over 20 seeds;
    19/20 seeds hold >= 99.4%.
    Analysis: the smallest model shown to hold on 19 of 20 seeds; one seed ends under the 99.35%
    floor. No overfitting; the margin is a few test images, as for Model_3. Wider
    separable layouts (6k, 7k) did not score higher on validation, so it is those points too.
    """
    return TinyNet(CURVE_5K, dropout)


# The step-3 skeleton narrowed to 3,000 parameters, with Model_4's second pool: 28 -> c6 -> c8 (RF 5)
# -> t6 + pool (RF 6, size 12) -> c8 -> c10 (RF 14, size 8) -> pool (size 4) -> c12 (RF 24) -> GAP.
CURVE_3K = "c6,c8,t6,m,c8,c10,m,c12"


@register("curve3k")
def Model_8(dropout: float = 0.0) -> nn.Module:
    """The budget curve's 3,000-parameter point: the best network found under 3,000 (reports/curve3k.md).

    Target: at least 19 of 20 seeds holding 99.4% with at most 3,000 parameters (the record
    search's stretch goal: 15 of 20): the step-3 skeleton narrowed, with Model_4's second pool,
    and the step-3 recipe with its weight average (chosen on the validation split).
    Result: 2,974 params; last-3-epoch test accuracy min 99.18%, mean 99.329% over 20 seeds;
    3/20 seeds hold >= 99.4%.
    Analysis: missed, stretch goal too: the mean is under the line; no overfitting (train below
    test throughout). The curve's lower end: a few seeds hold at 3,000, nearly all at 5,000.
    """
    return TinyNet(CURVE_3K, dropout)
