"""Plots as pure consumers of histories and data: each function writes one PNG."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

TARGET = 99.4
# No timestamps or version in the PNG, so regenerated plots are byte-for-byte the same.
PNG_METADATA = {"Software": None}


def plot_history(histories: list[list[dict]], path: Path, title: str) -> None:
    """Train/test loss and accuracy per epoch: the mean line and the min-max band over runs."""
    epochs = np.array([r["epoch"] for r in histories[0]])
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    for split, colour in (("train", "tab:blue"), ("test", "tab:orange")):
        for ax, metric in ((ax_loss, "loss"), (ax_acc, "acc")):
            values = np.array([[r[f"{split}_{metric}"] for r in h] for h in histories])
            label = split if len(histories) == 1 else f"{split} (mean, min-max over {len(histories)} seeds)"
            ax.plot(epochs, values.mean(0), color=colour, marker=".", label=label)
            if len(histories) > 1:
                ax.fill_between(epochs, values.min(0), values.max(0), color=colour, alpha=0.25)
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    ax_acc.axhline(TARGET, color="grey", linestyle="--", linewidth=1, label=f"{TARGET}% target")
    low = min(98.0, min(r["test_acc"] for h in histories for r in h[2:]) - 0.2) if len(epochs) > 2 else None
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy", ylim=(low, 100.0) if low else None)
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90, metadata=PNG_METADATA)
    plt.close(fig)


def plot_misclassified(images: np.ndarray, rows: list[list[int]], path: Path, title: str,
                       limit: int = 40) -> None:
    """A grid of misclassified images, each captioned 'true -> predicted'."""
    rows = rows[:limit]
    columns = 10
    lines = max(1, -(-len(rows) // columns))
    fig, axes = plt.subplots(lines, columns, figsize=(columns * 1.1, lines * 1.3), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (index, true, predicted) in zip(axes.flat, rows):
        ax.imshow(images[index], cmap="gray_r")
        ax.set_title(f"{true} -> {predicted}", fontsize=9, color="tab:red")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80, metadata=PNG_METADATA)
    plt.close(fig)
