"""Your three steps, in plain PyTorch: edit them freely.

Each model takes (N, 1, 28, 28) normalised images and returns (N, 10) logits (or log-probabilities).
`tinycnn summary model.py:Model_1` shows a model's parameters, MACs and receptive field;
experiments/stepN.toml trains it (`tinycnn run experiments/step1.toml`). These three are a
starting point that trains, not an answer: none of them holds 99.4% yet.
"""
import torch.nn as nn


def conv(c_in: int, c_out: int, batch_norm: bool, dropout: float = 0.0) -> nn.Sequential:
    """A 3x3 convolution without padding (RF +2), BatchNorm when asked, ReLU, dropout when asked."""
    layers = [nn.Conv2d(c_in, c_out, 3, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(nn.ReLU())
    if dropout:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class Model_1(nn.Module):
    """Step 1, the skeleton: convolutions, one max pool, a 1x1 transition, global average pooling."""

    def __init__(self, batch_norm: bool = False, dropout: float = 0.0):
        super().__init__()
        self.block1 = nn.Sequential(conv(1, 8, batch_norm, dropout), conv(8, 12, batch_norm, dropout))   # RF 5
        self.transition = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(12, 8, 1, bias=False))              # RF 6
        self.block2 = nn.Sequential(conv(8, 12, batch_norm, dropout), conv(12, 16, batch_norm, dropout),
                                    conv(16, 16, batch_norm, dropout))                                   # RF 18
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(16, 10, 1), nn.Flatten())

    def forward(self, x):
        return self.head(self.block2(self.transition(self.block1(x))))


class Model_2(Model_1):
    """Step 2: the same skeleton with BatchNorm after every convolution."""

    def __init__(self):
        super().__init__(batch_norm=True)


class Model_3(Model_1):
    """Step 3: BatchNorm and dropout 0.05 after every convolution."""

    def __init__(self):
        super().__init__(batch_norm=True, dropout=0.05)
