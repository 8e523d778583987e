"""A submission as handed in: a folder (or .zip) with a README, notebooks with their printed logs
and a model.py, no tinycnn files. Read, then graded by the challenge's rules (rules.py).

Each notebook is tied to a step by the step its own markdown names, else by the number in its file
name (`step2.ipynb`, `Model_3.ipynb`), else by the model it imports (`Model4` for `# Model 4`),
else by order; each step to a model class by the one its
notebook imports (`from model import Model4 as Net`), else by name (`Model_2`, `Model2`), else the
file's only class.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from tinycnn.errors import ConfigError, DataError
from tinycnn.evidence.grading.logs import Log, read_log
from tinycnn.evidence.grading.models import measure, module_classes
from tinycnn.evidence.grading.writeup import Step, steps_in

IMPORTED = re.compile(r"^\s*from\s+model\s+import\s+\(?([\w\s,]+?)\)?\s*$", re.M)
FILE_NUMBER = re.compile(r"(?:step|model|s)[\s_-]*(\d+)|(\d+)$", re.I)


@dataclass
class Notebook:
    path: Path
    markdown: str
    log: Log
    imports: list[str]  # names imported from model.py, as written (before any `as`)
    code: str = ""  # its code cells, one after the other


@dataclass
class Graded:
    """What a step is graded on: its texts, its notebook's log, its model and that model's figures."""

    step: Step
    notebook: Notebook | None
    model: str | None
    measured: dict = field(default_factory=dict)  # params, rf, or error


@dataclass
class Submission:
    folder: Path
    steps: list[Graded]
    model_file: Path | None
    measure_error: str  # why the models could not be measured at all ("" when they were)


def read_notebook(path: Path, log_pattern: str | None) -> Notebook:
    try:
        notebook = nbformat.read(path, as_version=4)
    except Exception as e:  # noqa: BLE001 - damaged JSON, not a notebook: one line
        raise DataError(f"{path}: not a readable notebook ({str(e).splitlines()[0][:120]})") from None
    markdown = "\n\n".join(c.source for c in notebook.cells if c.cell_type == "markdown")
    code = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
    outputs = []
    for cell in (c for c in notebook.cells if c.cell_type == "code"):
        for output in cell.get("outputs", []):
            outputs.append(output.get("text") or output.get("data", {}).get("text/plain", ""))
    imports = [
        name.split(" as ")[0].strip()
        for match in IMPORTED.finditer(code)
        for name in match[1].replace("\n", " ").split(",")
        if name.strip()
    ]
    return Notebook(path, markdown, read_log("\n".join(map(str, outputs)), log_pattern), imports, code)


def unpacked(path: Path, into: Path) -> Path:
    """A .zip submission, extracted (no member may leave the folder); a folder stays itself."""
    if path.is_dir():
        return path
    if path.suffix.lower() != ".zip" or not zipfile.is_zipfile(path):
        raise ConfigError(f"{path}: neither a folder nor a .zip file")
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            if Path(member).is_absolute() or ".." in Path(member).parts:
                raise DataError(f"{path}: {member} would land outside the folder it is unpacked into")
        archive.extractall(into)
    entries = [p for p in into.iterdir() if p.name != "__MACOSX"]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else into


def file_number(path: Path) -> int | None:
    match = FILE_NUMBER.search(path.stem)
    return int(match[1] or match[2]) if match else None


def tie_notebooks(steps: list[Step], notebooks: list[Notebook]) -> dict[int, Notebook]:
    """{index of a step: its notebook}."""
    tied: dict[int, Notebook] = {}
    for notebook in notebooks:
        named = (
            {s.number for s in steps_in(notebook.markdown, notebook.path.name)}
            or {file_number(notebook.path)} - {None}
            or {int(m[1]) for name in notebook.imports if (m := re.fullmatch(r"model_?0*(\d+)", name, re.I))}
        )
        for i, step in enumerate(steps):
            if i not in tied and step.number in named:
                tied[i] = notebook
                break
    if not tied and len(notebooks) == len(steps):
        tied = dict(enumerate(notebooks))
    return tied


def model_of(step: Step, notebook: Notebook | None, classes: list[str]) -> str | None:
    imported = [name for name in (notebook.imports if notebook else []) if name in classes]
    if imported:
        return imported[0]
    named = [c for c in classes if step.number is not None and re.fullmatch(rf"model_?0*{step.number}", c, re.I)]
    if named:
        return named[0]
    return classes[0] if len(classes) == 1 else None


def read_submission(folder: Path, log_pattern: str | None = None, seconds: float = 300) -> Submission:
    if not folder.is_dir() or not any(folder.iterdir()):
        raise ConfigError(f"{folder}: an empty folder (nothing handed in)")
    readme = next((p for p in sorted(folder.iterdir()) if p.name.lower() == "readme.md"), None)
    notebooks = [
        read_notebook(p, log_pattern) for p in sorted(folder.rglob("*.ipynb")) if ".ipynb_checkpoints" not in p.parts
    ]
    if readme is None and not any(n.markdown.strip() for n in notebooks):
        raise ConfigError(f"{folder}: no write-up (no README.md, no notebook with markdown cells)")
    steps: dict[int | None, Step] = {}
    for text, source in ([(readme.read_text(errors="replace"), readme.name)] if readme else []) + [
        (n.markdown, n.path.name) for n in notebooks
    ]:
        for step in steps_in(text, source):
            if step.number in steps:  # the same step in the README and its notebook: one step, parts merged
                steps[step.number].parts = {**step.parts, **steps[step.number].parts}
            else:
                steps[step.number] = step
    if not steps:
        raise ConfigError(f"{folder}: no steps found (no heading names a step or a model: # Step 1, ## Model 2, ...)")
    ordered = sorted(steps.values(), key=lambda s: (s.number is None, s.number or 0))
    if readme is not None and not notebooks:  # logs pasted into the README
        notebooks = [Notebook(readme, "", read_log(readme.read_text(errors="replace"), log_pattern), [])]
    tied = tie_notebooks(ordered, notebooks)
    model_file = folder / "model.py" if (folder / "model.py").is_file() else None
    classes = module_classes(model_file) if model_file else []
    graded = [Graded(step, tied.get(i), model_of(step, tied.get(i), classes)) for i, step in enumerate(ordered)]
    wanted = sorted({g.model for g in graded if g.model})
    measured, error = {}, "" if model_file else "no model.py"
    if wanted:
        ran = measure(folder, "model.py", wanted, seconds)
        measured, error = (ran.output, "") if ran.ok else ({}, f"model.py: {ran.error}")
    for g in graded:
        g.measured = measured.get(g.model, {}) if g.model else {}
    return Submission(folder, graded, model_file, error)
