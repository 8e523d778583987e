"""Worker processes: results in order, messages on the way, errors passed on, nothing left running."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tinycnn.errors import ConfigError
from tinycnn.evidence.parallel import WorkerError, run_tasks


# Tasks run in spawned interpreters, so they are module-level functions.
def square_slowly(x, delay, messages):
    messages.put(("started", x))
    time.sleep(delay)
    return x * x


def fail_with(kind):
    if kind == "config":
        raise ConfigError("bad setting", "lr")
    if kind == "bug":
        return {}["missing"]
    os._exit(3)  # dies without a word


def sleep_forever(pid_file):
    Path(pid_file).write_text(str(os.getpid()))
    time.sleep(600)


def test_results_come_back_in_task_order_with_the_messages():
    heard = []
    results = run_tasks(square_slowly, [(3, 0.6), (4, 0.0), (5, 0.2)], workers=2,
                        on_message=lambda index, payload: heard.append((index, payload)))
    assert results == [9, 16, 25]
    assert sorted(heard) == [(0, ("started", 3)), (1, ("started", 4)), (2, ("started", 5))]


def test_a_tinycnn_error_arrives_as_itself_and_stops_the_other_workers(tmp_path):
    pid_file = tmp_path / "pid"
    with pytest.raises(ConfigError, match="bad setting") as error:
        run_tasks(dispatch, [("sleep", str(pid_file)), ("fail", "config")], workers=2)
    assert error.value.key == "lr"
    assert_gone(int(pid_file.read_text()))


def dispatch(what, arg):
    if what == "sleep":
        deadline = time.monotonic() + 30
        while not Path(arg).exists() and time.monotonic() < deadline:
            Path(arg).write_text(str(os.getpid()))
        time.sleep(600)
    time.sleep(2)  # let the sleeper start first
    return fail_with(arg)


def test_an_unexpected_error_arrives_with_the_worker_traceback():
    with pytest.raises(WorkerError, match=r"(?s)in fail_with.*KeyError: 'missing'"):
        run_tasks(fail_with, [("bug",)], workers=1)


def test_a_worker_that_dies_silently_is_an_error():
    with pytest.raises(WorkerError, match="died \\(exit code 3\\)"):
        run_tasks(fail_with, [("die",)], workers=1)


def test_terminating_the_parent_terminates_its_workers(tmp_path):
    """`kill PID` of a parent running tasks leaves no worker behind."""
    pid_files = [tmp_path / f"pid{i}" for i in range(2)]
    code = ("import sys; sys.path.insert(0, %r); from test_parallel import sleep_forever; "
            "from tinycnn.evidence.parallel import run_tasks; run_tasks(sleep_forever, [(p,) for p in %r], workers=2)"
            % (str(Path(__file__).parent), [str(p) for p in pid_files]))
    parent = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 60
        while not all(p.exists() and p.read_text() for p in pid_files):
            assert time.monotonic() < deadline and parent.poll() is None, "workers did not start"
            time.sleep(0.2)
        workers = [int(p.read_text()) for p in pid_files]
        parent.terminate()
        assert parent.wait(timeout=30) == 128 + signal.SIGTERM
        for pid in workers:
            assert_gone(pid)
    finally:
        if parent.poll() is None:
            parent.kill()


def assert_gone(pid: int, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split()[2]
        except FileNotFoundError:
            return
        if state == "Z":  # exited, waiting to be reaped
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    pytest.fail(f"worker {pid} outlived its parent's stop")
