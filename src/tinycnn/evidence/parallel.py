"""Work in worker processes: the one way tinycnn starts them, hears from them and stops them.

Seeds of an experiment, sweep workers and benchmark lanes all run through `run_tasks`. Each task
gets a fresh spawned interpreter (no thread pools or CUDA state inherited from the parent), so a
single-thread worker computes exactly what the same call would compute alone. When the parent
is stopped (Ctrl-C, `kill`), or a task fails, every worker is terminated before the error goes on:
no orphan keeps computing. A task's own errors (bad settings, bad data, divergence) reach the
parent as the same exception; any other error arrives as WorkerError with the worker's traceback.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import queue
import signal
import sys
import time
import traceback
from contextlib import contextmanager
from typing import Any, Callable

POLL_SECONDS = 0.5
DEATH_GRACE_SECONDS = 3.0


def default_workers(tasks: int | None = None) -> int:
    """One worker per core this process may use (at most one per task)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cores, tasks or cores))


class WorkerError(RuntimeError):
    """A worker failed with an unexpected error (the message holds its traceback)."""


class Messages:
    """What a task is handed to report progress to the parent: `messages.put(anything picklable)`."""

    def __init__(self, channel, index: int):
        self.channel, self.index = channel, index

    def put(self, payload: Any) -> None:
        self.channel.put(("message", self.index, payload))


def portable(error: BaseException) -> BaseException:
    """The error itself if it survives pickling, else a WorkerError carrying its traceback."""
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:
        text = "".join(traceback.format_exception(error))
        return WorkerError(f"a worker failed:\n{text}")


def task_main(function: Callable, args: tuple, index: int, channel, reports: bool) -> None:
    """Body of a worker process: run one task and send back its result or its error."""
    try:
        messages = (Messages(channel, index),) if reports else ()
        channel.put(("result", index, function(*args, *messages)))
    except BaseException as error:  # noqa: BLE001 - everything goes back to the parent
        if not isinstance(error, Exception) or type(error).__module__.startswith("tinycnn"):
            channel.put(("error", index, portable(error)))
        else:
            channel.put(("error", index, WorkerError("a worker failed:\n" + traceback.format_exc())))


@contextmanager
def sigterm_raises():
    """Turn SIGTERM (`kill PID`) into SystemExit in the parent, so its clean-up runs."""
    previous = signal.signal(signal.SIGTERM, lambda signum, _: sys.exit(128 + signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_tasks(function: Callable, tasks: list[tuple], workers: int,
              on_message: Callable[[int, Any], None] | None = None,
              on_result: Callable[[int, Any], None] | None = None) -> list:
    """Run `function(*task)` for every task, at most `workers` at once; results in task order.

    With `on_message`, each task is called as `function(*task, messages)` and what it puts there
    reaches `on_message(task index, payload)`. `function` must be importable by name (a
    module-level function): workers are spawned.
    """
    context = mp.get_context("spawn")
    channel = context.Queue()
    waiting = list(enumerate(tasks))
    running: dict[int, mp.Process] = {}
    results: dict[int, Any] = {}
    dead_since: dict[int, float] = {}
    with sigterm_raises():
        try:
            while waiting or running:
                while waiting and len(running) < workers:
                    index, args = waiting.pop(0)
                    process = context.Process(target=task_main, args=(function, args, index, channel, on_message is not None))
                    process.start()
                    running[index] = process  # only once started: `stop` joins what is in here
                for kind, index, payload in receive(channel, running, dead_since):
                    if kind == "message" and on_message:
                        on_message(index, payload)
                    elif kind == "error":
                        raise payload
                    elif kind == "result":
                        results[index] = payload
                        running.pop(index).join()
                        if on_result:
                            on_result(index, payload)
        finally:
            stop(running.values())
    return [results[i] for i in range(len(tasks))]


def receive(channel, running: dict[int, mp.Process], dead_since: dict[int, float]) -> list[tuple]:
    """The messages that arrived; a worker that died without a word is an error (after a grace
    period: its last message may still be on its way through the pipe)."""
    try:
        items = [channel.get(timeout=POLL_SECONDS)]
    except queue.Empty:
        items = []
    while True:
        try:
            items.append(channel.get_nowait())
        except queue.Empty:
            break
    answered = {index for kind, index, _ in items if kind in ("result", "error")}
    now = time.monotonic()
    for index, process in running.items():
        if process.exitcode is not None and index not in answered:
            if now - dead_since.setdefault(index, now) > DEATH_GRACE_SECONDS:
                raise WorkerError(f"worker {index} died (exit code {process.exitcode}) without a result")
    return items


def stop(processes) -> None:
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join()
