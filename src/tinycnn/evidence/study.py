"""Where a sweep's Optuna study lives: opening it safely, and refusing one that is not this sweep's.

A storage URL is a SQLite file (`sqlite:///reports/sweeps/<study>.db`, the default) or a
PostgreSQL database shared by workers on several machines (`postgresql://user:password@host/db`,
driver psycopg 3: `pip install -e '.[postgres]'`).

* Concurrent starts: Optuna creates its tables and types on first use, and two processes doing
  that at the same moment on an empty PostgreSQL database collide (`CREATE TYPE ... already
  exists`). Every worker therefore opens the storage under a PostgreSQL advisory lock: one at a
  time creates what is missing, the others find it there. SQLite serialises on its file lock.
* Exactly the requested number of trials: a worker claims its next trial under a lock (a
  PostgreSQL advisory lock, or a lock file beside a SQLite database), counting the finished and
  the running ones, so N workers never start more trials between them than the target.
* Each study records a fingerprint of the sweep file that made it (budget, layout, fixed training
  settings, search space); a worker started from another sweep file is refused, so two searches
  never mix their trials under one name.
* Unreachable servers, refused passwords and files that are no database give one line
  (DataError), with the password hidden.
"""
from __future__ import annotations

import fcntl
from contextlib import contextmanager
from pathlib import Path

import optuna
import sqlalchemy
from sqlalchemy.engine import make_url

from tinycnn.errors import DataError

SCHEMA_LOCK = 7_312_025  # any fixed numbers: the advisory locks tinycnn workers take to create tables
CLAIM_LOCK = 7_312_026   # ... and to claim a trial


def label(url: str) -> str:
    """The URL as it may be printed (no password)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not even a URL: show it as given
        return url


def fingerprint(sweep) -> dict:
    """What makes two sweep files the same search."""
    return {"budget": sweep.budget, "layout": sweep.layout, "train": sweep.train, "space": sweep.space}


@contextmanager
def advisory_lock(url: str, key: int):
    """Hold a PostgreSQL advisory lock (session level, on a connection of its own)."""
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": key})
            try:
                yield
            finally:
                connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
    finally:
        engine.dispose()


@contextmanager
def schema_lock(url: str):
    """PostgreSQL: one process at a time creates tables and studies (SQLite locks its file itself)."""
    if url.startswith("postgresql"):
        with advisory_lock(url, SCHEMA_LOCK):
            yield
    else:
        yield


@contextmanager
def claim_lock(url: str):
    """One worker at a time counts the trials and claims the next one (see the module docstring)."""
    if url.startswith("postgresql"):
        with one_line_errors(url), advisory_lock(url, CLAIM_LOCK):
            yield
    elif url.startswith("sqlite:///"):
        with open(url.removeprefix("sqlite:///") + ".lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
    else:
        yield


@contextmanager
def one_line_errors(url: str):
    """Database errors as DataError: which storage, and the driver's first line."""
    try:
        yield
    except sqlalchemy.exc.DBAPIError as e:
        first = str(e.orig).strip().splitlines()[0] if e.orig is not None else str(e).splitlines()[0]
        raise DataError(f"cannot use the study storage {label(url)}: {first}") from None
    except sqlalchemy.exc.ArgumentError as e:
        raise DataError(f"not a storage URL: {label(url)} ({e})") from None
    except ImportError as e:  # SQLAlchemy could not load the database driver
        raise DataError(f"no database driver for {label(url)} ({e}); for PostgreSQL run: "
                        f"pip install -e '.[postgres]'") from None


def open_storage(url: str, heartbeat: int, grace_period: int) -> optuna.storages.RDBStorage:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.RDBStorage(
        url, heartbeat_interval=heartbeat, grace_period=grace_period,
        failed_trial_callback=optuna.storages.RetryFailedTrialCallback(max_retry=1),
        engine_kwargs={"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None)


def open_study(sweep, sampler, pruner) -> optuna.Study:
    """The sweep's study, created if need be; DataError if the storage holds another sweep's study."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # not "Using an existing study ..." on every start
    with one_line_errors(sweep.storage), schema_lock(sweep.storage):
        storage = open_storage(sweep.storage, sweep.heartbeat, sweep.grace_period)
        study = optuna.create_study(study_name=sweep.study, storage=storage, direction="maximize",
                                    load_if_exists=True, sampler=sampler, pruner=pruner)
        made_from = study.user_attrs.get("sweep")
        if made_from is None:
            study.set_user_attr("sweep", fingerprint(sweep))
        elif made_from != fingerprint(sweep):
            differ = [key for key, value in fingerprint(sweep).items() if made_from.get(key) != value]
            raise DataError(f"{label(sweep.storage)} holds a study {sweep.study!r} made from another sweep file "
                            f"({', '.join(differ)} differ): give this sweep another study name or storage")
    return study


def load_study(sweep) -> optuna.Study:
    """The study, read only: no table creation or migration, so reading never changes the database."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    with one_line_errors(sweep.storage):
        storage = optuna.storages.RDBStorage(sweep.storage, skip_table_creation=True, skip_compatibility_check=True)
        try:
            return optuna.load_study(study_name=sweep.study, storage=storage)
        except KeyError:
            raise DataError(f"{label(sweep.storage)} holds no study named {sweep.study!r}") from None
