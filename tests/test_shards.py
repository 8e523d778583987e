"""One run on two processes (train/shards.py), on small real subsets: determinism, what each
process trains on, resuming, and what happens when a process fails or a setting cannot work."""
import os
import signal
import threading
import time

import pytest
import torch
from conftest import TINY, StopAfter, without_time

from tinycnn.errors import ConfigError, DataError, Diverged
from tinycnn.models.model import build_model
from tinycnn.train.augment import AffineSpec, BatchLoader
from tinycnn.train.config import TrainConfig
from tinycnn.train.engine import fit
from tinycnn.train.shards import Exchange, Shard

TWO = dict(TINY, batch_size=64, processes=2, epochs=2, ema=0.99)


def test_two_processes_repeat_to_the_bit_and_are_a_recipe_of_their_own(mnist):
    first, second = fit(TrainConfig(**TWO), mnist), fit(TrainConfig(**TWO), mnist)
    assert without_time(first.history) == without_time(second.history)
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values()):
        assert torch.equal(a, b)
    assert (first.predicted == second.predicted).all() and len(first.predicted) == TINY["test_subset"]
    # each process's batch norm sees half a batch: close to one process, not the same numbers
    alone = fit(TrainConfig(**{**TWO, "processes": 1}), mnist)
    assert without_time(alone.history) != without_time(first.history)
    assert abs(alone.history[-1]["eval_acc"] - first.history[-1]["eval_acc"]) < 3
    # the accuracy is the whole evaluation set's, put together from both halves
    assert first.history[-1]["eval_acc"] == pytest.approx(100 * (first.predicted == first.labels).mean())


def test_each_process_trains_on_its_part_of_the_same_augmented_batch(mnist):
    images, labels = torch.from_numpy(mnist.train_images[:200]), torch.from_numpy(mnist.train_labels[:200])

    def batches(part):
        loader = BatchLoader(images, labels, 64, 0.13, 0.31, shuffle=True, augment=AffineSpec(7, 0.05, 0.05),
                             generator=torch.Generator().manual_seed(3))
        loader.part = part
        return list(loader)

    exchange = Exchange(2, 1)
    whole = batches(None)
    halves = [batches(Shard(rank, exchange).part) for rank in (0, 1)]
    for step, (x, y) in enumerate(whole):
        assert torch.equal(torch.cat([halves[0][step][1], halves[1][step][1]]), y)
        assert torch.allclose(torch.cat([halves[0][step][0], halves[1][step][0]]), x, atol=1e-6)
    assert [len(y) for _, y in halves[1]] == [32, 32, 32, 4]  # 200 = 3 x 64 + 8


def test_parts_cover_every_item_once_in_order():
    exchange = Exchange(3, 1)
    for n in (0, 1, 2, 3, 10, 11, 64):
        parts = [Shard(rank, exchange).part(n) for rank in range(3)]
        assert [i for p in parts for i in range(n)[p]] == list(range(n))
        assert max(len(range(n)[p]) for p in parts) - min(len(range(n)[p]) for p in parts) <= 1


def test_resuming_a_two_process_run_gives_the_uninterrupted_run(mnist):
    whole = fit(TrainConfig(**TWO), mnist)
    stop = StopAfter(1)
    with pytest.raises(KeyboardInterrupt):
        fit(TrainConfig(**TWO), mnist, stop)
    resumed = fit(TrainConfig(**TWO), mnist, resume=stop.state)
    assert without_time(resumed.history) == without_time(whole.history)


def test_a_helper_that_dies_stops_the_run_with_one_clear_error(mnist):
    import multiprocessing as mp
    killed = []

    def kill_the_helper():
        while not mp.active_children():
            time.sleep(0.05)
        time.sleep(1.0)
        for child in mp.active_children():
            os.kill(child.pid, signal.SIGKILL)
            killed.append(child.pid)

    threading.Thread(target=kill_the_helper, daemon=True).start()
    with pytest.raises(DataError, match=r"a helper process of this run stopped \(exit code -9\)"):
        fit(TrainConfig(**{**TWO, "epochs": 50}), mnist)
    assert killed and not mp.active_children()


def test_divergence_stops_every_process(mnist):
    import multiprocessing as mp
    cfg = TrainConfig(**{**TWO, "epochs": 3}, lr=0.05, schedule="step", step_size=1, gamma=1e6)
    with pytest.raises(Diverged, match=r"epoch 2, step \d+"):
        fit(cfg, mnist)
    assert not mp.active_children()


def test_settings_two_processes_cannot_train_are_refused_in_one_line(mnist):
    with pytest.raises(ConfigError, match="batch_size 1 cannot be shared by 2 processes"):
        TrainConfig(batch_size=1, processes=2)
    with pytest.raises(ConfigError, match="processes > 1 trains copies in other processes"):
        fit(TrainConfig(**TWO), mnist, module=build_model("Model_3"))


def test_the_semaphore_barrier_of_other_cpus_gives_the_same_run(mnist, monkeypatch):
    """ARM and other CPUs that may reorder stores wait on a semaphore barrier instead of a flag."""
    from tinycnn.train import shards
    cfg = TrainConfig(**{**TWO, "epochs": 1})
    flagged = fit(cfg, mnist)
    monkeypatch.setattr(shards, "STORES_IN_ORDER", False)
    assert Exchange(2, 1).barrier is not None
    assert without_time(fit(cfg, mnist).history) == without_time(flagged.history)
