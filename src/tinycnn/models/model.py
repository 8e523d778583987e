"""The registered models, Model_1 to Model_9, and the registry that names them.

The three challenge steps are `Model_1`, `Model_2`, `Model_3`; their docstrings carry the step's
Target / Result / Analysis, and tests check the Result lines against the committed metrics. Each
is a TinyNet (blocks.py) of one layout string; `tinycnn summary` lists them all.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

from torch import nn

from tinycnn.errors import UnknownModelError
from tinycnn.models.blocks import TinyNet


@dataclass(frozen=True)
class ModelInfo:
    build: Callable[..., nn.Module]   # takes an optional dropout rate
    experiment: str                   # the experiment that reports it (experiments/<name>.toml);
                                      # its shipped weights are weights/<experiment>.safetensors

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


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------------------- the three steps
# The skeleton of steps 1 and 2: 28 -> c8 -> c12 (RF 5: edges and stroke pieces) -> t8 + pool
# (RF 6, size 12) -> c16 -> c16 -> c16 (RF 18, size 6) -> GAP (RF 28: the whole digit).
# The 24x24 layers cost most of the compute, so they stay narrow; capacity sits after the pool.
SKELETON = "c8,c12,t8,m,c16,c16,c16"
# Step 3: the skeleton's 24x24 layers cost most of its compute (two full-size convs and a transition),
# so step 3 sees RF 5 in one 5x5 layer of 8 channels and pools at once: 28 -> c8k5 (RF 5, size 24)
# -> pool (RF 6, size 12) -> c12 -> c16 -> c16 -> c16 (RF 22, size 4) -> GAP (RF 28).
STEP3 = "c8k5,m,c12,c16,c16,c16"
# Step 3 as first reported (reports/step3_wide.md), Model_3 until step 3 took the layout above: the
# skeleton with the last block widened to 20 (its records and `--recipe step3_wide` name it by layout).
FIRST_STEP3 = "c8,c12,t8,m,c16,c16,c20"


def layout_before_step3_changed(model: str, layout: str) -> str:
    """The layout a record or weights file written while Model_3 was FIRST_STEP3 means by its own."""
    return FIRST_STEP3 if model == "Model_3" and not layout else layout


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
    """Step 3: augmentation instead of dropout, annealing, a weight average, a faster layout (reports/step3.md).

    Target: 99.4% on each of the last 3 epochs on at least 19 of 20 seeds, a whole run in about
    two minutes on 2 CPU cores. Step 2 underfit (dropout took capacity a 7k net lacks), plateaued
    at a constant learning rate and spent its time in full-size 3x3 layers, so: rotation, shift
    and zoom instead of dropout (the last 3 of 14 epochs unaugmented), a one-cycle schedule, an
    exponential moving average of the weights evaluated in their place, one 5x5 layer and a pool
    where the skeleton had two full-size 3x3 layers, and two processes sharing each batch of 128
    (all chosen on the validation split).
    Result: 7,696 params; last-3-epoch test accuracy min 99.43%, mean 99.502% over 20 seeds;
    20/20 seeds hold >= 99.4%.
    Analysis: no overfitting (train accuracy rises above test only on the clean epochs, while the
    test loss does not rise); the annealed schedule, the average and the clean epochs keep the
    scored epochs flat; RF 28 covers the image. The margin is a few test images, so 20 seeds,
    not five, are the evidence. Step 3 as first reported: reports/step3_wide.md.
    """
    return TinyNet(STEP3, dropout)


# ---------------------------------------------------------------------------- beyond the challenge
# The frontier under 4,000 parameters: the best trial of the sweeps (reports/sweeps/frontier2.md),
# taken as found. The first step-3 skeleton, narrower, with a second max pool before the last conv:
# 28 -> c6 -> c10 (RF 5) -> t6 + pool (RF 6, size 12) -> c8 -> c12 (RF 14, size 8) -> pool
# (size 4, jump 4) -> c14 (RF 24, size 2) -> GAP (RF 28). The second pool buys receptive field
# without weights, so the three late convs can stay at 8-14 channels.
SECOND_POOL = "c6,c10,t6,m,c8,c12,m,c14"
SECOND_POOL_DROPOUT = 0.002329991712981679  # the trial's sampled rate, unrounded (next to no effect)


@register("frontier")
def Model_4(dropout: float = SECOND_POOL_DROPOUT) -> nn.Module:
    """The frontier: the best configuration under 4,000 parameters (reports/frontier.md).

    Target: the challenge (>= 99.4% on each of the last 3 epochs on every seed) with fewer than
    4,000 parameters, half of the challenge's. Two Optuna studies searched widths, transitions,
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


# The budget ladder's best rung (reports/sweeps/ladder.md): the first step-3 skeleton and recipe with the
# layers after the pool narrowed to 12 -> 12 -> 16.
LADDER_BEST = "c8,c12,t8,m,c12,c12,c16"


@register("ladder")
def Model_5(dropout: float = 0.0) -> nn.Module:
    """The budget ladder's best rung: the first step-3 recipe on a narrower skeleton (reports/ladder.md).

    Target: the challenge on every seed with fewer parameters than the best public result (about
    5,900, one run). Model_4 showed what the sweeps could do under 4,000; a ladder of narrower
    first step-3 skeletons (4,596 to 6,216 parameters, first step-3 recipe without the weight average) on the
    validation split put this rung highest, so it is tested on five seeds like step 3's first five.
    Result: 5,200 params; last-3-epoch test accuracy min 99.30%, mean 99.397% over 5 seeds;
    2/5 seeds hold >= 99.4%.
    Analysis: missed: the mean sits on the line and the seeds spread more than step 3's, so
    seeds fall on either side; a few hundredths ahead of Model_4, within the noise of five seeds.
    """
    return TinyNet(LADDER_BEST, dropout)


# ---------------------------------------------------------------------------- the record and the budget curve
# Depthwise-separable layouts (issue 20): a separable 3x3 block costs 9*cin + cin*cout weights, a
# ninth of a full one, so a small budget buys wide late blocks. Chosen on the validation split with
# the first step-3 recipe (reports/validation/record-*), then 20 test seeds each.
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
    depthwise-separable blocks around a second pool, the first step-3 recipe with its weight average
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
    parameters: a 5x5 first layer, a pool and four depthwise-separable blocks, the first step-3 recipe
    with its weight average (chosen on the validation split, reports/record.md).
    Result: 4,936 params; last-3-epoch test accuracy min 99.33%, mean 99.464% over 20 seeds;
    19/20 seeds hold >= 99.4%.
    Analysis: the smallest model shown to hold on 19 of 20 seeds; one seed ends under the 99.35%
    floor. No overfitting; the margin is a few test images, as for step 3. Wider
    separable layouts (6k, 7k) did not score higher on validation, so it is those points too.
    """
    return TinyNet(CURVE_5K, dropout)


# The first step-3 skeleton narrowed to 3,000 parameters, with Model_4's second pool: 28 -> c6 -> c8 (RF 5)
# -> t6 + pool (RF 6, size 12) -> c8 -> c10 (RF 14, size 8) -> pool (size 4) -> c12 (RF 24) -> GAP.
CURVE_3K = "c6,c8,t6,m,c8,c10,m,c12"


@register("curve3k")
def Model_8(dropout: float = 0.0) -> nn.Module:
    """The budget curve's 3,000-parameter point: the best network found under 3,000 (reports/curve3k.md).

    Target: at least 19 of 20 seeds holding 99.4% with at most 3,000 parameters (the record
    search's stretch goal: 15 of 20): the first step-3 skeleton narrowed, with Model_4's second pool,
    and the first step-3 recipe with its weight average (chosen on the validation split).
    Result: 2,974 params; last-3-epoch test accuracy min 99.18%, mean 99.329% over 20 seeds;
    3/20 seeds hold >= 99.4%.
    Analysis: missed, stretch goal too: the mean is under the line; no overfitting (train below
    test throughout). The curve's lower end: a few seeds hold at 3,000, nearly all at 5,000.
    """
    return TinyNet(CURVE_3K, dropout)


# ---------------------------------------------------------------------------- time to target


@register("fast")
def Model_9(dropout: float = 0.0) -> nn.Module:
    """The time-to-target record: a whole run in about two minutes on two CPU cores (reports/fast.md).

    Target: a whole `tinycnn train` in at most 120 s on a 2-core machine, holding 99.4% on 19 of
    20 seeds: both cores for one run (two processes sharing each batch), batch 128 at peak rate
    0.2, one 5x5 layer and a pool where step 3 then had two full-size 3x3 layers, 14 epochs of step
    3's schedule, weight average and augmentation, the last 3 epochs on unaugmented images (chosen
    on the validation split).
    Result: 7,696 params; last-3-epoch test accuracy min 99.43%, mean 99.502% over 20 seeds;
    20/20 seeds hold >= 99.4%.
    Analysis: holds as step 3 then did (20 of 20); the clean last epochs lift test accuracy, and
    train accuracy rises above it there while the test loss does not rise (no overfitting). Its
    seconds against step 3's: reports/speed.md. It became step 3: Model_3 is this layout now, and
    `tinycnn train --recipe fast` is step 3's recipe under this name.
    """
    return TinyNet(STEP3, dropout)
