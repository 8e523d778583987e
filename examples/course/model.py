"""A course-style model.py, as students of the challenge write it: plain PyTorch, seven
nn.Sequential conv blocks, ReLU before BatchNorm, dropout 0.1, AvgPool2d as GAP, a 1x1 head,
view and log_softmax at the end, and the notebook's imports at the top. tinycnn knows nothing
about it: `tinycnn summary model.py:Model6` reads it as any other file."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm
import matplotlib.pyplot as plt

dropout_value = 0.1


class Model6(nn.Module):
    def __init__(self):
        super().__init__()
        self.convblock1 = nn.Sequential(nn.Conv2d(1, 10, 3, padding=0, bias=False), nn.ReLU(),
                                        nn.BatchNorm2d(10), nn.Dropout(dropout_value))
        self.convblock2 = nn.Sequential(nn.Conv2d(10, 16, 3, padding=0, bias=False), nn.ReLU(),
                                        nn.BatchNorm2d(16), nn.Dropout(dropout_value))
        self.convblock3 = nn.Sequential(nn.Conv2d(16, 10, 1, padding=0, bias=False))
        self.pool1 = nn.MaxPool2d(2, 2)
        self.convblock4 = nn.Sequential(nn.Conv2d(10, 16, 3, padding=0, bias=False), nn.ReLU(),
                                        nn.BatchNorm2d(16), nn.Dropout(dropout_value))
        self.convblock5 = nn.Sequential(nn.Conv2d(16, 16, 3, padding=0, bias=False), nn.ReLU(),
                                        nn.BatchNorm2d(16), nn.Dropout(dropout_value))
        self.convblock6 = nn.Sequential(nn.Conv2d(16, 12, 3, padding=1, bias=False), nn.ReLU(),
                                        nn.BatchNorm2d(12), nn.Dropout(dropout_value))
        self.gap = nn.Sequential(nn.AvgPool2d(kernel_size=8))
        self.convblock7 = nn.Sequential(nn.Conv2d(12, 10, 1, padding=0, bias=False))

    def forward(self, x):
        x = self.convblock1(x)
        x = self.convblock2(x)
        x = self.convblock3(x)
        x = self.pool1(x)
        x = self.convblock4(x)
        x = self.convblock5(x)
        x = self.convblock6(x)
        x = self.gap(x)
        x = self.convblock7(x)
        x = x.view(-1, 10)
        return F.log_softmax(x, dim=-1)
