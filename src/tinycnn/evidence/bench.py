"""`tinycnn bench`: how fast training runs here, against the pipeline public solutions use.

Measured, in one run, on the same model, batch size and number of steps:
  1. training throughput of tinycnn's pipeline (whole split on the device, batch augmentation
     with affine_grid/grid_sample, channels_last, one thread) against a reference per-image
     pipeline written as public solutions write it (a Dataset that rotates one PIL image at a
     time, DataLoader with 2 workers, channels-first, default threads), alternating several times;
  2. where a training step's time goes (augmentation, forward, backward, optimiser step);
  3. throughput against batch size, threads and parallel worker processes;
  4. evaluation throughput;
  5. a real epoch: what `tinycnn train` does in one (the step-3 recipe on every training image,
     then the evaluation), beside the bare step of part 1, and the same epoch on one process.
`--full` also times real runs end to end as a user starts them: one whole `tinycnn train` of
each named recipe (and with `--five-seeds` a five-seed `tinycnn run` of step 3), each from
command start to files written.
This module measures and returns a dict (saved as reports/bench/bench.json); report/bench_page.py
renders it.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from tinycnn import PINNED_KERNELS
from tinycnn.evidence.parallel import run_tasks
from tinycnn.machine import machine_description
from tinycnn.models.model import build_model
from tinycnn.train.augment import AffineSpec, BatchLoader, random_affine
from tinycnn.train.config import TrainConfig
from tinycnn.train.data import MNIST, channel_stats, find_mnist, load_mnist, standardise
from tinycnn.train.engine import Events, Training, evaluate, fit, train_one_epoch
from tinycnn.train.optim import make_optimizer, make_scheduler
from tinycnn.train.recipes import RECIPES

MODEL = "Model_3"


# ---------------------------------------------------------------------------- the reference pipeline
class PerImageMNIST(torch.utils.data.Dataset):
    """What public solutions write: augment one PIL image per __getitem__ (RandomRotation-style)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, degrees: float, mean: float, std: float):
        self.images, self.labels, self.degrees, self.mean, self.std = images, labels, degrees, mean, std

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
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
            x = standardise(x, loader.mean, loader.std).contiguous(memory_format=torch.channels_last)
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
    torch.set_num_threads(threads)
    mean, std = channel_stats(data.train_images)
    loader = BatchLoader(torch.from_numpy(data.test_images), torch.from_numpy(data.test_labels), batch, mean, std,
                         channels_last=True)
    model = build_model(MODEL).to(memory_format=torch.channels_last)
    evaluate(model, loader)
    start = time.perf_counter()
    evaluate(model, loader)
    return len(loader.labels) / (time.perf_counter() - start)


def lane_throughput(batch: int, steps: int, data_dir) -> float:
    """One benchmark lane in its own process: single-thread training throughput."""
    return tinycnn_throughput(load_mnist(source=find_mnist(data_dir)), batch, steps, TrainConfig(), threads=1)


def parallel_throughput(processes: int, batch: int, steps: int, data_dir) -> float:
    """Total images per second of `processes` single-thread trainers running side by side."""
    return sum(run_tasks(lane_throughput, [(batch, steps, data_dir)] * processes, workers=processes))


# ---------------------------------------------------------------------------- end-to-end runs
ISA_LANE = ("import json, sys, torch; from tinycnn.evidence.bench import first_epoch, tinycnn_throughput; "
            "from tinycnn.train.config import TrainConfig; from tinycnn.train.data import load_mnist; data = load_mnist(); "
            "print(json.dumps({'img_s': tinycnn_throughput(data, 64, int(sys.argv[1]), TrainConfig()), "
            "'kernels': torch.backends.cpu.get_cpu_capability(), 'epoch1': first_epoch(data) if sys.argv[2] == '1' else None}))")


class FirstEpochDone(Exception):
    def __init__(self, record: dict):
        self.record = record


class StopAfterFirstEpoch(Events):
    def epoch_end(self, training: Training) -> None:
        raise FirstEpochDone(training.history[-1])


def first_epoch(data: MNIST) -> dict:
    """Seed 0's first epoch of the step-3 recipe (its whole schedule's first epoch): where kernels show first."""
    try:
        fit(TrainConfig(), data, StopAfterFirstEpoch())
    except FirstEpochDone as done:
        return {k: done.record[k] for k in ("train_loss", "eval_loss", "eval_acc")}
    raise AssertionError("fit ended without an epoch")


class StopAfterEpochs(Events):
    def __init__(self, epochs: int):
        self.epochs = epochs

    def epoch_end(self, training: Training) -> None:
        if len(training.history) == self.epochs:
            raise FirstEpochDone(training.history[-1])


def real_epoch(data: MNIST, images: int = 0, recipe_cfg: TrainConfig | None = None) -> dict:
    """The second epoch of a `tinycnn train` of the step-3 recipe (or `recipe_cfg`; the first epoch
    warms the allocator), as the engine times it: every training step, then the evaluation.
    `images` > 0: on that many training images only (a quick check of the measurement itself)."""
    cfg = (recipe_cfg or TrainConfig()).replace(train_subset=images)
    try:
        fit(cfg, data, StopAfterEpochs(2))
    except FirstEpochDone as done:
        train_images = images or len(data.train_labels)
        steps = -(-train_images // cfg.batch_size)
        return {"seconds": done.record["seconds"], "steps": steps, "train_images": train_images,
                "eval_images": len(data.test_labels), "ms_per_step": 1000 * done.record["seconds"] / steps}
    raise AssertionError("fit ended before its second epoch")


def isa_throughput(native: bool, steps: int, with_first_epoch: bool = False) -> dict:
    """Single-thread training throughput in a fresh interpreter, with tinycnn's AVX2 pin or without
    it (the CPU's own best kernels): the pin is read when torch is imported, so it needs a process."""
    env = {k: v for k, v in os.environ.items() if k not in PINNED_KERNELS}
    env["TINYCNN_NATIVE_ISA"] = "1" if native else "0"
    run = subprocess.run([sys.executable, "-c", ISA_LANE, str(steps), "1" if with_first_epoch else "0"], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(run.stdout)


def timed_command(args: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tinycnn.cli.main", *args], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def full_runs(data_dir, experiment: Path, five_seeds: bool) -> dict:
    """Wall time of one whole `tinycnn train` of each named recipe, one after the other, as a user
    starts it (and of a five-seed step-3 run)."""
    with tempfile.TemporaryDirectory() as tmp:
        extra = ["--data-dir", str(data_dir)] if data_dir else []
        recipes = {}
        for name in RECIPES:
            args = ["train", "--recipe", name, "--quiet", "--out", f"{tmp}/{name}", *extra]
            recipes[name] = {"seconds": timed_command(args, Path.cwd()), "command": " ".join(["tinycnn", *args[:3]])}
        times = {"recipes": recipes, "one_seed_15_epochs_s": recipes["step3"]["seconds"]}
        if five_seeds:
            five = timed_command(["run", str(experiment.resolve()), "--out", f"{tmp}/five", *extra], Path.cwd())
            times.update(five_seeds_15_epochs_s=five, ratio=five / times["one_seed_15_epochs_s"])
    return times


# ---------------------------------------------------------------------------- the whole benchmark
def run_bench(data_dir=None, steps: int = 60, repeats: int = 3, full: bool = False,
              five_seeds: bool = False, epoch_images: int = 0, log=print) -> dict:
    data = load_mnist(source=find_mnist(data_dir))
    cfg = TrainConfig()
    batch = cfg.batch_size
    result: dict = {"machine": machine_description(),
                    "model": MODEL, "batch": batch, "steps": steps, "repeats": repeats}

    log(f"1/5 pipeline comparison: {repeats} alternations of {steps} steps each")
    ours, reference = [], []
    for i in range(repeats):
        ours.append(tinycnn_throughput(data, batch, steps, cfg))
        reference.append(reference_throughput(data, batch, steps, cfg))
        log(f"  round {i + 1}: tinycnn {ours[-1]:.0f} img/s, reference {reference[-1]:.0f} img/s")
    result["pipeline"] = {"tinycnn_img_s": ours, "reference_img_s": reference,
                          "tinycnn_median": statistics.median(ours), "reference_median": statistics.median(reference),
                          "ratio": statistics.median(ours) / statistics.median(reference)}

    log("2/5 step breakdown")
    result["breakdown_ms"] = step_breakdown(data, cfg, batch, steps)

    log("3/5 scaling with batch size, threads and processes")
    # the same number of images at every batch size (at least two batches, for tiny test runs)
    result["scaling"] = [{"batch": b, "threads": t, "img_s": tinycnn_throughput(data, b, max(2, steps * batch // b), cfg, t)}
                         for t in (1, 2) for b in (64, 128, 256, 512, 1024)]
    result["processes"] = [{"processes": p, "total_img_s": parallel_throughput(p, batch, steps, data_dir)}
                           for p in (1, 2)]

    log("   the cost of same-numbers-everywhere: AVX2-pinned kernels against the CPU's own")
    lanes = [(isa_throughput(False, steps, i == 0 and full), isa_throughput(True, steps, i == 0 and full))
             for i in range(repeats)]
    result["isa"] = {"pinned_img_s": [p["img_s"] for p, _ in lanes], "native_img_s": [n["img_s"] for _, n in lanes],
                     "pinned_kernels": lanes[0][0]["kernels"], "native_kernels": lanes[0][1]["kernels"],
                     "pinned_epoch1": lanes[0][0]["epoch1"], "native_epoch1": lanes[0][1]["epoch1"]}

    log("4/5 evaluation throughput")
    result["eval_img_s"] = {"threads_1": eval_throughput(data, cfg, threads=1),
                            "threads_2": eval_throughput(data, cfg, threads=2)}
    log("5/5 a real epoch, evaluation included (two epochs of the step-3 recipe, on its two processes and on one)")
    result["real_epoch"] = real_epoch(data, epoch_images)
    result["processes_epoch"] = {"processes_1": real_epoch(data, epoch_images, cfg.replace(processes=1)),
                                 "processes_2": result["real_epoch"]}
    if full or five_seeds:
        log(f"end-to-end: one whole train of each recipe ({', '.join(RECIPES)})" +
            (", then five seeds" if five_seeds else "") + " (minutes)")
        result["full"] = full_runs(data_dir, Path("experiments/step3.toml"), five_seeds)
    result["gpu"] = None if not torch.cuda.is_available() else torch.cuda.get_device_name()
    return result
