"""`tinycnn init DIR`: a project of your own for the challenge, to start from and own.

The starter (starter/, package data read through importlib.resources, so an installed tinycnn has
it too): model.py with Model_1..Model_3 in plain PyTorch (no tinycnn imports), experiments/
step1..3.toml with every setting spelled out and Target / Analysis texts to fill in, a README
with the blocks `tinycnn report` fills, and a .gitignore. Inside it, `tinycnn run
experiments/stepN.toml`, `tinycnn report .` and `tinycnn check .` work as they do in tinycnn's
own repository.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

from tinycnn.errors import ConfigError
from tinycnn.files import write_text

STARTER = ("model.py", "README.md", "experiments/step1.toml", "experiments/step2.toml", "experiments/step3.toml")
RENAMED = {"gitignore": ".gitignore"}  # a dotfile would be left out of the package


def init_project(folder: Path) -> Path:
    """Write the starter into `folder` (created); ConfigError for a folder that is not empty."""
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ConfigError(f"{folder}: not an empty folder; `tinycnn init` writes a new project and never "
                          f"overwrites one (choose a new folder)")
    starter = resources.files("tinycnn") / "starter"
    try:
        for name in (*STARTER, *RENAMED):
            write_text(folder / RENAMED.get(name, name), (starter / name).read_text())
    except OSError as e:
        raise ConfigError(f"cannot write the project into {folder}: {e.strerror or e}") from None
    return folder
