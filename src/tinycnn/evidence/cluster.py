"""Seeds on a Dask cluster: `tinycnn run EXPERIMENT --cluster tcp://HOST:8786`.

Each seed is one task sent to the scheduler. A worker (started with `dask worker --nthreads 1`)
trains it with its own installed tinycnn and MNIST into a temporary folder of its own and sends
the seed's files back; this machine writes them where a local run writes them, as each seed
finishes, so no shared file system is needed and a rerun resumes after the finished seeds. The
kernel pin (tinycnn/__init__.py) makes x86-64 AVX2 machines compute the same numbers, so a seed
gives on a worker exactly the metrics it gives here; a worker with other kernels is refused, by
name, unless mixed kernels are allowed, and one with another tinycnn or torch always is.
A worker lost mid-seed is Dask's to handle: the seed runs again, from its start, on another worker.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from importlib.metadata import version
from pathlib import Path

from tinycnn.errors import ConfigError, DataError
from tinycnn.files import write_bytes
from tinycnn.train.config import TrainConfig

FLUSH_SECONDS = 0.5  # how often a worker sends its step count (one message a step would flood the scheduler)
NO_WORKERS_SECONDS = 120  # a scheduler left without workers this long: the seeds would wait for ever


def first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:160]


def environment() -> dict:
    """What must agree between this machine and a worker for the numbers to agree."""
    import torch

    return {
        "tinycnn": version("tinycnn"),
        "torch": torch.__version__,
        "kernels": f"{torch.backends.cpu.get_cpu_capability()}, MKL {os.environ.get('MKL_CBWR', 'free')}",
    }


def connect(address: str, allow_mixed_kernels: bool = False):
    """A Dask client on `address`, with every worker's environment checked first."""
    try:
        from distributed import Client
    except ImportError:
        raise ConfigError("--cluster needs Dask distributed: pip install 'tinycnn[cluster]'") from None
    try:
        client = Client(address, timeout="10s")
    except (OSError, TimeoutError) as e:
        raise DataError(f"cannot reach the Dask scheduler at {address} ({first_line(e)})") from None
    here = environment()
    workers = client.run(environment)
    if not workers:
        client.close()
        raise DataError(
            f"the Dask scheduler at {address} has no workers (start them: dask worker {address} --nthreads 1)"
        )
    for worker, there in sorted(workers.items()):
        for key in ("tinycnn", "torch") + (() if allow_mixed_kernels else ("kernels",)):
            if there[key] != here[key]:
                client.close()
                hint = (
                    ""
                    if key != "kernels"
                    else " (--allow-mixed-kernels runs there anyway: other digits, same distribution)"
                )
                raise ConfigError(f"worker {worker} has {key} {there[key]}, this machine {here[key]}: refused{hint}")
    return client


class Remote:
    """A worker's progress, sent through a Dask queue: steps in batches, each epoch's record
    (the messages of experiment.ProgressMessages: StepsDone has .steps, EpochDone .record)."""

    def __init__(self, queue, seed: int):
        self.queue, self.seed, self.steps, self.sent = queue, seed, 0, time.monotonic()

    def put(self, message) -> None:
        if hasattr(message, "steps"):
            self.steps += message.steps
            if time.monotonic() - self.sent < FLUSH_SECONDS:
                return
        if self.steps:
            self.queue.put((self.seed, "steps", self.steps))
            self.steps, self.sent = 0, time.monotonic()
        if hasattr(message, "record"):
            self.queue.put((self.seed, "epoch", message.record))


def seed_task(settings: dict, data_dir: str | None, topic: str) -> dict[str, bytes]:
    """On a worker: one seed in a folder of its own; returns its files, by their path in the folder."""
    from distributed import Queue

    from tinycnn.evidence.experiment import train_seed  # here, on the worker: experiment.py imports this module

    cfg = TrainConfig.from_dict(settings)
    with tempfile.TemporaryDirectory(prefix="tinycnn-seed-") as tmp:
        train_seed(cfg, Path(tmp), data_dir, True, Remote(Queue(topic), cfg.seed))
        return {p.relative_to(tmp).as_posix(): p.read_bytes() for p in Path(tmp).rglob("*") if p.is_file()}


def run_on_cluster(
    address: str,
    configs: list[TrainConfig],
    folder: Path,
    data_dir: str | None,
    on_message,
    allow_mixed_kernels: bool = False,
    log=print,
) -> None:
    """Train each config's seed on the cluster; every finished seed is written into `folder` at once.
    Progress reaches `on_message(seed, "steps", count)` and `on_message(seed, "epoch", record)`."""
    from distributed import Queue, wait

    client = connect(address, allow_mixed_kernels)
    topic = f"tinycnn-{uuid.uuid4().hex}"
    queue = Queue(topic, client=client)
    if client.dashboard_link:
        log(f"dask: {len(client.scheduler_info()['workers'])} workers; dashboard {client.dashboard_link}")
    futures = {
        client.submit(seed_task, cfg.to_dict(), data_dir, topic, key=f"{topic}-seed{cfg.seed}", pure=False): cfg.seed
        for cfg in configs
    }
    pending, alone_since = set(futures), None
    try:
        while pending:
            try:
                done, pending = wait(pending, timeout=0.5, return_when="FIRST_COMPLETED")
            except TimeoutError:  # no seed finished in this half second
                done = set()
            if client.scheduler_info()["workers"]:
                alone_since = None
            elif time.monotonic() - (alone_since := alone_since or time.monotonic()) > NO_WORKERS_SECONDS:
                raise DataError(
                    f"the Dask scheduler at {address} has had no workers for {NO_WORKERS_SECONDS} s; "
                    f"finished seeds are kept: start workers, then run the same command again"
                )
            for seed, kind, payload in queue.get(batch=True):
                on_message(seed, kind, payload)
            for future in done:
                for name, data in future.result().items():
                    write_bytes(folder / name, data)
    except KeyboardInterrupt:
        client.cancel(list(futures))
        raise
    except (OSError, TimeoutError) as e:
        raise DataError(
            f"lost the Dask scheduler at {address} ({first_line(e)}); finished seeds are "
            f"kept: run the same command again to resume"
        ) from None
    finally:
        client.close()


def isolated_task(job, files: dict[str, bytes]):
    """On a worker: a submission's files in a folder of its own, then the sandboxed child on them
    (grading/sandbox.py: the same limits there as here; a course environment from the same list is
    built there, once). Returns (Ran, wall seconds)."""
    from tinycnn.evidence.grading.sandbox import run_job  # on the worker: grading imports this module

    with tempfile.TemporaryDirectory(prefix="tinycnn-submission-") as tmp:
        for name, data in files.items():
            write_bytes(Path(tmp) / name, data)
        start = time.perf_counter()
        ran = run_job(job, Path(tmp))
        return ran, time.perf_counter() - start


def isolated_on_cluster(address: str, folder: Path, jobs: list[tuple], on_done=None) -> list[tuple]:
    """`tinycnn check --rerun --cluster`: each sandbox Job run on a worker, the submission's files
    sent along; [(Ran, seconds)] in job order."""
    from distributed import as_completed

    client = connect(address)
    files = {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not {".git", "__pycache__", "runs"} & set(p.relative_to(folder).parts)
    }
    try:
        futures = [
            client.submit(isolated_task, job, files, pure=False)
            for job in jobs
        ]
        for _ in as_completed(futures):
            if on_done is not None:
                on_done()
        return client.gather(futures)
    except KeyboardInterrupt:
        client.cancel(futures)
        raise
    except (OSError, TimeoutError) as e:
        raise DataError(f"lost the Dask scheduler at {address} ({first_line(e)})") from None
    finally:
        client.close()
