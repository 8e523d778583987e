"""A submission's model.py: its nn.Module classes found by reading the file (never importing it
here), then built and measured in a sandboxed child: parameters, output shape, receptive field.
Measurements are kept in the user's cache under the file's SHA-256 (and tinycnn's and torch's
versions): grading a class again, with another target, does not run fifty children again."""

from __future__ import annotations

import ast
import hashlib
import json
from importlib.metadata import version
from pathlib import Path

from tinycnn.evidence.grading.sandbox import Ran, run_isolated
from tinycnn.files import write_json
from tinycnn.train.data import default_data_dir

# Runs in the child, in the copy: tinycnn's loader imports the student's file and checks its output.
MEASURE = r"""
import json, sys
from dataclasses import asdict
from tinycnn.models.model import count_parameters
from tinycnn.models.tables import NotTraceableError, receptive_field_facts, receptive_field_table
from tinycnn.models.user_file import load_model_file
found = {}
for name in sys.argv[2:]:
    try:
        model = load_model_file(f"{sys.argv[1]}:{name}")
    except Exception as e:  # the one line tinycnn's loader gives (import error, wrong shape, ...)
        found[name] = {"error": str(e).splitlines()[0]}
        continue
    found[name] = {"params": count_parameters(model)}
    try:
        rows = receptive_field_table(model)
        found[name].update(rf=receptive_field_facts(rows).final_rf, rf_rows=[asdict(row) for row in rows])
    except NotTraceableError as e:
        found[name]["rf_error"] = str(e).splitlines()[0]
print(json.dumps(found))
"""


def module_classes(path: Path) -> list[str]:
    """The classes in a model file that derive from nn.Module (read, not run)."""
    classes = [node for node in ast.parse(path.read_text(), str(path)).body if isinstance(node, ast.ClassDef)]
    names: list[str] = []
    for node in classes:  # in file order, so a subclass follows the class it derives from
        if (
            any(ast.unparse(base).split(".")[-1] in ("Module", *names) for base in node.bases)
            and node.name not in names
        ):
            names.append(node.name)
    return names


def cache_path(source: bytes, names: list[str]) -> Path:
    key = hashlib.sha256(
        b"\0".join(
            [source, *map(str.encode, names), version("tinycnn").encode(), version("torch").encode(), MEASURE.encode()]
        )
    ).hexdigest()
    return default_data_dir() / "grading" / f"{key}.json"


def measured_classes(pairs: list[tuple[Path, str]]) -> dict[tuple[Path, str], dict]:
    """Each (model file, class) measured, one sandboxed child per file: {params, rf, rf_rows} (or
    rf_error), or {error} in one line when it cannot be built (its import fails, a wrong shape)."""
    by_file: dict[Path, list[str]] = {}
    for file, name in pairs:
        by_file.setdefault(file, []).append(name)
    found = {}
    for file, names in by_file.items():
        ran = measure(file.parent, file.name, sorted(set(names)))
        found.update({(file, name): ran.output[name] if ran.ok else {"error": ran.error} for name in names})
    return found


def measure(folder: Path, model_file: str, names: list[str], seconds: float = 300) -> Ran:
    """{name: {params, rf} or {error}} for each class, measured in a child process on a copy
    (or, for a file measured before, byte for byte, from the cache)."""
    cached = cache_path((folder / model_file).read_bytes(), names)
    if cached.is_file():
        return Ran(True, json.loads(cached.read_text()), "")
    ran = run_isolated(MEASURE, folder, [model_file, *names], seconds)
    if ran.ok:
        write_json(cached, ran.output)
    return ran
