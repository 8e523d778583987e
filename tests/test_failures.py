"""When things go wrong, on the real command line: divergence, killed and interrupted runs,
occupied or unwritable folders, damaged files, and a table of bad command lines."""
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import ROOT, TINY, TINY_SWEEP, call_cli, one_line_error, run_cli, sweep_file, trials, without_time
from safetensors.torch import load_file

from tinycnn.evidence import records
from tinycnn.train.config import TrainConfig
from tinycnn.train.engine import fit

SMALL = ["--epochs", "5", "--train-subset", "3000", "--test-subset", "1000", "--batch-size", "64",
         "--ema", "0.99", "--dropout", "0.1"]  # exercises weights, average, optimiser, schedule and every RNG
# A kill or Ctrl-C must land while the run is still going, however loaded the machine is (the
# suite runs two test files at once): a run stopped after its first epoch has four (or, for
# Ctrl-C, 39) epochs left, so a late signal is never late enough to find it finished.


def start_cli(*args, **kwargs) -> subprocess.Popen:
    """The command as a terminal starts it. A pytest-xdist worker ignores SIGINT, and an ignored
    signal stays ignored in its children: Python then installs no KeyboardInterrupt handler, and
    Ctrl-C would do nothing. A shell leaves SIGINT at its default, so the child gets that back."""
    return subprocess.Popen([sys.executable, "-m", "tinycnn.cli", *map(str, args)], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL), **kwargs)


def wait_for(condition, what: str, process: subprocess.Popen | None = None, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert process is None or process.poll() is None, f"the process ended before {what}: {process.communicate()}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def epochs_done(folder: Path) -> int:
    try:
        return len(records.read_metrics(folder / records.METRICS)["history"])
    except Exception:  # not written yet
        return 0


# ---------------------------------------------------------------------------- divergence
def test_a_diverging_run_stops_at_once_and_keeps_its_history(tmp_path, capsys):
    out = tmp_path / "run"
    line = one_line_error(call_cli(capsys, "train", "--lr", "1e6", "--epochs", "2", "--train-subset", "2000", "--batch-size",
                                   "64", "--processes", "1", "--clean-epochs", "0", "--out", out), 3)
    assert "diverged at epoch 1, step" in line and "lower the learning rate (--lr)" in line
    metrics = records.read_metrics(out / records.METRICS)
    assert f"learning rate {metrics['diverged']['lr']:.3g}" in line
    assert 1e5 <= metrics["diverged"]["lr"] <= 1e6  # one-cycle warms up from lr / 10
    assert metrics["status"] == "diverged" and metrics["history"] == [] and metrics["diverged"]["epoch"] == 1
    # a later divergence keeps the epochs before it: a step schedule multiplies the rate by 1e6 after epoch 1
    later = call_cli(capsys, "train", "--lr", "0.05", "--schedule", "step", "--step-size", "1", "--gamma", "1e6",
                    "--epochs", "3", "--train-subset", "2000", "--test-subset", "500", "--model", "Model_1", "--batch-size",
                    "64", "--processes", "1", "--clean-epochs", "0", "--out", tmp_path / "later")
    assert "diverged at epoch 2" in one_line_error(later, 3)
    assert [r["epoch"] for r in records.read_metrics(tmp_path / "later" / records.METRICS)["history"]] == [1]


def test_a_diverged_seed_is_recorded_and_the_other_seeds_go_on(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text('title = "T: t"\ntarget = "x"\nanalysis = "y"\nseeds = [0, 1]\n[train]\n'
                    'epochs = 1\ntrain_subset = 1000\nlr = 1000000.0\nbatch_size = 64\nprocesses = 1\nclean_epochs = 0\nmodel = "Model_1"\n')
    result = run_cli("run", path, "--out", tmp_path / "out", "--workers", "1")
    assert result.returncode == 3 and "seeds 0, 1 diverged" in result.stderr and "Traceback" not in result.stderr
    for seed in (0, 1):  # seed 1 ran although seed 0 had diverged
        assert records.read_metrics(records.seed_path(tmp_path / "out", seed))["status"] == "diverged"


def test_a_diverged_sweep_trial_is_pruned_and_the_sweep_goes_on(tmp_path):
    path = tmp_path / "div_sweep.toml"
    text = TINY_SWEEP.format(budget=8000, db=tmp_path / "div.db", epochs=1, subset=1000)
    text = text.replace("lr = {float = [0.05, 0.2], log = true}", "lr = {choices = [1000000.0, 0.1]}")
    path.write_text(text.replace("[train]", "enqueue = [{lr = 1000000.0}, {lr = 0.1}]\n\n[train]"))
    result = run_cli("sweep", path, "--trials", "2", "--workers", "1")
    assert result.returncode == 0, result.stderr
    done = sorted(trials(path), key=lambda t: t.number)
    assert "diverged" in done[0].user_attrs and done[0].state.name == "PRUNED"
    assert done[1].state.name == "COMPLETE"


# ---------------------------------------------------------------------------- killed, interrupted, resumed
def test_a_run_killed_at_a_random_moment_resumes_to_identical_metrics(tmp_path):
    whole_folder = tmp_path / "whole"
    whole = run_cli("train", *SMALL, "--out", whole_folder)
    assert whole.returncode == 0, whole.stderr
    # Where in epoch 2 to kill: a seeded fraction of epoch 1's own duration, so the moment repeats
    # with its seed ($TINYCNN_KILL_SEED) and stays inside the run on a fast or a loaded machine alike
    # (epochs 2 to 5 still take about four epoch-1 times after it).
    seed = int(os.environ.get("TINYCNN_KILL_SEED", "0"))
    fraction = random.Random(seed).uniform(0.0, 0.8)
    killed = tmp_path / "killed"
    process = start_cli("train", *SMALL, "--out", killed)
    wait_for(lambda: epochs_done(killed) >= 1, "the first epoch", process)
    moment = fraction * records.read_metrics(killed / records.METRICS)["history"][0]["seconds"]
    time.sleep(moment)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert records.run_status(killed) == "running", f"killed {moment:.2f}s into epoch 2 (seed {seed}) but the run had ended"
    resumed = run_cli("train", "--resume", killed)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout
    a, b = records.read_metrics(whole_folder / records.METRICS), records.read_metrics(killed / records.METRICS)
    assert without_time(a["history"]) == without_time(b["history"]), f"killed {moment:.2f}s into epoch 2 (seed {seed})"
    assert a["misclassified"] == b["misclassified"]
    wa, wb = load_file(whole_folder / records.WEIGHTS), load_file(killed / records.WEIGHTS)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert "this run is complete" in run_cli("train", "--resume", killed).stdout


def test_ctrl_c_stops_cleanly_and_says_how_to_resume(tmp_path):
    out = tmp_path / "run"
    process = start_cli("train", *SMALL, "--epochs", "40", "--out", out)
    wait_for(lambda: epochs_done(out) >= 1, "the first epoch", process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and "Traceback" not in stderr
    assert f"resume with: tinycnn train --resume {out}" in stderr


def test_an_interrupted_experiment_skips_finished_seeds_and_resumes_the_others(tmp_path, mnist):
    path = tmp_path / "tiny.toml"
    settings = {**TINY, "epochs": 3, "train_subset": 3000}
    path.write_text('title = "T: t"\ntarget = "x"\nanalysis = "y"\nseeds = [0, 1]\n[train]\n'
                    + "\n".join(f"{k} = {v!r}" for k, v in settings.items()))
    out = tmp_path / "out"
    process = start_cli("run", path, "--out", out, "--workers", "1", start_new_session=True)
    wait_for(lambda: records.seed_path(out, 0).exists() and epochs_done(records.seed_run_folder(out, 1)) >= 1,
             "seed 0 to finish and seed 1 to start", process)
    os.killpg(process.pid, signal.SIGKILL)  # the parent and its worker, as a power cut would
    process.wait()
    finished = records.seed_path(out, 0).stat().st_mtime_ns
    again = run_cli("run", path, "--out", out, "--workers", "1")
    assert again.returncode == 0, again.stderr
    assert records.seed_path(out, 0).stat().st_mtime_ns == finished  # not trained again
    for seed in (0, 1):
        alone = fit(TrainConfig(**settings, seed=seed), mnist)
        assert without_time(records.read_metrics(records.seed_path(out, seed))["history"]) == without_time(alone.history)


# ---------------------------------------------------------------------------- folders and files
def test_an_occupied_output_folder_needs_force(tmp_path, capsys):
    out = tmp_path / "run"
    tiny = [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()]
    assert call_cli(capsys, "train", *tiny, "--out", out).returncode == 0
    line = one_line_error(call_cli(capsys, "train", *tiny, "--out", out))
    assert "already holds a run" in line and "--force" in line
    assert call_cli(capsys, "train", *tiny, "--out", out, "--force").returncode == 0


def test_an_unwritable_output_folder_is_an_error_before_training(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = call_cli(capsys, "train", "--out", blocker / "run")
    assert "cannot write to the output folder" in one_line_error(result) and "epoch" not in result.stdout


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_damaged_checkpoint_is_refused(tmp_path, damage, capsys):
    out = tmp_path / "run"
    assert call_cli(capsys, "train", *[f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()], "--epochs", "2",
                   "--out", out).returncode == 0
    (out / records.METRICS).write_text(json.dumps({**json.loads((out / records.METRICS).read_text()),
                                                   "status": "running"}))  # as if stopped after an epoch
    blob = (out / records.CHECKPOINT).read_bytes()
    (out / records.CHECKPOINT).write_bytes(blob[: len(blob) // 3] if damage == "truncated" else os.urandom(len(blob)))
    assert "damaged or not a tinycnn checkpoint" in one_line_error(call_cli(capsys, "train", "--resume", out), code=1)


def test_a_sweep_database_that_is_not_one_or_holds_another_sweep_is_refused(tmp_path, capsys):
    path = sweep_file(tmp_path)
    db = tmp_path / "tiny.db"
    db.write_bytes(b"garbage" * 1000)
    assert "file is not a database" in one_line_error(call_cli(capsys, "sweep", path, "--trials", "1"), code=1)
    db.unlink()
    assert call_cli(capsys, "sweep", path, "--trials", "1").returncode == 0
    path.write_text(path.read_text().replace("budget = 8000", "budget = 7000"))
    line = one_line_error(call_cli(capsys, "sweep", path, "--trials", "2"), code=1)
    assert "made from another sweep file (budget differ)" in line


# ---------------------------------------------------------------------------- bad command lines
BAD = [  # (arguments, what the one line must name)
    (["train", "--epochs", "-1"], "--epochs"), (["train", "--epochs", "0"], "--epochs"),
    (["train", "--epochs", "abc"], "--epochs"), (["train", "--epochs", "100000"], "--epochs"),
    (["train", "--lr", "nan"], "--lr"), (["train", "--lr", "-0.1"], "--lr"), (["train", "--lr", "abc"], "--lr"),
    (["train", "--lr", "inf"], "--lr"), (["train", "--batch-size", "0"], "--batch-size"),
    (["train", "--batch-size", "10000000"], "--batch-size"), (["train", "--momentum", "1.5"], "--momentum"),
    (["train", "--optimizer", "rmsprop"], "--optimizer"), (["train", "--schedule", "cosine"], "--schedule"),
    (["train", "--model", "Model_99"], "model"), (["train", "--ema", "1.5"], "--ema"),
    (["train", "--rotate", "720"], "--rotate"), (["train", "--translate", "0.9"], "--translate"),
    (["train", "--dropout", "2"], "--dropout"), (["train", "--label-smoothing", "-0.1"], "--label-smoothing"),
    (["train", "--layout", "c8,x3"], "--layout"), (["train", "--holdout", "60000"], "--holdout"),
    (["train", "--seed", "-5"], "--seed"), (["train", "--threads", "0"], "--threads"),
    (["train", "--device", "tpu"], "--device"), (["train", "--resume", "/nonexistent/run"], "/nonexistent/run"),
    (["train", "--resume", "/tmp", "--lr", "0.2"], "--lr"), (["train", "--no-such-option"], "--no-such-option"),
    (["train", "--train-subset", "-1"], "--train-subset"), (["train", "--test-subset", "70000"], "--test-subset"),
    (["run", "missing.toml"], "missing.toml"), (["run", "experiments/step3.toml", "--seeds", "a,b"], "--seeds"),
    (["run", "experiments/step3.toml", "--seeds", "-1"], "--seeds"),
    (["run", "experiments/step3.toml", "--workers", "0"], "--workers"),
    (["run", "experiments/step3.toml", "--workers", "abc"], "--workers"),
    (["run", "experiments/step3.toml", "--lr", "0.5"], "lr=0.5"),
    (["run", "experiments/step3.toml", "--epochs", "NaN"], "--epochs"),
    (["summary", "Model_99"], "Model_99"), (["sweep", "missing_sweep.toml"], "missing_sweep.toml"),
    (["sweep", "experiments/frontier_sweep.toml", "--trials", "0"], "--trials"),
    (["sweep", "experiments/frontier_sweep.toml", "--workers", "-2"], "--workers"),
    (["bench", "--steps", "0"], "--steps"), (["bench", "--repeats", "-1"], "--repeats"),
    (["report", "--experiments", "/nonexistent"], "/nonexistent"),
    (["report", "--readme", "/nonexistent/README.md"], "/nonexistent/README.md"),
    (["evaluate", "Model_99"], "Model_99"), (["evaluate", "Model_3", "--data-dir"], "--data-dir"),
    (["export", "Model_3", "--format", "png", "--out", "x"], "--format"),
    (["export", "Model_3", "--format", "c", "--weights", "int4", "--out", "x"], "--weights"),
    (["export", "Model_3", "--out", "x"], "--format"), (["predict", "Model_3"], "IMAGE"),
    (["demo", "--port", "70000"], "--port"), (["demo", "--port", "http"], "--port"),
    (["export-check", "--reports", "/nonexistent"], "/nonexistent"),
    (["frobnicate"], "frobnicate"),
]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has the GPU asked for")
def test_asking_for_a_gpu_that_is_not_there_is_one_line_and_leaves_no_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    for command in (["train", "--out", tmp_path / "run"], ["run", "experiments/step1.toml", "--out", tmp_path / "exp"]):
        assert "--device cuda: no CUDA GPU" in one_line_error(call_cli(capsys, *command, "--device", "cuda"), code=2)
    assert list(tmp_path.iterdir()) == []


def test_bad_command_lines_exit_2_with_one_line_naming_the_option(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)  # the experiment files named relative to the checkout, as a user there
    for args, named in BAD:
        line = one_line_error(call_cli(capsys, *args), code=2)
        assert named in line, (args, line)


def test_a_bad_command_line_is_one_line_from_the_real_command_too():
    """The same through a new process: before torch is imported (an option's range) and after."""
    for args, named in (BAD[0], (["summary", "Model_99"], "Model_99")):
        assert named in one_line_error(run_cli(*args), code=2)
