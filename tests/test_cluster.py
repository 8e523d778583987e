"""Seeds on a real Dask cluster: a scheduler and two single-thread workers started here on random
ports, a short experiment run through `--cluster`, its metrics equal number for number to the same
seeds trained here; a worker killed mid-seed changes nothing; an unreachable scheduler and a worker
of another tinycnn or other kernels are one line each."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, TINY, call_cli, one_line_error, run_cli, without_time

from tinycnn import PINNED_KERNELS
from tinycnn.evidence import records
from tinycnn.evidence.grading.course_env import DEFAULT_REQUIREMENTS, env_key, envs_root
from tinycnn.train.config import TrainConfig
from tinycnn.train.engine import fit

DASK = Path(sys.executable).parent / "dask"
COURSE_READY = (envs_root() / env_key(DEFAULT_REQUIREMENTS) / "ready").is_file()
SETTINGS = {**TINY, "epochs": 2}


def started(log: Path, words: str, process: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while words not in (log.read_text() if log.exists() else ""):
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, f"no {words!r} in {log}"
        time.sleep(0.1)


def start(args: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
    """A dask command; `env` changes its environment (None: the variable removed)."""
    environment = {k: v for k, v in {**os.environ, **(env or {})}.items() if v is not None}
    return subprocess.Popen(
        [str(DASK), *args],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        cwd=log.parent,
        start_new_session=True,
        env=environment,
    )


def worker(address: str, folder: Path, name: str, env: dict | None = None) -> subprocess.Popen:
    log = folder / f"{name}.log"
    process = start(
        ["worker", address, "--nthreads", "1", "--no-nanny", "--name", name, "--local-directory", str(folder / name)],
        log,
        env,
    )
    started(log, "Registered to", process)
    return process


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dask")
    log = folder / "scheduler.log"
    scheduler = start(
        [
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--dashboard-address",
            "127.0.0.1:0",
            "--scheduler-file",
            str(folder / "scheduler.json"),
        ],
        log,
    )
    started(log, "Scheduler at", scheduler)
    while not (folder / "scheduler.json").exists():
        time.sleep(0.1)
    address = json.loads((folder / "scheduler.json").read_text())["address"]
    processes = [scheduler, worker(address, folder, "w0"), worker(address, folder, "w1")]
    yield address, folder, processes
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(30)


def experiment(folder: Path, seeds=(0, 1), **changes) -> Path:
    path = folder / "tiny.toml"
    settings = {**SETTINGS, **changes}
    path.write_text(
        f'title = "Tiny: t"\ntarget = "x"\nanalysis = "y"\nseeds = {list(seeds)}\n[train]\n'
        + "\n".join(f"{k} = {v!r}" for k, v in settings.items())
    )
    return path


def same_as_here(out: Path, seeds, mnist, **changes) -> None:
    for seed in seeds:
        here = fit(TrainConfig(**{**SETTINGS, **changes}, seed=seed), mnist)
        there = records.read_metrics(records.seed_path(out, seed))
        assert without_time(there["history"]) == without_time(here.history), seed
        assert (records.seed_run_folder(out, seed) / records.WEIGHTS).is_file()


def test_seeds_on_the_cluster_give_the_numbers_of_this_machine(cluster, mnist, tmp_path):
    address, _, _ = cluster
    result = run_cli("run", experiment(tmp_path), "--out", tmp_path / "out", "--cluster", address, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"seeds on the Dask cluster at {address}" in result.stdout, result.stdout
    assert "dask: 2 workers; dashboard http://127.0.0.1:" in result.stdout, result.stdout
    same_as_here(tmp_path / "out", (0, 1), mnist)


def test_a_worker_killed_mid_seed_changes_nothing(cluster, mnist, tmp_path):
    from distributed import Client

    address, folder, processes = cluster
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tinycnn.cli",
            "run",
            str(experiment(tmp_path, epochs=3)),
            "--out",
            str(tmp_path / "out"),
            "--cluster",
            address,
        ],
        cwd=tmp_path,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    with Client(address, timeout="10s") as client:
        deadline = time.monotonic() + 120
        while sum(bool(keys) for keys in client.processing().values()) < 2:  # both workers on a seed
            assert run.poll() is None and time.monotonic() < deadline, run.communicate()
            time.sleep(0.1)
        time.sleep(1.0)
    os.killpg(processes[1].pid, signal.SIGKILL)
    processes[1].wait()
    _, stderr = run.communicate(timeout=300)
    assert run.returncode == 0, stderr
    same_as_here(tmp_path / "out", (0, 1), mnist, epochs=3)
    processes[1] = worker(address, folder, "w1b")  # the cluster has two workers again


def test_an_unreachable_scheduler_is_one_line(tmp_path, capsys):
    line = one_line_error(
        call_cli(capsys, "run", experiment(tmp_path), "--out", tmp_path / "out", "--cluster", "tcp://127.0.0.1:9"),
        code=1,
    )
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in line
    assert not records.seed_path(tmp_path / "out", 0).exists()


def test_a_worker_of_another_tinycnn_or_other_kernels_is_refused_in_one_line(cluster, tmp_path, capsys):
    other = tmp_path / "other"  # an installed tinycnn of another version: its package and metadata first on the path
    shutil.copytree(ROOT / "src" / "tinycnn", other / "tinycnn", symlinks=True)
    (other / "tinycnn-9.9.9.dist-info").mkdir()
    (other / "tinycnn-9.9.9.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: tinycnn\nVersion: 9.9.9\n"
    )
    line = refused(cluster, "w-other", {"PYTHONPATH": str(other)}, tmp_path, capsys)
    assert "worker tcp://" in line and "has tinycnn 9.9.9, this machine 0.1.0: refused" in line
    # MKL left to pick its own path (this process's pin, inherited, removed): "MKL free", not "MKL AVX2"
    line = refused(cluster, "w-native", {"TINYCNN_NATIVE_ISA": "1", **dict.fromkeys(PINNED_KERNELS)}, tmp_path, capsys)
    assert "has kernels" in line and "--allow-mixed-kernels" in line


def refused(cluster, name: str, env: dict, tmp_path: Path, capsys) -> str:
    """The one line of a run on the cluster while a third worker, started with `env`, is there."""
    address, folder, _ = cluster
    stranger = worker(address, folder, name, env)
    try:
        return one_line_error(
            call_cli(capsys, "run", experiment(tmp_path), "--out", tmp_path / name, "--cluster", address)
        )
    finally:
        os.killpg(stranger.pid, signal.SIGKILL)
        stranger.wait()


def test_the_readme_commands_for_several_machines_work_as_written(cluster, tmp_path):
    """The README's "Seeds on several machines": the scheduler and worker lines are what the fixture
    starts (with random ports); the run, with this cluster's address, on a short experiment."""
    address, _, _ = cluster
    section = (ROOT / "README.md").read_text().split("### Seeds on several machines\n")[1].split("\n### ")[0]
    lines = [line.split("#")[0].split() for line in section.split("```bash\n")[1].split("```")[0].splitlines()]
    assert lines[0] == ["dask", "scheduler"] and lines[1] == ["dask", "worker", "tcp://HOST:8786", "--nthreads", "1"]
    run = [a.replace("tcp://HOST:8786", address) for a in lines[2]]
    assert run[:2] == ["tinycnn", "run"] and "--cluster" in run
    (tmp_path / "experiments").mkdir()
    experiment(tmp_path / "experiments", seeds=(0,)).rename(tmp_path / run[2])
    result = run_cli(*run[1:], "--out", tmp_path / "out", cwd=tmp_path)
    assert result.returncode == 0 and records.seed_path(tmp_path / "out", 0).exists(), result.stderr


def test_check_rerun_sends_its_sandboxed_seeds_to_the_cluster_with_the_same_numbers(cluster, tmp_path, capsys):
    """`tinycnn check --rerun --recipe --cluster`: each seed runs in the sandbox on a worker, the
    submission's files sent along, and gives the test accuracies it gives here."""
    from grading_fixtures import write_submission

    address, _, _ = cluster
    folder = write_submission(tmp_path / "hal")
    recipe = tmp_path / "recipe.toml"
    recipe.write_text("[train]\nepochs = 2\ntrain_subset = 640\ntest_subset = 500\nema = 0.9\n")
    rules = {}
    for where in ("here", "there"):
        result = call_cli(
            capsys,
            "check",
            folder,
            "--rerun",
            "2",
            "--recipe",
            recipe,
            "--json",
            *(["--cluster", address] if where == "there" else []),
        )
        rules[where] = next(r for r in json.loads(result.stdout)["rules"] if r["name"] == "rerun")
    assert f"recipe recipe.toml on the Dask cluster at {address}, 2 seeds" in rules["there"]["evidence"]
    tests = {where: [run["test"] for run in rule["details"]] for where, rule in rules.items()}
    assert tests["here"] == tests["there"] and len(tests["here"][0]) == 2, tests


@pytest.mark.skipif(not COURSE_READY and not os.environ.get("CI"), reason="no course environment (make course-env)")
def test_check_rerun_as_written_on_the_cluster_in_the_same_course_environment(cluster, tmp_path, capsys):
    """A notebook as written on the workers: each finds (or builds) the course environment of the same
    requirements list by its hash, and runs the seed there, in the sandbox."""
    from course_notebooks import write_course_notebook
    from grading_fixtures import write_submission

    address, _, _ = cluster
    folder = write_submission(tmp_path / "ida")
    write_course_notebook(folder)
    result = call_cli(capsys, "check", folder, "--rerun", "2", "--json", "--cluster", address)
    rule = next(r for r in json.loads(result.stdout)["rules"] if r["name"] == "rerun")
    assert f"step3.ipynb as written on the Dask cluster at {address}" in rule["evidence"], rule["evidence"]
    runs = rule["details"]
    assert [len(r["test"]) for r in runs] == [2, 2] and runs[0]["test"] != runs[1]["test"], runs
    assert all("requires grad" in r["after"] and not r["error"] for r in runs), runs
