"""A notebook as its author ran it: code cells in execution order (their `In [n]` counts where
saved), each read for the model classes it defines, the names it imports and the model it builds,
and its saved outputs read as logs. Its runs follow: a run starts where a cell builds a model or the
printed epochs start again, and trains the model built last before its first epoch.

Nothing here runs the notebook: cells are parsed (shell and magic lines blanked first), never executed.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from tinycnn.errors import DataError
from tinycnn.evidence.grading.logs import Run, read_text

MAGIC = re.compile(r"^(\s*)([!%].*)$", re.M)
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass
class Cell:
    index: int  # its place in the file
    kind: str  # code or markdown
    source: str
    output: str = ""  # its saved text outputs, joined
    error: str = ""  # the exception it stopped on, if any (`KeyboardInterrupt`)
    tree: ast.Module | None = None  # a code cell parsed, shell and magic lines blanked


@dataclass
class Notebook:
    path: Path
    cells: list[Cell]  # every cell in file order (its runs follow the order the code cells ran)
    markdown: str
    runs: list[Run] = field(default_factory=list)
    images: int = 0  # pictures in its markdown (a plot's output is no write-up)

    @property
    def code(self) -> str:
        return "\n".join(c.source for c in self.cells if c.kind == "code")


def blank_magics(source: str) -> str:
    """`!pip install x`, `%matplotlib inline` as `pass` lines: the rest of the cell still parses."""
    return MAGIC.sub(lambda m: f"{m[1]}pass  # {m[2][:60]!r}", source)


def parsed(source: str) -> ast.Module | None:
    try:
        return ast.parse(blank_magics(source))
    except SyntaxError:
        return None


def output_text(output: dict) -> tuple[str, str]:
    """(text, error) of one saved output."""
    if output.get("output_type") == "error":
        return "", f"{output.get('ename', '')}: {output.get('evalue', '')}".strip(": ")
    text = output.get("text") or output.get("data", {}).get("text/plain", "")
    return ANSI.sub("", "".join(text) if isinstance(text, list) else str(text)), ""


def ran_order(cells: list[Cell], counts: list[int | None]) -> list[Cell]:
    """Code cells by their execution count (a cell never run keeps its place after the one before it)."""
    keyed, last = [], 0.0
    for cell, count in zip(cells, counts):
        last = float(count) if count is not None else last + 1e-3
        keyed.append((last, cell.index, cell))
    return [cell for _, _, cell in sorted(keyed, key=lambda k: (k[0], k[1]))]


def read_cells(path: Path) -> tuple[list[Cell], int, list[Cell]]:
    """(every cell in file order, the pictures in its markdown, the code cells in the order they ran)"""
    try:
        notebook = nbformat.read(path, as_version=4)
    except Exception as e:  # noqa: BLE001 - damaged JSON, not a notebook: one line
        raise DataError(f"{path}: not a readable notebook ({str(e).splitlines()[0][:120]})") from None
    cells, counts, images = [], [], 0
    for index, raw in enumerate(notebook.cells):
        source = raw.source if isinstance(raw.source, str) else "".join(raw.source)
        cell = Cell(index, "code" if raw.cell_type == "code" else "markdown", source)
        if cell.kind == "code":
            texts = [output_text(o) for o in raw.get("outputs", [])]
            cell.output = "\n".join(t for t, _ in texts if t)
            cell.error = next((e for _, e in texts if e), "")
            cell.tree = parsed(source)
            counts.append(raw.get("execution_count"))
        else:
            images += len(re.findall(r"!\[[^\]]*\]\(|<img\b", source))
        cells.append(cell)
    return cells, images, ran_order([c for c in cells if c.kind == "code"], counts)


def built_in(tree: ast.Module | None) -> list[ast.Call]:
    """Calls in a cell that may build a model: `Net()`, `Model_3(0.1)`, `m.Net()` (in source order)."""
    if tree is None:
        return []
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, (ast.Name, ast.Attribute))]
    return sorted(calls, key=lambda n: (n.lineno, n.col_offset))


def read_notebook(path: Path, pattern: str | None, builds) -> Notebook:
    """`builds(cell, calls)`: the model a cell builds (its last), or None: the submission reader knows
    which names are model classes; this module only reads."""
    cells, images, ran = read_cells(path)
    notebook = Notebook(path, cells, "\n\n".join(c.source for c in cells if c.kind == "markdown"), images=images)
    current, run, summary, spans = None, None, None, {}
    for cell in ran:
        built = builds(cell, built_in(cell.tree))
        if built is not None:
            current, run = built, None  # a model built anew: the next epochs are a new run
        reading = read_text(cell.output, pattern)
        summary = reading.total_params or summary
        cuts = [0, *reading.resets, len(reading.epochs)]
        for n, (a, b) in enumerate(zip(cuts, cuts[1:])):
            first = reading.epochs[a] if b > a else None
            if first is None:
                continue
            last = run.epochs[-1].label if run is not None and run.epochs else None
            if run is None or n > 0 or (first.label is not None and last is not None and first.label <= last):
                run = Run([], model=current, total_params=summary)
                notebook.runs.append(run)
                spans[id(run)] = [cell.index + 1, cell.index + 1]
            run.epochs += reading.epochs[a:b]
            spans[id(run)][1] = cell.index + 1
        if cell.error and run is not None and reading.epochs:
            run.stopped = cell.error.split(":")[0]  # KeyboardInterrupt: a run its author stopped
    for run in notebook.runs:
        a, b = spans[id(run)]
        run.where, run.cell = f"{path.name} cell {a}" + (f"-{b}" if b != a else ""), a - 1
    return notebook
