"""`tinycnn bench`: how fast training runs here, against the pipeline public solutions use.

Measured, in one run, on the same model, batch size and number of steps:
  1. training throughput of tinycnn's pipeline (whole split on the device, batch augmentation
     with affine_grid/grid_sample, channels_last, one thread) against a reference per-image
     pipeline written as public solutions write it (a Dataset that rotates one PIL image at a
     time, DataLoader with 2 workers, channels-first, default threads), alternating several times;
  2. where a training step's time goes (augmentation, forward, backward, optimiser step);
  3. throughput against batch size, threads and parallel worker processes;
  4. evaluation throughput.
`--full` also times real runs end to end as a user starts them: one 15-epoch `tinycnn train`
and a five-seed `tinycnn run`, each from command start to files written.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .augment import AffineSpec, BatchLoader, random_affine
from .config import TrainConfig
from .data import MNIST, channel_stats, load_mnist
from .engine import make_optimizer, make_scheduler, train_one_epoch
from .model import build_model

MODEL = "Model_3"


# ---------------------------------------------------------------------------- the reference pipeline
class PerImageMNIST(torch.utils.data.Dataset):
    """What public solutions write: augment one PIL image per __getitem__ (RandomRotation-style)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, degrees: float, mean: float, std: float):
        self.images, self.labels, self.degrees, self.mean, self.std = images, labels, degrees, mean, std

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        from PIL import Image

        angle = float(np.random.uniform(-self.degrees, self.degrees))
        image = Image.fromarray(self.images[i]).rotate(angle, resample=Image.BILINEAR, fillcolor=0)
        x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).unsqueeze(0)
        return (x - self.mean) / self.std, int(self.labels[i])


def reference_throughput(data: MNIST, batch: int, steps: int, cfg: TrainConfig) -> float:
    """Images per second of the per-image Dataset + DataLoader(num_workers=2) pipeline."""
    torch.set_num_threads(os.cpu_count() or 1)  # PyTorch's default
    mean, std = channel_stats(data.train_images)
    dataset = PerImageMNIST(data.train_images, data.train_labels, cfg.rotate, mean, std)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=2,
                                         persistent_workers=False)
    model = build_model(MODEL)
    optimizer = make_optimizer(cfg, model)
    model.train()
    batches = iter(loader)
    for _ in range(3):  # warm-up: worker start-up and first allocations
        step(model, optimizer, *next(batches))
    start = time.perf_counter()
    for _ in range(steps):
        step(model, optimizer, *next(batches))
    return steps * batch / (time.perf_counter() - start)


def step(model, optimizer, x, y) -> None:
    loss = F.cross_entropy(model(x), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


# ---------------------------------------------------------------------------- tinycnn's pipeline
def tinycnn_loader(data: MNIST, cfg: TrainConfig, batch: int, images: int) -> BatchLoader:
    mean, std = channel_stats(data.train_images)
    return BatchLoader(torch.from_numpy(data.train_images[:images]), torch.from_numpy(data.train_labels[:images]),
                       batch, mean, std, shuffle=True,
                       augment=AffineSpec(cfg.rotate, cfg.translate, cfg.scale),
                       generator=torch.Generator().manual_seed(0), channels_last=cfg.channels_last)


def tinycnn_throughput(data: MNIST, batch: int, steps: int, cfg: TrainConfig, threads: int = 1) -> float:
    """Images per second of `train_one_epoch` over `steps` batches (after one warm-up epoch)."""
    torch.set_num_threads(threads)
    cfg = cfg.replace(batch_size=batch, epochs=2)
    loader = tinycnn_loader(data, cfg, batch, batch * steps)
    model = build_model(MODEL).to(memory_format=torch.channels_last if cfg.channels_last else torch.contiguous_format)
    optimizer = make_optimizer(cfg, model)
    scheduler = make_scheduler(cfg, optimizer, len(loader))
    train_one_epoch(model, loader, optimizer, scheduler)
    start = time.perf_counter()
    train_one_epoch(model, loader, optimizer, scheduler)
    return len(loader.labels) / (time.perf_counter() - start)


def step_breakdown(data: MNIST, cfg: TrainConfig, batch: int, steps: int) -> dict[str, float]:
    """Milliseconds per step in each phase (one thread; CPU ops are synchronous, so timing is exact)."""
    torch.set_num_threads(1)
    loader = tinycnn_loader(data, cfg, batch, batch * steps)
    model = build_model(MODEL).to(memory_format=torch.channels_last)
    optimizer = make_optimizer(cfg, model)
    phases = {"batch + augmentation": [], "forward": [], "backward": [], "optimiser step": []}
    model.train()
    for repeat in range(2):  # the first pass warms up
        order = torch.randperm(len(loader.labels), generator=loader.generator)
        for start in range(0, len(order), batch):
            t0 = time.perf_counter()
            index = order[start:start + batch]
            x = random_affine(loader.images[index], loader.augment, loader.generator)
            x = ((x - loader.mean) / loader.std).contiguous(memory_format=torch.channels_last)
            y = loader.labels[index]
            t1 = time.perf_counter()
            loss = F.cross_entropy(model(x), y)
            t2 = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            t3 = time.perf_counter()
            optimizer.step()
            t4 = time.perf_counter()
            if repeat:
                for name, seconds in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                    phases[name].append(seconds)
    return {name: 1000 * statistics.median(values) for name, values in phases.items()}


def eval_throughput(data: MNIST, cfg: TrainConfig, batch: int = 2000, threads: int = 1) -> float:
    from .engine import evaluate

    torch.set_num_threads(threads)
    mean, std = channel_stats(data.train_images)
    loader = BatchLoader(torch.from_numpy(data.test_images), torch.from_numpy(data.test_labels), batch, mean, std,
                         channels_last=True)
    model = build_model(MODEL).to(memory_format=torch.channels_last)
    evaluate(model, loader)
    start = time.perf_counter()
    evaluate(model, loader)
    return len(loader.labels) / (time.perf_counter() - start)


def _process_worker(batch: int, steps: int, data_dir, results) -> None:
    data = load_mnist(data_dir)
    results.put(tinycnn_throughput(data, batch, steps, TrainConfig(), threads=1))


def parallel_throughput(processes: int, batch: int, steps: int, data_dir) -> float:
    """Total images per second of `processes` single-thread trainers running side by side."""
    context = mp.get_context("spawn")
    results = context.Queue()
    workers = [context.Process(target=_process_worker, args=(batch, steps, data_dir, results))
               for _ in range(processes)]
    for w in workers:
        w.start()
    rates = [results.get() for _ in workers]
    for w in workers:
        w.join()
    return sum(rates)


# ---------------------------------------------------------------------------- end-to-end runs
def timed_command(args: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tinycnn.cli", *args], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def full_runs(data_dir, experiment: Path, five_seeds: bool) -> dict:
    """Wall time of one 15-epoch train (and of a five-seed run), as a user would start them."""
    with tempfile.TemporaryDirectory() as tmp:
        extra = ["--data-dir", str(data_dir)] if data_dir else []
        times = {"one_seed_15_epochs_s": timed_command(["train", "--quiet", "--out", f"{tmp}/one", *extra], Path.cwd())}
        if five_seeds:
            five = timed_command(["run", str(experiment.resolve()), "--out", f"{tmp}/five", *extra], Path.cwd())
            times.update(five_seeds_15_epochs_s=five, ratio=five / times["one_seed_15_epochs_s"])
    return times


# ---------------------------------------------------------------------------- the whole benchmark
def run_bench(out_dir: Path, data_dir=None, steps: int = 60, repeats: int = 3, full: bool = False,
              five_seeds: bool = False, log=print) -> dict:
    data = load_mnist(data_dir)
    cfg = TrainConfig()
    batch = cfg.batch_size
    result: dict = {"machine": f"{platform.machine()} CPU, {os.cpu_count()} cores, torch {torch.__version__}",
                    "model": MODEL, "batch": batch, "steps": steps, "repeats": repeats}

    log(f"1/4 pipeline comparison: {repeats} alternations of {steps} steps each")
    ours, reference = [], []
    for i in range(repeats):
        ours.append(tinycnn_throughput(data, batch, steps, cfg))
        reference.append(reference_throughput(data, batch, steps, cfg))
        log(f"  round {i + 1}: tinycnn {ours[-1]:.0f} img/s, reference {reference[-1]:.0f} img/s")
    result["pipeline"] = {"tinycnn_img_s": ours, "reference_img_s": reference,
                          "tinycnn_median": statistics.median(ours), "reference_median": statistics.median(reference),
                          "ratio": statistics.median(ours) / statistics.median(reference)}

    log("2/4 step breakdown")
    result["breakdown_ms"] = step_breakdown(data, cfg, batch, steps)

    log("3/4 scaling with batch size, threads and processes")
    result["scaling"] = [{"batch": b, "threads": t, "img_s": tinycnn_throughput(data, b, max(8, steps * batch // b), cfg, t)}
                         for t in (1, 2) for b in (64, 128, 256, 512, 1024)]
    result["processes"] = [{"processes": p, "total_img_s": parallel_throughput(p, batch, steps, data_dir)}
                           for p in (1, 2)]

    log("4/4 evaluation throughput")
    result["eval_img_s"] = {"threads_1": eval_throughput(data, cfg, threads=1),
                            "threads_2": eval_throughput(data, cfg, threads=2)}
    if full or five_seeds:
        log("end-to-end: one 15-epoch train" + (", then five seeds" if five_seeds else "") + " (minutes)")
        result["full"] = full_runs(data_dir, Path("experiments/step3.toml"), five_seeds)
    result["gpu"] = None if not torch.cuda.is_available() else torch.cuda.get_device_name()
    return result


def bench_markdown(result: dict) -> str:
    p = result["pipeline"]
    lines = [
        "# tinycnn bench",
        "",
        f"Machine: {result['machine']}; GPU: {result['gpu'] or 'none on this machine (no GPU was lent to this task)'}.",
        f"Model: `{result['model']}`, batch {result['batch']}, {result['steps']} steps per measurement. "
        "Regenerate with `make bench` (`tinycnn bench`; `--full` adds the end-to-end runs).",
        "",
        "## 1. Training throughput against the per-image reference pipeline",
        "",
        "Reference: a `Dataset` that rotates one PIL image per item, `DataLoader(num_workers=2)`, channels-first, "
        "PyTorch's default threads. tinycnn: the whole split as one tensor, batch rotation with "
        "`affine_grid`/`grid_sample`, channels_last, one thread. Alternated, medians:",
        "",
        "| round | tinycnn (img/s) | reference (img/s) |",
        "|---|---|---|",
        *[f"| {i + 1} | {a:.0f} | {b:.0f} |" for i, (a, b) in enumerate(zip(p["tinycnn_img_s"], p["reference_img_s"]))],
        f"| **median** | **{p['tinycnn_median']:.0f}** | **{p['reference_median']:.0f}** |",
        "",
        f"tinycnn trains **{p['ratio']:.2f}x** as many images per second as the reference.",
        "",
        "## 2. Where a training step's time goes (one thread, median ms per step)",
        "",
        "| phase | ms | share |",
        "|---|---|---|",
    ]
    total = sum(result["breakdown_ms"].values())
    lines += [f"| {k} | {v:.2f} | {100 * v / total:.0f}% |" for k, v in result["breakdown_ms"].items()]
    lines += ["", "## 3. Scaling", "", "| batch | 1 thread (img/s) | 2 threads (img/s) |", "|---|---|---|"]
    by = {(r["batch"], r["threads"]): r["img_s"] for r in result["scaling"]}
    for b in sorted({r["batch"] for r in result["scaling"]}):
        lines.append(f"| {b} | {by[(b, 1)]:.0f} | {by[(b, 2)]:.0f} |")
    procs = {r["processes"]: r["total_img_s"] for r in result["processes"]}
    lines += ["", f"Single-thread processes side by side (batch {result['batch']}): "
              + ", ".join(f"{n} process(es): {v:.0f} img/s in total" for n, v in procs.items())
              + f" ({procs[2] / procs[1]:.2f}x for 2)." if 2 in procs else "",
              "", "## 4. Evaluation throughput", "",
              f"{result['eval_img_s']['threads_1']:.0f} img/s with 1 thread, "
              f"{result['eval_img_s']['threads_2']:.0f} img/s with 2 (batches of 2000, `inference_mode`).", ""]
    if "full" in result:
        f = result["full"]
        lines += ["## End-to-end runs (`tinycnn bench --full`)", "",
                  f"- One 15-epoch `tinycnn train` of {result['model']}, command start to run folder written: "
                  f"**{f['one_seed_15_epochs_s']:.0f} s** ({f['one_seed_15_epochs_s'] / 60:.1f} min)."]
        if "five_seeds_15_epochs_s" in f:
            lines.append(f"- Five seeds with `tinycnn run experiments/step3.toml` (`--five-seeds`): "
                         f"**{f['five_seeds_15_epochs_s']:.0f} s**, {f['ratio']:.2f}x one seed.")
        lines.append("")
    return "\n".join(lines)


def plot_bench(result: dict, path: Path) -> None:
    from .plots import PNG_METADATA, plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
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
    fig.savefig(path, dpi=90, metadata=PNG_METADATA)
    plt.close(fig)


def write_bench(result: dict, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "bench.json").write_text(json.dumps(result, indent=1) + "\n")
    (out_dir / "bench.md").write_text(bench_markdown(result) + "\n![bench](bench.png)\n")
    plot_bench(result, out_dir / "bench.png")
