"""A submission as handed in, read into one small model that the rules judge: its steps (write-up
texts), each tied to the run that trained it (a notebook's log, or a log pasted into the README) and
to the model class that run built, measured in a sandboxed child.

How a step finds its run, first that applies (the tie is recorded, for the evidence):
1. a link in its heading or text to a notebook (`## Model 3 - [Notebook](.../S7_Model3.ipynb)`);
2. the notebook whose markdown holds it (several steps in one notebook: the runs after its heading);
3. the number in a notebook's file name (`S7_Code2.ipynb`, `iter3.ipynb`, `model_1.ipynb`);
4. a run whose model's name carries its number (`Model_2`);
5. the notebooks left, in order, when as many are left as steps;
6. a log pasted under it in the README.
Within a notebook the step's run is the last one (exploratory runs come first), or the last that
trained the step's numbered model. A step's model is its run's; else a class named after the step
(`Model_3`, `Net3`); else the only class there is.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from tinycnn.errors import ConfigError, DataError
from tinycnn.evidence.grading.code import Builds, CodeIndex, ModelRef
from tinycnn.evidence.grading.logs import Run, runs_in
from tinycnn.evidence.grading.models import measure_refs
from tinycnn.evidence.grading.notebooks import Notebook, read_notebook
from tinycnn.evidence.grading.writeup import RF_LINE, Step, StepReader, join, merged

FILE_NUMBER = re.compile(r"(?:step|model|module|code|iter(?:ation)?|attempt|exp(?:eriment)?|v(?:ersion)?|try|part|net)"
                         r"[\s_-]*0*(\d{1,2})(?!\d)", re.I)
README = re.compile(r"readme\.(?:md|markdown)$", re.I)


@dataclass
class Graded:
    """A step as graded: its texts, the run that trained it, that run's model and the model's figures."""

    step: Step
    run: Run | None = None
    model: ModelRef | None = None
    measured: dict = field(default_factory=dict)  # params, rf, rf_rows; or error
    tie: str = ""  # how its run was found
    rf_written: list[int] = field(default_factory=list)  # receptive fields written for its model

    @property
    def label(self) -> str:
        return f"step {self.step.number}" if self.step.number is not None else "final model"


@dataclass
class Submission:
    folder: Path
    steps: list[Graded]
    notebooks: list[Notebook]
    index: CodeIndex
    written: bool = True  # False: no step is written up; the notebooks stand in for steps
    images: int = 0  # pictures in the write-up
    rf_written: list[int] = field(default_factory=list)  # receptive fields written outside any step
    stubbed: str = ""  # libraries the measuring child lacked (stand-ins)

    @property
    def final(self) -> Graded | None:
        return self.steps[-1] if self.steps else None


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
    found = FILE_NUMBER.findall(path.stem)
    if found:
        return int(found[-1])
    match = re.search(r"(?<!\d)(\d{1,2})$", path.stem)  # `S7F2`, `s5_f3`
    return int(match[1]) if match else None


def ordered(steps: list[Step]) -> list[Step]:
    """By number; a "Final model" section joins the last numbered step where there is one."""
    numbered = sorted((s for s in steps if s.number is not None), key=lambda s: s.number)
    final = [s for s in steps if s.number is None]
    if numbered:
        for step in final:
            heading = numbered[-1].heading
            join(numbered[-1], step)
            numbered[-1].heading = heading
        return numbered
    for step in final[1:]:  # "Final architecture", then "Final model training log": one final step
        join(final[0], step)
    return final[:1]


def run_in(notebook: Notebook, step: Step, steps_here: list[Step]) -> Run | None:
    runs, name = [r for r in notebook.runs if r.epochs], notebook.path.name
    if len(steps_here) > 1 and name in step.at:  # several steps in one notebook: the runs after this one's heading
        start = step.at[name]
        end = min((s.at[name] for s in steps_here if s.at.get(name, -1) > start), default=10**9)
        runs = [r for r in runs if start < r.cell < end] or runs
    numbered = [r for r in runs if r.model is not None and r.model.number == step.number]
    return (numbered or runs or [None])[-1]


def tie_runs(steps: list[Step], notebooks: list[Notebook]) -> list[tuple[Run | None, str]]:
    by_name = {n.path.name: n for n in notebooks}
    sources = {n.path.name: [s for s in steps if n.path.name in (s.source, *s.found_in)] for n in notebooks}
    tied: list[tuple[Notebook | None, str]] = []
    for step in steps:
        linked = next((by_name[link] for link in step.links if link in by_name), None)
        if linked:
            tied.append((linked, f"linked from its text ({linked.path.name})"))
        elif mine := [by_name[s] for s in [step.source, *step.found_in] if s in by_name]:
            tied.append((mine[0], f"written in {mine[0].path.name}"))
        elif named := [n for n in notebooks if file_number(n.path) == step.number and step.number is not None]:
            tied.append((named[0], f"by the number in {named[0].path.name}"))
        elif built := [n for n in notebooks if any(r.model and r.model.number == step.number for r in n.runs)]:
            tied.append((built[-1], f"by the model {built[-1].path.name} trains"))
        else:
            tied.append((None, ""))
    used = [id(t) for t, _ in tied]
    left = [n for n in notebooks if n.runs and id(n) not in used]
    untied = [i for i, (n, _) in enumerate(tied) if n is None]
    if untied and len(left) == len(untied):
        for i, notebook in zip(untied, left):
            tied[i] = (notebook, f"by order ({notebook.path.name})")
    runs = []
    for step, (notebook, how) in zip(steps, tied):
        if notebook is not None and (run := run_in(notebook, step, sources.get(notebook.path.name, []))):
            runs.append((run, how))
        elif pasted := runs_in(step.logs, f"{step.source} (pasted log)"):
            runs.append((pasted[-1], f"a log pasted under it in {step.source}"))
        else:
            runs.append((None, how))
    return runs


def named_model(step: Step, index: CodeIndex, final: bool, writeup: str) -> ModelRef | None:
    """A step's model by name: `Model_3`, `Net3` for step 3; else a class its text names (for the final
    step, one the write-up names, or one in a file called final); else the only class there is."""
    classes = [(f, c) for f, names in index.classes.items() for c in names]
    numbered = [(f, c) for f, c in classes if step.number is not None and re.fullmatch(
        rf"(?:model|net|network|step)_?0*{step.number}", c, re.I)]
    mentioned = [(f, c) for f, c in classes if re.search(rf"\b{re.escape(c)}\b", step.text)]
    if final and not mentioned:
        mentioned = [(f, c) for f, c in classes if re.search(rf"\b{re.escape(c)}\b", writeup)] or [
            (f, c) for f, c in classes if "final" in Path(f).stem.lower()]
    found = sorted(numbered, key=lambda fc: (not Path(fc[0]).stem.startswith("model"), fc[0])) or mentioned[-1:]
    if found or len(classes) == 1:
        file, name = (found or classes)[0]
        return ModelRef(name, file, f"{file}:{name}")
    return None


def rf_comments(ref: ModelRef, folder: Path) -> list[int]:
    """Receptive fields written in comments inside the class (`# 26x26 | RF: 3`)."""
    text = ref.source or ((folder / ref.file).read_text(errors="replace") if (folder / ref.file).is_file() else "")
    match = re.search(rf"^class\s+{re.escape(ref.name)}\b.*?(?=^\S|\Z)", text, re.M | re.S)
    body = match[0] if match else ""
    return [int(m[1]) for line in body.splitlines() if "#" in line for m in RF_LINE.finditer(line.split("#", 1)[1])]


def read_submission(folder: Path, log_pattern: str | None = None, seconds: float = 300) -> Submission:
    if not folder.is_dir() or not any(folder.iterdir()):
        raise ConfigError(f"{folder}: an empty folder (nothing handed in)")
    readmes = sorted((p for p in folder.rglob("*") if README.search(p.name) and ".ipynb_checkpoints" not in p.parts),
                     key=lambda p: (len(p.relative_to(folder).parts), str(p)))
    paths = sorted(p for p in folder.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    if not readmes and not paths:
        raise ConfigError(f"{folder}: no write-up (no README.md, no notebook)")
    index = CodeIndex(folder)
    notebooks = [read_notebook(p, log_pattern, Builds(index, p)) for p in paths]
    steps, loose_rf, images, loose_logs, writeup = [], [], 0, "", ""
    if readmes:
        reader = StepReader(readmes[0].name)
        text = writeup = readmes[0].read_text(errors="replace")
        reader.feed(text)
        steps, loose_rf, loose_logs = merged(steps, reader.result()), reader.rf, reader.loose.logs
        images += len(re.findall(r"!\[[^\]]*\]\(|<img\b", text))
    for notebook in notebooks:
        reader = StepReader(notebook.path.name)
        for cell in (c for c in notebook.cells if c.kind == "markdown"):
            reader.feed(cell.source, cell.index)
        found = reader.result()
        for step in found:
            if not step.named:
                step.number, step.heading = file_number(notebook.path), f"{notebook.path.name} (its own markdown)"
        steps = merged(steps, found)
        loose_rf += reader.rf
        images += notebook.images
    steps = ordered(steps)
    written = bool(steps)
    if not steps:  # nothing written up: each notebook that trained stands in for a step
        trained = sorted((n for n in notebooks if n.runs), key=lambda n: (file_number(n.path) or 0, n.path.name))
        steps = [Step(file_number(n.path), f"{n.path.name} (no write-up)", n.path.name, named=False) for n in trained]
    if not steps and loose_logs:  # no step, no notebook: the README's own log stands for the final step
        steps = [Step(None, f"{readmes[0].name} (no write-up)", readmes[0].name, logs=loose_logs, named=False)]
    graded = [Graded(step, run, tie=how) for step, (run, how) in zip(steps, tie_runs(steps, notebooks))]
    for i, g in enumerate(graded):
        g.model = (g.run.model if g.run else None) or named_model(g.step, index, i == len(graded) - 1, writeup)
    measured, stubbed = measure_refs(folder, [g.model for g in graded if g.model], seconds)
    for g in graded:
        g.measured = measured.get(g.model, {}) if g.model else {}
        g.rf_written = g.step.rf + (rf_comments(g.model, folder) if g.model else [])
    return Submission(folder, graded, notebooks, index, written, images, loose_rf, stubbed)
