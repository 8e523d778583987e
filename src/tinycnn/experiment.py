"""Train every seed of an experiment, in parallel single-thread worker processes.

Small convolutions barely speed up with a second thread, but two single-thread processes side
by side give nearly twice the throughput, so seeds run one per core. Each worker uses exactly
the settings of `tinycnn train --seed N` (threads included), so a seed's numbers are the same
whether it ran alone or beside others.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import queue as queue_module
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from tqdm import tqdm

from .config import TrainConfig
from .data import load_mnist
from .runs import metrics_record, write_json


def train_seed(cfg: TrainConfig, data_dir: str | None, progress=None) -> dict:
    """Worker body: one full run, its metrics record returned to the parent."""
    from .engine import fit

    start = time.perf_counter()
    data = load_mnist(data_dir)
    last_step = 0

    def on_step(step: int, loss: float, acc: float) -> None:
        nonlocal last_step
        if progress is not None:
            progress.put(("steps", cfg.seed, step - last_step))
        last_step = step

    def on_epoch(record: dict) -> None:
        nonlocal last_step
        last_step = 0
        if progress is not None:
            progress.put(("epoch", cfg.seed, record))

    result = fit(cfg, data, on_step=on_step, on_epoch=on_epoch)
    return metrics_record(cfg, result, time.perf_counter() - start)


def default_workers(seeds: int) -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(seeds, cores))


def run_seeds(base: TrainConfig, seeds: list[int], out_dir: Path, data_dir: str | None = None,
              workers: int | None = None) -> dict[int, dict]:
    """Train each seed, writing out_dir/seed<N>.json as soon as it finishes; returns the records."""
    out_dir.mkdir(parents=True, exist_ok=True)
    load_mnist(data_dir)  # fail fast (and build the cache once) before any worker starts
    workers = workers or default_workers(len(seeds))
    steps_per_epoch = -(-(base.train_subset or (60_000 - base.holdout)) // base.batch_size)
    records: dict[int, dict] = {}
    context = mp.get_context("spawn")  # a clean interpreter per worker: no inherited thread pools
    with context.Manager() as manager, ProcessPoolExecutor(workers, mp_context=context) as pool:
        progress = manager.Queue()
        pending = {pool.submit(train_seed, base.replace(seed=seed), data_dir, progress): seed
                   for seed in seeds}
        with tqdm(total=steps_per_epoch * base.epochs * len(seeds), unit="step", dynamic_ncols=True,
                  desc=f"{base.model} x {len(seeds)} seeds, {workers} workers") as bar:
            while pending:
                try:
                    kind, seed, payload = progress.get(timeout=0.5)
                    if kind == "steps":
                        bar.update(payload)
                    else:
                        bar.write(f"seed {seed} " + epoch_line(payload))
                except queue_module.Empty:
                    pass
                for future in [f for f in pending if f.done()]:
                    seed = pending.pop(future)
                    records[seed] = future.result()  # re-raises a worker's exception here
                    write_json(out_dir / f"seed{seed}.json", records[seed])
    return {seed: records[seed] for seed in seeds}


def epoch_line(record: dict) -> str:
    return (f"epoch {record['epoch']:2d}: train loss {record['train_loss']:.4f} acc {record['train_acc']:.2f}% | "
            f"test loss {record['test_loss']:.4f} acc {record['test_acc']:.2f}% | "
            f"lr {record['lr']:.4f} | {record['seconds']:.1f}s")
