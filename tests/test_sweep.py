"""Optuna sweeps on real data: tiny studies, budget rejection, resume after an interrupted trial."""
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest

from conftest import ROOT
from tinycnn.config import ConfigError
from tinycnn.sweep import load_sweep, run_sweep, sweep_report

TINY = """
title = "tiny"
budget = {budget}
study = "tiny"
storage = "sqlite:///{db}"
prune_warmup = 1
heartbeat = 1
grace_period = 2
layout = "c{{c1}},c12,t8,m,c{{c3}},c16"

[train]
epochs = {epochs}
holdout = 10000
train_subset = {subset}
test_subset = 1000
batch_size = 50

[space]
c1 = {{choices = [4, 6]}}
c3 = {{int = [12, 16], step = 2}}
lr = {{float = [0.05, 0.2], log = true}}
"""


def sweep_file(tmp_path, budget=8000, epochs=1, subset=5000):
    path = tmp_path / "tiny_sweep.toml"
    path.write_text(TINY.format(budget=budget, db=tmp_path / "tiny.db", epochs=epochs, subset=subset))
    return path


def trials(path):
    sweep = load_sweep(path)
    return optuna.load_study(study_name=sweep.study, storage=sweep.storage).get_trials()


def running_trials(path) -> int:
    """Trials under way; 0 while the child has not yet created the database or the study."""
    try:
        return sum(t.state == optuna.trial.TrialState.RUNNING for t in trials(path))
    except KeyError:  # the database file exists but the study record does not yet
        return 0


def test_tiny_sweep_runs_and_reports(tmp_path, data_dir):
    path = sweep_file(tmp_path)
    run_sweep(path, trials=2, workers=1, data_dir=data_dir, log=lambda *_: None)
    done = trials(path)
    assert [t.state for t in done] == [optuna.trial.TrialState.COMPLETE] * 2
    assert all(t.value > 50 and t.user_attrs["params"] <= 8000 for t in done), [t.value for t in done]  # chance: 10%
    report = sweep_report(path, tmp_path / "out")
    text = report.read_text()
    assert "## Best trials" in text and "2 complete" in text
    assert (tmp_path / "out" / "tiny_frontier.png").exists() and (tmp_path / "out" / "tiny_importance.png").exists()


def test_models_over_budget_are_rejected_before_training(tmp_path, data_dir):
    path = sweep_file(tmp_path, budget=300, subset=60000 - 10000)  # training all of it would take minutes
    run_sweep(path, trials=3, workers=1, data_dir=data_dir, log=lambda *_: None)
    done = trials(path)
    assert all(t.state == optuna.trial.TrialState.PRUNED and "rejected" in t.user_attrs for t in done)
    assert all(t.user_attrs["params"] > 300 for t in done)


def test_resume_after_an_interrupted_trial(tmp_path, data_dir):
    path = sweep_file(tmp_path, epochs=2, subset=4000)
    code = ("import sys; from tinycnn.sweep import run_sweep; "
            f"run_sweep({str(path)!r}, trials=2, workers=1, data_dir={str(data_dir)!r})")
    child = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # wait until a trial is under way, then kill the sweep
            if running_trials(path):
                time.sleep(2)  # let its heartbeat be recorded: Optuna only retries trials that had one
                break
            time.sleep(0.5)
        else:
            pytest.fail("no trial started")
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
    time.sleep(3)  # past the grace period: the silent trial counts as interrupted
    run_sweep(path, trials=2, workers=1, data_dir=data_dir, log=lambda *_: None)
    states = [t.state for t in trials(path)]
    assert states.count(optuna.trial.TrialState.FAIL) == 1
    assert states.count(optuna.trial.TrialState.COMPLETE) == 2
    failed = next(t for t in trials(path) if t.state == optuna.trial.TrialState.FAIL)
    retried = [t for t in trials(path) if t.system_attrs.get("failed_trial") == failed.number]
    assert retried and retried[0].params == failed.params  # the interrupted trial was run again


def test_sweep_file_errors_are_clear(tmp_path):
    path = tmp_path / "bad_sweep.toml"
    path.write_text(TINY.format(budget=4000, db=tmp_path / "x.db", epochs=1, subset=100).replace(
        "lr = {float", "learning = {float"))
    with pytest.raises(ConfigError, match="'learning' is neither"):
        load_sweep(path)
    path.write_text(TINY.format(budget=4000, db=tmp_path / "x.db", epochs=1, subset=100).replace(
        "holdout = 10000", "holdout = 0"))
    with pytest.raises(ConfigError, match="never on the test set"):
        load_sweep(path)


def test_committed_sweep_file_is_valid():
    sweep = load_sweep(ROOT / "experiments" / "frontier_sweep.toml")
    assert sweep.budget == 4000 and set(sweep.layout_keys) <= set(sweep.space)
