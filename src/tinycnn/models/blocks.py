"""The blocks tiny MNIST CNNs are built from, and TinyNet, which chains them from a layout string.

A network is written as a short layout string, read left to right (the grammar is names.py's):
  c16   3x3 conv block (conv-BN-ReLU-dropout) with 16 output channels, no padding (n -= 2)
  c16p  the same with padding 1 (size kept)
  c16k5 the same with a 5x5 kernel (n -= 4; c16pk5 pads 2): a first layer that sees RF 5 at once
  s24   depthwise-separable block: a 3x3 conv per channel, BN, a 1x1 conv to 24 channels, BN,
        ReLU (n -= 2; s24p pads 1); about a ninth of a full 3x3's weights for the same widths
  t10   1x1 transition conv to 10 channels (mixes channels, no BN/ReLU: it feeds a pool or conv)
  m     2x2 max pool (halves the size, doubles the jump of the receptive field)
and always ends in the head: global average pool, then a 1x1 conv to the 10 classes.
"""
from __future__ import annotations

from collections import OrderedDict

from torch import nn

from tinycnn.models.names import LAYOUT_TOKEN, check_layout

NUM_CLASSES = 10   # the digits 0-9


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
