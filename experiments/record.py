"""Record candidates (issue 20) as a model file: depthwise-separable 3x3 blocks (a 3x3 per channel,
then a 1x1 across channels: about a ninth of a full 3x3's weights), so a small budget buys wider
late blocks. Trained with the first step-3 recipe on the validation split (reports/validation/record-*),
e.g. tinycnn run experiments/step3.toml --validate --model experiments/record.py:sep_a.
The finalists were then written in the layout grammar and registered (src/tinycnn/model.py):
sep_c is Model_6 (c10,c12,m,s20,s24,m,s28), sep_b5k is Model_7 (c14k5,m,s24,s28,s32,s32); the same
layers in the same order, except that five_by_five builds its separable blocks before its first
layer, so a seed draws their initial weights in another order (another draw of the same recipe)."""
import torch.nn as nn


def full(c_in: int, c_out: int, kernel: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())


def separable(c_in: int, c_out: int) -> nn.Sequential:
    """3x3 depthwise, BatchNorm, 1x1 pointwise, BatchNorm, ReLU (no ReLU in between: the 1x1 mixes first)."""
    return nn.Sequential(nn.Conv2d(c_in, c_in, 3, groups=c_in, bias=False), nn.BatchNorm2d(c_in),
                         nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())


def head(c_in: int) -> nn.Sequential:
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c_in, 10, 1, bias=False), nn.Flatten())


def sep_a() -> nn.Module:
    """Two full 3x3 convolutions (RF 5), a max pool (RF 6), three separable blocks (RF 18), GAP."""
    return nn.Sequential(full(1, 10), full(10, 12), nn.MaxPool2d(2), separable(12, 20), separable(20, 24),
                         separable(24, 28), head(28))


def five_by_five(first: int, widths: tuple[int, ...]) -> nn.Module:
    """A 5x5 first layer (RF 5 in one layer), a pool, separable blocks of `widths`, GAP."""
    blocks = [separable(c_in, c_out) for c_in, c_out in zip((first, *widths), widths)]
    return nn.Sequential(full(1, first, 5), nn.MaxPool2d(2), *blocks, head(widths[-1]))


def two_pools(stem: tuple[int, int], widths: tuple[int, int, int]) -> nn.Module:
    """Two full 3x3 convolutions, a pool, two separable blocks, a second pool before the last
    separable block (its cells see whole digits), GAP."""
    a, b, c = widths
    return nn.Sequential(full(1, stem[0]), full(stem[0], stem[1]), nn.MaxPool2d(2), separable(stem[1], a),
                         separable(a, b), nn.MaxPool2d(2), separable(b, c), head(c))


def sep_b() -> nn.Module:
    """Four separable blocks after a 5x5 first layer (RF 22 before GAP)."""
    return five_by_five(12, (20, 24, 24, 28))


def sep_c() -> nn.Module:
    """sep_a with a second pool before the last block."""
    return two_pools((10, 12), (20, 24, 28))


def sep_b5k() -> nn.Module:
    """sep_b widened toward the 5,000-parameter point of the budget curve."""
    return five_by_five(14, (24, 28, 32, 32))


def sep_c5k() -> nn.Module:
    """sep_c widened toward the 5,000-parameter point of the budget curve."""
    return two_pools((10, 16), (24, 30, 32))


def sep_b3k() -> nn.Module:
    """sep_b narrowed to the 3,000-parameter point of the budget curve."""
    return five_by_five(10, (18, 20, 22, 24))


def sep_b6k() -> nn.Module:
    """sep_b widened toward the 6,000-parameter point of the budget curve."""
    return five_by_five(16, (28, 32, 34, 36))


def sep_b7k() -> nn.Module:
    """sep_b widened toward the 7,000-parameter point of the budget curve."""
    return five_by_five(16, (30, 36, 38, 40))
