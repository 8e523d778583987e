"""The training core on small real subsets: determinism, every optimiser, the weight average,
resuming from a checkpoint state, and divergence."""
import os
import platform
import subprocess
import sys

import pytest
import torch
from conftest import ROOT, TINY, StopAfter, without_time

from tinycnn import PINNED_KERNELS
from tinycnn.errors import Diverged
from tinycnn.evidence import records
from tinycnn.evidence.experiment import load_experiment
from tinycnn.machine import cpu_flags, machine_description
from tinycnn.models.model import build_model
from tinycnn.train.config import TrainConfig
from tinycnn.train.average import WeightAverage
from tinycnn.train.engine import fit


def test_same_seed_gives_identical_metrics(mnist):
    cfg = TrainConfig(**TINY, seed=7)
    first, second = fit(cfg, mnist), fit(cfg, mnist)
    assert without_time(first.history) == without_time(second.history)
    other = fit(cfg.replace(seed=8), mnist)
    assert without_time(other.history) != without_time(first.history)


@pytest.mark.parametrize("optimizer, schedule", [("adam", "step"), ("adamw", "none"), ("sgd", "onecycle")])
def test_every_optimiser_and_schedule_trains(mnist, optimizer, schedule):
    lr = 0.01 if optimizer != "sgd" else 0.1
    settings = {**TINY, "epochs": 2, "train_subset": 4000}
    result = fit(TrainConfig(**settings, optimizer=optimizer, schedule=schedule, lr=lr, label_smoothing=0.1), mnist)
    assert result.history[-1]["eval_acc"] > 60.0  # 80 steps from scratch; chance is 10%


def test_weight_average_arithmetic_including_batch_norm_statistics():
    model = build_model("Model_3")
    average = WeightAverage(model, decay=0.99)
    weight, mean = model.conv1[0].weight, model.conv1[1].running_mean
    before_w, before_m = weight.detach().clone(), mean.clone()
    with torch.no_grad():
        weight.add_(1.0)
        mean.add_(2.0)
        model.conv1[1].num_batches_tracked += 5
    average.update()  # first update: decay warms up to min(0.99, 2 / 11)
    d = 2 / 11
    assert torch.allclose(average.model.conv1[0].weight, d * before_w + (1 - d) * (before_w + 1), atol=1e-6)
    assert torch.allclose(average.model.conv1[1].running_mean, d * before_m + (1 - d) * (before_m + 2), atol=1e-6)
    assert average.model.conv1[1].num_batches_tracked == 0  # a counter, not averaged
    for _ in range(2000):
        average.update()
    assert torch.allclose(average.model.conv1[0].weight, weight, atol=1e-5)  # converges to a still model
    assert not any(p.requires_grad for p in average.model.parameters())


def test_with_ema_the_average_is_what_is_evaluated(mnist):
    cfg = TrainConfig(**{**TINY, "epochs": 2}, ema=0.99)
    result = fit(cfg, mnist)
    plain = fit(cfg.replace(ema=0.0), mnist)
    # same training, another evaluated model: the train metrics agree, the evaluated ones do not
    assert [r["train_loss"] for r in result.history] == [r["train_loss"] for r in plain.history]
    assert [r["eval_loss"] for r in result.history] != [r["eval_loss"] for r in plain.history]
    assert not result.model.training and result.history[-1]["eval_acc"] > 50  # 40 steps; chance is 10%


@pytest.mark.skipif(platform.machine() != "x86_64" or "avx2" not in (cpu_flags() or set()) or torch.cuda.is_available(),
                    reason="the same digits are promised on x86-64 CPUs with AVX2 (elsewhere: the same distribution)")
@pytest.mark.parametrize("experiment", ["step3", "step3_wide"])
def test_this_cpu_repeats_the_committed_run(mnist, experiment):
    """README, "Same seed, same numbers": seed 0's first epoch of step 3 (`make train`: two
    processes sharing each batch, its 14-epoch schedule), and of step 3 as first reported (one
    process, its 15-epoch schedule), equals the committed record to the last bit. It failed on a Xeon with AVX-512 and AMX while only oneDNN
    and ATen were pinned: MKL chose another code path there."""
    stop = StopAfter(1)
    with pytest.raises(KeyboardInterrupt):
        fit(load_experiment(ROOT / "experiments" / f"{experiment}.toml").train.replace(seed=0), mnist, stop)
    committed = records.read_metrics(records.seed_path(ROOT / "reports" / experiment, 0))["history"][0]
    assert without_time(stop.state["history"]) == without_time([committed]), machine_description()


def test_importing_tinycnn_pins_the_kernels_unless_told_not_to():
    code = "import os, tinycnn, torch; print(torch.backends.cpu.get_cpu_capability(), *sorted(k for k in tinycnn.PINNED_KERNELS if k in os.environ))"
    clean = {k: v for k, v in os.environ.items() if k not in PINNED_KERNELS and k != "TINYCNN_NATIVE_ISA"}
    pinned = subprocess.run([sys.executable, "-c", code], env=clean, capture_output=True, text=True, check=True).stdout.split()
    assert pinned[1:] == sorted(PINNED_KERNELS) and pinned[0] != "AVX512"
    native = subprocess.run([sys.executable, "-c", code], env={**clean, "TINYCNN_NATIVE_ISA": "1"}, capture_output=True,
                            text=True, check=True).stdout.split()
    assert native[1:] == []


def test_resuming_a_checkpoint_state_gives_the_uninterrupted_run(mnist):
    """Weights, weight average, optimiser, schedule, data order, augmentation (and its clean last
    epoch) and dropout all continue."""
    cfg = TrainConfig(**{**TINY, "epochs": 3, "clean_epochs": 1}, ema=0.99, dropout=0.1)
    whole = fit(cfg, mnist)
    stop = StopAfter(1)
    with pytest.raises(KeyboardInterrupt):
        fit(cfg, mnist, stop)
    torch.manual_seed(12345)  # whatever the process did in between must not matter
    resumed = fit(cfg, mnist, resume=stop.state)
    assert without_time(resumed.history) == without_time(whole.history)
    for a, b in zip(resumed.model.state_dict().values(), whole.model.state_dict().values()):
        assert torch.equal(a, b)


def test_clean_epochs_train_the_last_epochs_on_the_images_as_they_are(mnist):
    cfg = TrainConfig(**{**TINY, "epochs": 2, "rotate": 7.0, "translate": 0.05, "scale": 0.05})
    augmented = without_time(fit(cfg, mnist).history)
    never_augmented = without_time(fit(cfg.replace(rotate=0.0, translate=0.0, scale=0.0), mnist).history)
    assert without_time(fit(cfg.replace(clean_epochs=2), mnist).history) == never_augmented
    assert without_time(fit(cfg.replace(clean_epochs=5), mnist).history) == never_augmented  # a recipe run shorter
    last_clean = without_time(fit(cfg.replace(clean_epochs=1), mnist).history)
    assert last_clean[0] == augmented[0] and last_clean[1] != augmented[1]


def test_a_non_finite_loss_stops_the_run_with_where_and_why(mnist):
    # epoch 1 at a sane rate, then a step schedule multiplies it by a million
    cfg = TrainConfig(**{**TINY, "epochs": 3}, lr=0.05, schedule="step", step_size=1, gamma=1e6)
    with pytest.raises(Diverged, match=r"epoch 2, step \d+ \(learning rate 5e\+04\)") as error:
        fit(cfg, mnist)
    assert error.value.epoch == 2 and 1 <= error.value.step <= 20 and error.value.lr == pytest.approx(5e4)
    assert [r["epoch"] for r in error.value.history] == [1]  # the finished epoch is kept


def test_a_warm_up_of_exactly_one_step_does_not_divide_by_zero():
    """5 steps at pct_start 0.2 (`tinycnn train --epochs 1 --train-subset 640` at batch 128) crashed
    inside OneCycleLR; the schedule still rises to the peak rate and anneals."""
    from tinycnn.train.optim import make_optimizer, make_scheduler
    model = torch.nn.Linear(2, 2)
    optimizer = make_optimizer(TrainConfig(epochs=1), model)
    scheduler = make_scheduler(TrainConfig(epochs=1), optimizer, steps_per_epoch=5)
    rates = []
    for _ in range(5):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert max(rates) == pytest.approx(0.2, rel=0.2) and rates[-1] < rates[1] and rates[0] == pytest.approx(0.02)
