"""Sweeps across machines, for real: `tinycnn sweep` processes sharing one study in a real
PostgreSQL server. `.ci/run` starts a throwaway cluster (.ci/postgres) and passes its URL in
TINYCNN_TEST_POSTGRES_URL; where CI is set and no server answers, these tests fail."""
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import optuna
import pytest
import sqlalchemy
from conftest import ROOT, TINY_SWEEP, one_line_error, run_cli
from optuna.trial import TrialState

URL = os.environ.get("TINYCNN_TEST_POSTGRES_URL")
pytestmark = pytest.mark.skipif(not URL and not os.environ.get("CI"),
                                reason="no TINYCNN_TEST_POSTGRES_URL (start a server with .ci/postgres)")


@pytest.fixture
def database():
    """A fresh, empty database on the server; dropped afterwards."""
    assert URL, "CI is set but TINYCNN_TEST_POSTGRES_URL is not: .ci/run starts the server"
    name = f"tinycnn_{uuid.uuid4().hex[:10]}"
    admin = sqlalchemy.create_engine(URL, isolation_level="AUTOCOMMIT", poolclass=sqlalchemy.pool.NullPool)
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    yield sqlalchemy.engine.make_url(URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f"DROP DATABASE {name} WITH (FORCE)"))
    admin.dispose()


def sweep_file(tmp_path: Path, storage: str, budget: int = 8000, epochs: int = 1, subset: int = 2000) -> Path:
    path = tmp_path / "shared_sweep.toml"
    text = TINY_SWEEP.format(budget=budget, db="unused", epochs=epochs, subset=subset)
    path.write_text(text.replace('storage = "sqlite:///unused"', f'storage = "{storage}"'))
    return path


def study_trials(storage: str):
    return optuna.load_study(study_name="tiny", storage=storage).get_trials()


def start_sweep(path: Path, trials: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tinycnn.cli", "sweep", str(path), "--trials", str(trials),
                             "--workers", "1"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_three_workers_started_at_once_on_a_fresh_database(tmp_path, database):
    path = sweep_file(tmp_path, database)
    workers = [start_sweep(path, 9) for _ in range(3)]  # as if on three machines, at the same moment
    outcomes = [(w.wait(timeout=900), w.stderr.read()) for w in workers]
    assert all(code == 0 for code, _ in outcomes), outcomes
    trials = study_trials(database)
    states = Counter(t.state for t in trials)
    assert states[TrialState.COMPLETE] + states[TrialState.PRUNED] == 9 == len(trials), states  # none lost, none extra
    assert sorted(t.number for t in trials) == list(range(9))
    by_worker = Counter(t.user_attrs["worker"] for t in trials)
    assert {int(w.split(":")[1]) for w in by_worker} == {w.pid for w in workers}, by_worker  # every process took trials


def test_a_killed_worker_has_its_trial_retried_by_another(tmp_path, database):
    path = sweep_file(tmp_path, database, epochs=3, subset=3000)
    path.write_text(path.read_text().replace("grace_period = 2", "grace_period = 4"))
    doomed, survivor = start_sweep(path, 3), start_sweep(path, 3)
    try:
        deadline = time.monotonic() + 300
        while True:  # the doomed worker's first trial is under way, with a heartbeat recorded
            assert time.monotonic() < deadline, "no trial started"
            running = [t for t in study_trials_or_none(database) if t.state == TrialState.RUNNING
                       and t.user_attrs.get("worker", "").endswith(f":{doomed.pid}")]
            if running:
                time.sleep(2)
                break
            time.sleep(0.3)
        doomed.send_signal(signal.SIGKILL)
        doomed.wait()
        assert survivor.wait(timeout=900) == 0, survivor.stderr.read()
    finally:
        for process in (doomed, survivor):
            if process.poll() is None:
                process.kill()
    trials = study_trials(database)
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert [t.number for t in failed] == [running[0].number]
    retry = [t for t in trials if t.system_attrs.get("failed_trial") == failed[0].number]
    assert len(retry) == 1 and retry[0].params == failed[0].params and retry[0].state == TrialState.COMPLETE
    assert retry[0].user_attrs["worker"].endswith(f":{survivor.pid}")
    assert sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials) == 3


def study_trials_or_none(storage: str):
    try:
        return study_trials(storage)
    except Exception:  # the tables or the study do not exist yet
        return []


def test_unreachable_refused_and_foreign_storages_are_one_line_errors(tmp_path, database):
    url = sqlalchemy.engine.make_url(database)
    cases = [(url.set(port=1), "connection"), (url.set(password="wrong"), "password authentication failed")]
    for bad, message in cases:
        line = one_line_error(run_cli("sweep", sweep_file(tmp_path, bad.render_as_string(hide_password=False)),
                                      "--trials", "1"), code=1)
        assert message in line and "wrong" not in line and ":***@" in line  # the password is never printed
    assert run_cli("sweep", sweep_file(tmp_path, database), "--trials", "1").returncode == 0
    other = sweep_file(tmp_path, database, budget=7000)
    assert "made from another sweep file (budget differ)" in one_line_error(run_cli("sweep", other, "--trials", "2"), 1)


def test_the_readme_commands_work_as_written(tmp_path, database):
    """docs/sweeps.md's "Searching on several machines" commands, with this test's file and server."""
    section = (ROOT / "docs" / "sweeps.md").read_text().split("## Searching on several machines")[1].split("\n## ")[0]
    commands = [line.split("#")[0].strip() for line in section.splitlines() if line.startswith("tinycnn sweep")]
    assert commands and any("--report" in c for c in commands), commands
    assert "pip install -e '.[postgres]'" in section and 'storage = "postgresql://' in section
    path = sweep_file(tmp_path, database)
    for command in commands:
        args = command.split()[1:]
        args = [str(path) if a.endswith("_sweep.toml") else a for a in args]
        args = ["1" if previous == "--trials" else a for previous, a in zip([""] + args, args)]
        result = run_cli(*args, "--out", tmp_path / "reports") if "--report" in args else run_cli(*args)
        assert result.returncode == 0, (command, result.stderr)
    assert (tmp_path / "reports" / "tiny.md").exists()
