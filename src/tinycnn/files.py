"""Writing files so that a crash, a kill or a full disk never leaves one half-written.

Every file tinycnn writes goes through `atomic_path`: the content goes to a temporary name in the
same folder, then one `os.replace` puts it in place (atomic on POSIX file systems), so a reader
sees either the old file or the whole new one.
"""
from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces `path`, on failure it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The suffix is kept (.png, .pt, ...) for writers that choose a format by file name.
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_json(path: str | os.PathLike, data) -> Path:
    return write_text(path, json.dumps(data, indent=1) + "\n")


def read_json(path: str | os.PathLike):
    return json.loads(Path(path).read_text())


def check_writable(folder: str | os.PathLike) -> None:
    """Create `folder` and prove a file can be written there; OSError otherwise (before any work)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_bytes(folder / ".tinycnn-write-test", b"").unlink()
