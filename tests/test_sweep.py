"""Optuna sweeps on real data: tiny studies, budget rejection, resume after an interrupted trial."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from conftest import ROOT, TINY_SWEEP, sweep_file, trials

from tinycnn.errors import ConfigError
from tinycnn.evidence.sweep import load_sweep, run_sweep, study_summary, trial_config
from tinycnn.models.model import count_parameters
from tinycnn.models.spec import ModelSpec
from tinycnn.report.sweep_page import write_sweep_page


def running_trials(path) -> int:
    """Trials under way; 0 while the child has not yet created the database or the study."""
    try:
        return sum(t.state == optuna.trial.TrialState.RUNNING for t in trials(path))
    except KeyError:  # the database file exists but the study record does not yet
        return 0


def test_tiny_sweep_runs_and_reports(tmp_path, mnist):
    path = sweep_file(tmp_path)
    run_sweep(path, trials=2, workers=1, log=lambda *_: None)
    done = trials(path)
    assert [t.state for t in done] == [optuna.trial.TrialState.COMPLETE] * 2
    assert all(t.value > 50 and t.user_attrs["params"] <= 8000 for t in done), [t.value for t in done]  # chance: 10%
    report = write_sweep_page(study_summary(load_sweep(path)), tmp_path / "out")
    text = report.read_text()
    assert "## Best trials" in text and "2 complete" in text
    assert (tmp_path / "out" / "tiny_frontier.png").exists() and (tmp_path / "out" / "tiny_importance.png").exists()


def test_models_over_budget_are_rejected_before_training(tmp_path, mnist):
    path = sweep_file(tmp_path, budget=300, subset=60000 - 10000)  # training all of it would take minutes
    run_sweep(path, trials=3, workers=1, log=lambda *_: None)
    done = trials(path)
    assert all(t.state == optuna.trial.TrialState.PRUNED and "rejected" in t.user_attrs for t in done)
    assert all(t.user_attrs["params"] > 300 for t in done)


def test_resume_after_an_interrupted_trial(tmp_path, mnist):
    path = sweep_file(tmp_path, epochs=2, subset=4000)
    code = ("import sys; from tinycnn.evidence.sweep import run_sweep; "
            f"run_sweep({str(path)!r}, trials=2, workers=1)")
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
    run_sweep(path, trials=2, workers=1, log=lambda *_: None)
    states = [t.state for t in trials(path)]
    assert states.count(optuna.trial.TrialState.FAIL) == 1
    assert states.count(optuna.trial.TrialState.COMPLETE) == 2
    failed = next(t for t in trials(path) if t.state == optuna.trial.TrialState.FAIL)
    retried = [t for t in trials(path) if t.system_attrs.get("failed_trial") == failed.number]
    assert retried and retried[0].params == failed.params  # the interrupted trial was run again


def test_stopping_a_parallel_sweep_stops_its_workers(tmp_path, mnist):
    """`kill PID` of `tinycnn sweep --workers 2` leaves no worker behind still taking trials."""
    path = sweep_file(tmp_path, epochs=2, subset=4000)
    code = ("from tinycnn.evidence.sweep import run_sweep; "
            f"run_sweep({str(path)!r}, trials=6, workers=2)")
    parent = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)
    children = []
    try:
        deadline = time.monotonic() + 120
        while not running_trials(path):  # both workers are up once a trial runs
            assert time.monotonic() < deadline and parent.poll() is None, "no trial started"
            time.sleep(0.5)
        children = [int(pid) for pid in Path(f"/proc/{parent.pid}/task/{parent.pid}/children").read_text().split()]
        children = [pid for pid in children if is_worker(pid)]
        assert len(children) == 2, children
        parent.terminate()  # SIGTERM, as `kill PID` sends
        assert parent.wait(timeout=60) != 0
        time.sleep(1)
        alive = [pid for pid in children if is_worker(pid)]
        assert not alive, f"workers {alive} outlived the sweep"
    finally:  # never leave processes behind, whatever failed
        for pid in [parent.pid] + children:
            if is_worker(pid) or pid == parent.pid and parent.poll() is None:
                os.kill(pid, signal.SIGKILL)


def is_worker(pid: int) -> bool:
    try:
        return "spawn_main" in Path(f"/proc/{pid}/cmdline").read_text()
    except FileNotFoundError:
        return False


def test_sweep_file_errors_are_clear(tmp_path):
    path = tmp_path / "bad_sweep.toml"
    path.write_text(TINY_SWEEP.format(budget=4000, db=tmp_path / "x.db", epochs=1, subset=100).replace(
        "lr = {float", "learning = {float"))
    with pytest.raises(ConfigError, match="'learning' is neither"):
        load_sweep(path)
    path.write_text(TINY_SWEEP.format(budget=4000, db=tmp_path / "x.db", epochs=1, subset=100).replace(
        "holdout = 10000", "holdout = 0"))
    with pytest.raises(ConfigError, match="never on the test set"):
        load_sweep(path)


@pytest.mark.parametrize("path", sorted((ROOT / "experiments").glob("*_sweep.toml")), ids=lambda p: p.stem)
def test_committed_sweep_files_are_valid_and_start_under_budget(path):
    sweep = load_sweep(path)
    assert set(sweep.layout_keys) <= set(sweep.space)
    for point in sweep.enqueue:  # every start point lies in the space and is trainable, not rejected
        for key, value in point.items():
            spec = sweep.space[key]
            if "choices" in spec:
                assert value in spec["choices"], (key, value)
            else:
                lo, hi = spec.get("int") or spec["float"]
                assert lo <= value <= hi, (key, value)
        lowest = {key: (spec.get("choices") or spec.get("int") or spec["float"])[0] for key, spec in sweep.space.items()}
        values = lowest | point  # dimensions a start point leaves open are sampled; any value will do here
        assert count_parameters(ModelSpec.of(trial_config(sweep, values)).build()) <= sweep.budget, point
