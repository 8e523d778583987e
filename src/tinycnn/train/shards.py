"""One run on several cores: `processes` copies of the training, each on a part of every batch.

Every process draws the same batch (the same permutation and augmentation draws, from the same
seed), keeps its own contiguous part of it, and computes that part's loss scaled by the whole
batch's size. After the backward pass the processes add their gradients (and average their
batch-norm running statistics) through shared memory, so every copy takes the same optimiser step
and the weights stay identical, bit for bit, in every process. Each process's batch norm
normalises over its own part of the batch (as on several GPUs without SyncBatchNorm): that is why
`processes` is a setting of the recipe and not only of the machine. The sum is taken in rank
order in every process, so a run is deterministic given its seed and its number of processes,
on a machine with any number of cores.

Why not torch.distributed: on a 2-core machine gloo's all-reduce cost 13 ms a step of step 3's first model
(a step is about 25 ms), mostly in waking its threads; a flag in shared memory costs a few
microseconds. Process 0 is the caller (it reports progress and writes files); the others are
spawned helpers that compute and exchange only.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import platform
import time

import torch

from tinycnn.errors import ConfigError, DataError
from tinycnn.models.spec import ModelSpec
from tinycnn.train.average import averaged_tensors
from tinycnn.train.data import split_for

SPIN_CHECK_SECONDS = 1.0   # how often a waiting process checks that the others are still alive
# x86-64 keeps stores in order (total store order): once a flag is seen, the data written before
# it is seen too. Elsewhere (ARM) a semaphore barrier orders memory with its system calls.
STORES_IN_ORDER = platform.machine().lower() in ("x86_64", "amd64")


class ShardError(DataError):
    """Another process of the run stopped (it failed, or was killed) while this one waited for it."""


class Exchange:
    """Shared memory through which `world` processes add tensors: two slots, used in turn, so a
    process may write the next step while a slower one still reads this one."""

    def __init__(self, world: int, size: int):
        self.world, self.size = world, size
        self.slots = torch.zeros(2, world, size).share_memory_()
        self.flags = torch.zeros(world, dtype=torch.long).share_memory_()
        self.barrier = None if STORES_IN_ORDER else mp.get_context("spawn").Barrier(world)
        self.rounds = 0


class Shard:
    """This process's place in a run: rank (0 = the caller), the exchange, and who to watch."""

    def __init__(self, rank: int, exchange: Exchange, helpers: list | None = None):
        self.rank, self.exchange, self.helpers = rank, exchange, helpers or []
        self.parent = os.getppid()

    @property
    def world(self) -> int:
        return self.exchange.world

    def part(self, n: int) -> slice:
        """This process's contiguous part of n items (the first n % world parts one item longer)."""
        base, extra = divmod(n, self.world)
        start = self.rank * base + min(self.rank, extra)
        return slice(start, start + base + (self.rank < extra))

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """The element-wise sum of every process's `values` (a flat float tensor), the same bits everywhere."""
        ex = self.exchange
        ex.rounds += 1
        slot = ex.slots[ex.rounds % 2]
        slot[self.rank, :len(values)].copy_(values)
        if ex.barrier is not None:
            ex.barrier.wait()
        ex.flags[self.rank] = ex.rounds
        self.wait_for(ex.rounds)
        total = slot[0, :len(values)].clone()
        for rank in range(1, self.world):
            total += slot[rank, :len(values)]
        return total

    def add_gradients(self, model: torch.nn.Module, loss: torch.Tensor, hits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """After this process's backward pass: every process's gradients added into this model's,
        its batch-norm running statistics set to the processes' mean; returns the whole batch's
        loss and number of correct predictions."""
        grads = [p.grad for p in model.parameters()]
        stats = [b for b in model.buffers() if b.is_floating_point()]
        mine = torch.cat([t.reshape(-1) for t in (*grads, *stats)] + [loss.reshape(1), hits.reshape(1).float()])
        total = self.sum(mine)
        offset = 0
        for i, t in enumerate((*grads, *stats)):
            part = total[offset:offset + t.numel()].view(t.shape)
            t.copy_(part if i < len(grads) else part / self.world)
            offset += t.numel()
        return total[-2], total[-1]

    def put_together(self, predicted: torch.Tensor, loss_sum: torch.Tensor, own: slice, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Every process's predictions for its part of n evaluation images, and their summed loss."""
        mine = torch.zeros(n + 1)
        mine[own] = predicted.float()  # labels 0-9 are exact as floats
        mine[n] = loss_sum
        total = self.sum(mine)
        return total[:n].long(), total[n]

    def wait_for(self, rounds: int) -> None:
        flags, checked = self.exchange.flags, time.monotonic()
        while int(flags.min()) < rounds:
            os.sched_yield()  # on a machine with fewer cores than processes, let the others run
            if time.monotonic() - checked > SPIN_CHECK_SECONDS:
                self.check_others()
                checked = time.monotonic()

    def check_others(self) -> None:
        if self.rank and os.getppid() != self.parent:
            raise ShardError("the run's first process is gone")
        for helper in self.helpers:
            if helper.exitcode is not None:
                raise ShardError(f"a helper process of this run stopped (exit code {helper.exitcode})")


def exchange_size(cfg, data) -> int:
    """Floats a step's exchange carries (gradients, batch-norm statistics, loss and hits) or an
    evaluation's (every prediction and the loss), whichever is more."""
    per_step = sum(t.numel() for t in averaged_tensors(ModelSpec.of(cfg).build())) + 2
    return max(per_step, len(split_for(cfg, data)[3]) + 1)


def start_helpers(cfg, data, resume: dict | None, size: int) -> Shard:
    """Spawn processes 1..N-1 of a run; returns process 0's Shard (the caller's)."""
    if mp.current_process().daemon:  # e.g. a Dask worker: Python lets it start no process of its own
        raise ConfigError(f"processes = {cfg.processes} starts helper processes, which this (daemonic) process "
                          f"may not: train with processes = 1 here", key="processes")
    exchange = Exchange(cfg.processes, size)
    context = mp.get_context("spawn")
    helpers = [context.Process(target=helper_main, args=(cfg, data, resume, exchange, rank), daemon=True)
               for rank in range(1, cfg.processes)]
    for helper in helpers:
        helper.start()
    return Shard(0, exchange, helpers)


def stop_helpers(shard: Shard | None) -> None:
    for helper in shard.helpers if shard else []:
        if helper.is_alive():
            helper.terminate()
        helper.join()


def helper_main(cfg, data, resume: dict | None, exchange: Exchange, rank: int) -> None:
    """A helper's whole life: the same run as process 0, silent, until the last epoch (or an error)."""
    from tinycnn.train.engine import run_epochs  # the engine imports this module
    try:
        run_epochs(cfg, data, resume=resume, shard=Shard(rank, exchange))
    except Exception:  # process 0 reports the run's error; a helper only stops
        raise SystemExit(1) from None
