"""Every figure tinycnn draws: pure consumers of histories, statistics and measurements.

Each function writes one PNG, atomically, with no timestamp or version inside, so a regenerated
plot is byte-for-byte the committed one.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from tinycnn.evidence.challenge import TARGET
from tinycnn.files import atomic_path

PNG_METADATA = {"Software": None}


class ShownFigure(Figure):
    """A Figure that Jupyter shows as a picture without pyplot's inline hooks (which only pyplot installs)."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=90, metadata=PNG_METADATA)
        return buffer.getvalue()


def figure(rows: int = 1, columns: int = 1, figsize: tuple[float, float] = (6, 4), squeeze: bool = True):
    """A figure and its axes, without pyplot: no global backend or figure list is touched, so a
    notebook that imports tinycnn keeps its inline plots, and each figure displays there as is."""
    fig = ShownFigure(figsize=figsize)
    return fig, fig.subplots(rows, columns, squeeze=squeeze)


def save(fig, path: Path, dpi: int) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, metadata=PNG_METADATA)


def plot_history(histories: list[list[dict]], path: Path, title: str, evaluated_on: str = "test") -> None:
    save(history_figure(histories, title, evaluated_on), path, dpi=90)


def history_figure(histories: list[list[dict]], title: str, evaluated_on: str = "test") -> Figure:
    """Train/evaluation loss and accuracy per epoch: the mean line and the min-max band over runs."""
    epochs = np.array([r["epoch"] for r in histories[0]])
    fig, (ax_loss, ax_acc) = figure(1, 2, figsize=(11, 4))
    for split, key, colour in (("train", "train", "tab:blue"), (evaluated_on, "eval", "tab:orange")):
        for ax, metric in ((ax_loss, "loss"), (ax_acc, "acc")):
            values = np.array([[r[f"{key}_{metric}"] for r in h] for h in histories])
            label = split if len(histories) == 1 else f"{split} (mean, min-max over {len(histories)} seeds)"
            ax.plot(epochs, values.mean(0), color=colour, marker=".", label=label)
            if len(histories) > 1:
                ax.fill_between(epochs, values.min(0), values.max(0), color=colour, alpha=0.25)
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    ax_acc.axhline(TARGET, color="grey", linestyle="--", linewidth=1, label=f"{TARGET}% target")
    low = min(98.0, min(r["eval_acc"] for h in histories for r in h[2:]) - 0.2) if len(epochs) > 2 else None
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy", ylim=(low, 100.0) if low else None)
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_misclassified(images: np.ndarray, rows: list[list[int]], path: Path, title: str,
                       limit: int = 40) -> None:
    """A grid of misclassified images, each captioned 'true -> predicted'. One picture in one axes,
    each digit scaled to its own range as imshow would: forty axes of their own took a second to lay
    out and draw, and every report draws this figure."""
    rows = rows[:limit]
    columns, side, gap, caption = 10, 28, 6, 12  # pixels of the picture: a digit, the space beside it and above
    lines = max(1, -(-len(rows) // columns))
    mosaic = np.full((lines * (side + caption), columns * (side + gap)), np.nan)  # NaN: left blank
    fig, ax = figure(figsize=(columns * 1.1, lines * 1.3 + 0.3))
    for k, (index, true, predicted) in enumerate(rows):
        top, left = (k // columns) * (side + caption) + caption, (k % columns) * (side + gap) + gap // 2
        digit = images[index].astype(np.float64)
        span = digit.max() - digit.min()
        mosaic[top:top + side, left:left + side] = (digit - digit.min()) / span if span else 0.0
        ax.text(left + side / 2, top - 1.5, f"{true} -> {predicted}", ha="center", va="bottom", fontsize=9,
                color="tab:red")
    ax.imshow(mosaic, cmap="gray_r", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=1 - 0.35 / (lines * 1.3 + 0.3))
    save(fig, path, dpi=80)


def plot_seed_scores(scores: dict[int, float], path: Path, title: str) -> None:
    """Each seed's challenge score (minimum over the scored epochs) against the 99.4% line."""
    seeds = list(scores)
    values = np.array([scores[s] for s in seeds])
    fig, ax = figure(figsize=(max(5.0, 0.35 * len(seeds) + 2), 3.6))
    colours = ["tab:blue" if v >= TARGET else "tab:red" for v in values]
    ax.scatter(range(len(seeds)), values, color=colours, zorder=3)
    ax.axhline(TARGET, color="grey", linestyle="--", linewidth=1, label=f"{TARGET}% target")
    ax.axhline(values.mean(), color="tab:blue", linestyle=":", linewidth=1,
               label=f"mean of the seeds' minima ({values.mean():.3f}%)")
    ax.set_xticks(range(len(seeds)), labels=[str(s) for s in seeds])
    ax.set(xlabel="seed", ylabel="minimum test accuracy over the scored epochs (%)", title=title,
           ylim=(min(values.min(), TARGET) - 0.05, max(values.max(), TARGET) + 0.05))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    save(fig, path, dpi=90)


def plot_sweep_frontier(points: list[tuple[int, float]], front: list[tuple[int, float]], budget: int,
                        path: Path, title: str) -> None:
    """Complete trials as (parameters, score), the best-score-at-size frontier, target and budget."""
    fig, ax = figure(figsize=(7, 4.5))
    ax.scatter([p for p, _ in points], [s for _, s in points], s=18, color="tab:blue", label="complete trials")
    ax.step([p for p, _ in front], [s for _, s in front], where="post", color="tab:red",
            label="frontier (best score at <= params)")
    ax.axhline(TARGET, color="grey", linestyle="--", linewidth=1, label="99.4%")
    ax.axvline(budget, color="tab:orange", linestyle=":", label=f"budget {budget:,}")
    ax.set(xlabel="parameters", ylabel="validation score: min of last 3 epochs (%)", title=title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save(fig, path, dpi=90)


def plot_importances(importances: dict[str, float], path: Path) -> None:
    fig, ax = figure(figsize=(6, 0.4 * len(importances) + 1))
    ax.barh(list(importances)[::-1], list(importances.values())[::-1], color="tab:blue")
    ax.set(xlabel="PED-ANOVA importance", title="what mattered for the top trials")
    fig.tight_layout()
    save(fig, path, dpi=90)


def plot_bench(result: dict, path: Path) -> None:
    """Pipeline comparison (bars) and throughput against batch size for 1 and 2 threads."""
    fig, (left, right) = figure(1, 2, figsize=(11, 4))
    p = result["pipeline"]
    left.bar(["reference\n(per-image)", "tinycnn\n(batched)"], [p["reference_median"], p["tinycnn_median"]],
             color=["tab:grey", "tab:blue"])
    left.set(ylabel="training images / s (median)", title=f"pipeline: {p['ratio']:.2f}x")
    for threads in (1, 2):
        rows = [r for r in result["scaling"] if r["threads"] == threads]
        right.plot([r["batch"] for r in rows], [r["img_s"] for r in rows], marker="o", label=f"{threads} thread(s)")
    right.set(xscale="log", xlabel="batch size", ylabel="training images / s", title="scaling")
    right.set_xticks([64, 128, 256, 512, 1024], labels=["64", "128", "256", "512", "1024"])
    right.legend()
    right.grid(alpha=0.3)
    fig.suptitle(f"tinycnn bench: {result['machine']}")
    fig.tight_layout()
    save(fig, path, dpi=90)


def plot_confusion(matrix: np.ndarray, path: Path, title: str) -> None:
    """Counts of (true, predicted) pairs; the diagonal (correct) is shaded apart from the errors."""
    errors = matrix.astype(float).copy()
    np.fill_diagonal(errors, np.nan)
    fig, ax = figure(figsize=(6.2, 5.4))
    image = ax.imshow(errors, cmap="Reds")
    for (i, j), count in np.ndenumerate(matrix):
        if count:
            ax.text(j, i, str(count), ha="center", va="center", fontsize=7,
                    color="black" if i != j else "tab:blue")
    ax.set_xticks(range(10))
    ax.set_yticks(range(10))
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.colorbar(image, ax=ax, label="errors")
    fig.tight_layout()
    save(fig, path, dpi=90)


def save_seen_input(picture_rgba: np.ndarray, seen: np.ndarray, path: Path, height: int = 224) -> None:
    """The picture as given (on white) beside the 28x28 input the model saw (enlarged 8x)."""
    alpha = picture_rgba[..., 3:]
    rgb = (picture_rgba[..., :3] * alpha + (1 - alpha)) * 255
    original = Image.fromarray(np.clip(rgb + 0.5, 0, 255).astype(np.uint8))
    original = original.resize((max(1, round(original.width * height / original.height)), height), Image.BILINEAR)
    seen_big = Image.fromarray(seen).resize((height, height), Image.NEAREST).convert("RGB")
    sheet = Image.new("RGB", (original.width + 16 + height, height), "white")
    sheet.paste(original, (0, 0))
    sheet.paste(seen_big, (original.width + 16, 0))
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")


def shares_held(ax, points: list[tuple[str, float, int, int, tuple[float, float]]], label: str, note) -> None:
    """Each point (label, x, holding, seeds, Wilson interval) as its share of seeds holding, with
    its interval as error bars and `note(label, x, holding, seeds)` beside it."""
    xs = np.array([x for _, x, _, _, _ in points])
    shares = np.array([h / n for _, _, h, n, _ in points])
    low = shares - np.array([ci[0] for *_, ci in points])
    high = np.array([ci[1] for *_, ci in points]) - shares
    ax.errorbar(xs, shares, yerr=[low, high], fmt="o", color="tab:blue", capsize=4, zorder=3, label=label)
    for name, x, h, n, _ in points:
        ax.annotate(note(name, x, h, n), (x, h / n), textcoords="offset points", xytext=(8, -4), fontsize=8)


def plot_budget_curve(points: list[tuple[str, int, int, int, tuple[float, float]]], anchors: list[tuple[str, int]],
                      path: Path) -> None:
    """Share of test seeds that hold against parameters: points (label, params, holding, seeds,
    Wilson interval) with their intervals, the 19-of-20 line, and public results as marks (one run
    each: no share to plot)."""
    fig, ax = figure(figsize=(7.5, 4.5))
    shares_held(ax, points, "share of 20 test seeds holding (95% Wilson interval)",
                lambda label, p, h, n: f"{label}\n{h}/{n}")
    ax.axhline(19 / 20, color="grey", linestyle="--", linewidth=1, label="19 of 20 (the record's bar)")
    for i, (label, p) in enumerate(anchors):
        ax.axvline(p, color="tab:orange", linestyle=":", linewidth=1, label="public results (one run each)" if i == 0
                   else None)
        ax.annotate(label, (p, 0.45), rotation=90, fontsize=7, color="tab:orange", xytext=(-9, 0),
                    textcoords="offset points")
    ax.set(xlabel="parameters", ylabel="share of seeds holding >= 99.4% on epochs 13-15", ylim=(-0.02, 1.05),
           title="How small can it be and still hold? (test set, 15 epochs)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    save(fig, path, dpi=90)


def plot_time_to_target(points: list[tuple[str, float, int, int, tuple[float, float]]], goal_seconds: float,
                        path: Path) -> None:
    """Share of test seeds that hold against the seconds of one whole run alone: points (label,
    seconds, holding, seeds, Wilson interval) with their intervals, the 19-of-20 line and the time goal."""
    fig, ax = figure(figsize=(7.5, 4.5))
    seconds = np.array([s for _, s, _, _, _ in points])
    shares_held(ax, points, "share of the test seeds holding (95% Wilson interval)",
                lambda label, s, h, n: f"{label}\n{h}/{n}, {s:.0f} s")
    ax.axhline(19 / 20, color="grey", linestyle="--", linewidth=1, label="19 of 20 (the goal's bar)")
    ax.axvline(goal_seconds, color="tab:orange", linestyle=":", linewidth=1, label=f"{goal_seconds:.0f} s (the goal)")
    ax.set(xlabel="seconds of one whole `tinycnn train`, alone on this machine", xlim=(0, max(seconds.max(), goal_seconds) * 1.25),
           ylabel="share of seeds holding >= 99.4% on the last 3 epochs", ylim=(-0.02, 1.05),
           title="Time to target: how fast, and how often it holds")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    save(fig, path, dpi=90)
