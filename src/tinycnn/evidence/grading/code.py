"""Where a submission's models live, found by reading its code (never running it): the nn.Module
classes of every `.py` file (`model.py`, `models.py`, `src/model.py`, `model_1.py`, a package of a
cloned repository) and of every notebook cell, and which of them a notebook cell builds, following
its imports as Python would (`from model import Model6 as Net`, `import model as m; m.Net()`,
`from models import *`, a package's `__init__` re-exporting a class).

A class defined in a notebook is measured from a module written for it: the notebook's imports,
definitions and constants from the cells that ran up to that one, in the order they ran, so a `Net`
defined again in a later cell is the later one.
"""

from __future__ import annotations

import ast
import hashlib
from dataclasses import dataclass
from pathlib import Path

SKIPPED = {".ipynb_checkpoints", "__pycache__", ".git", "site-packages", ".venv", "venv", "__MACOSX"}
DEFINITIONS = (ast.Import, ast.ImportFrom, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


@dataclass(frozen=True)
class ModelRef:
    """One model class as a step trained it: where it is defined and how it was called."""

    name: str  # the class as defined
    file: str  # the .py file that defines it, relative to the submission (for a notebook's: generated)
    label: str  # how a teacher finds it: "models.py:Model_3", "S7_Code3.ipynb:Net (cell 4)"
    args: str = ""  # the call's literal arguments, as written ("dropout=0.1")
    source: str = ""  # a notebook class's generated module; "" for a file on disk

    @property
    def number(self) -> int | None:
        digits = "".join(ch for ch in self.name if ch.isdigit())
        return int(digits) if digits and len(digits) <= 2 else None


def python_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if not SKIPPED & set(p.relative_to(folder).parts))


def parse_file(path: Path) -> ast.Module | None:
    try:
        return ast.parse(path.read_text(errors="replace"), str(path))
    except (SyntaxError, ValueError):
        return None


def base_names(node: ast.ClassDef) -> list[str]:
    return [ast.unparse(base).split(".")[-1] for base in node.bases]


def model_classes(trees: dict[str, ast.Module | None]) -> dict[str, list[str]]:
    """{file: its nn.Module classes}, a class counting when it derives from Module or from a class
    that does (in any file: `class Model2(Model1)` with Model1 imported)."""
    known: set[str] = {"Module"}
    found: dict[str, list[str]] = {name: [] for name in trees}
    changed = True
    while changed:
        changed = False
        for name, tree in trees.items():
            for node in tree.body if tree else []:
                if isinstance(node, ast.ClassDef) and node.name not in found[name] and set(base_names(node)) & known:
                    found[name].append(node.name)
                    known.add(node.name)
                    changed = True
    return found


def literal_args(call: ast.Call) -> str:
    """A call's arguments as written, where every one is a literal (else none: the defaults)."""
    parts = [*call.args, *(k.value for k in call.keywords)]
    try:
        for part in parts:
            ast.literal_eval(part)
    except ValueError:
        return ""
    return ", ".join([ast.unparse(a) for a in call.args] + [f"{k.arg}={ast.unparse(k.value)}" for k in call.keywords])


class CodeIndex:
    """The submission's .py files and their model classes, and imports resolved to them."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.trees = {str(p.relative_to(folder)): parse_file(p) for p in python_files(folder)}
        self.classes = model_classes(self.trees)

    def module_file(self, dotted: str, near: Path) -> str | None:
        """The file `import dotted` reaches from a notebook in `near`: beside it, at the top, or in
        any folder (a cloned repository on sys.path), the nearest first."""
        tail = dotted.replace(".", "/")
        candidates = [f for f in self.trees if f == f"{tail}.py" or f.endswith(f"/{tail}.py")
                      or f == f"{tail}/__init__.py" or f.endswith(f"/{tail}/__init__.py")]
        here = str(near.relative_to(self.folder)) if near != self.folder else ""
        return min(candidates, key=lambda f: (not f.startswith(here), f.count("/"), f), default=None)

    def defining(self, file: str, name: str, depth: int = 0) -> str | None:
        """The file that defines `name` as seen from `file` (following `from .x import name` and `*`)."""
        if name in self.classes.get(file, []):
            return file
        tree = self.trees.get(file)
        if tree is None or depth > 3:
            return None
        for node in tree.body:
            if isinstance(node, ast.ImportFrom):
                names = {a.asname or a.name: a.name for a in node.names}
                if name in names or "*" in names:
                    base = Path(file).parent
                    for _ in range(max(node.level - 1, 0)):
                        base = base.parent
                    dotted = ".".join([*base.parts, *(node.module or "").split(".")]).strip(".") if node.level else (
                        node.module or "")
                    target = self.module_file(dotted, self.folder) if dotted else None
                    if target and target != file:
                        found = self.defining(target, names.get(name, name), depth + 1)
                        if found:
                            return found
        return None

    def by_name(self, name: str) -> list[str]:
        return [file for file, classes in self.classes.items() if name in classes]


def snapshot(trees: list[ast.Module]) -> str:
    """A module of a notebook's definitions in the order they ran: imports (each guarded: a notebook's
    Colab or plotting import must not stop its model from being built), classes, functions and
    constants (`dropout_value = 0.05`)."""
    lines = ["import torch", "import torch.nn as nn", "import torch.nn.functional as F"]
    for tree in trees:
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                lines.append(f"try:\n    {ast.unparse(node)}\nexcept Exception:\n    pass")
            elif isinstance(node, DEFINITIONS):
                lines.append(ast.unparse(node))
            elif isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) for t in node.targets):
                try:
                    ast.literal_eval(node.value)
                except ValueError:
                    continue
                lines.append(ast.unparse(node))
    return "\n\n".join(lines) + "\n"


def generated_name(notebook: Path, folder: Path, source: str) -> str:
    """Where a notebook class's module is written in the sandbox's copy: beside the notebook, so it
    imports the notebook's neighbours as the notebook did."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:12]
    return str((notebook.parent / f"tinycnn_cells_{digest}.py").relative_to(folder))


class Builds:
    """Follows one notebook's cells in the order they ran and says which model each cell builds:
    the last call (or class passed to a call) that names a model class, resolved through the
    notebook's imports to the file or the cell that defines it."""

    def __init__(self, index: CodeIndex, notebook: Path):
        self.index, self.notebook = index, notebook
        self.imported: dict[str, tuple[str, str]] = {}  # name in the notebook: (file, class)
        self.modules: dict[str, str] = {}  # alias: file (`import model as m`)
        self.ran: list[ast.Module] = []
        self.defined: dict[str, int] = {}  # classes defined in cells so far: the cell that defined each last

    def learn(self, tree: ast.Module, cell: int) -> None:
        near = self.notebook.parent
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                file = self.index.module_file(node.module, near)
                for alias in node.names if file else []:
                    if alias.name == "*":
                        self.imported.update({c: (f, c) for c in self.star(file) for f in [self.index.defining(file, c)]})
                    elif found := self.index.defining(file, alias.name):
                        self.imported[alias.asname or alias.name] = (found, alias.name)
                        self.defined.pop(alias.asname or alias.name, None)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if file := self.index.module_file(alias.name, near):
                        self.modules[alias.asname or alias.name] = file
            elif isinstance(node, ast.ClassDef) and set(base_names(node)) & ({"Module"} | set(self.defined)
                                                                               | set(self.imported)):
                self.defined[node.name] = cell
                self.imported.pop(node.name, None)

    def star(self, file: str) -> list[str]:
        return [c for f, classes in self.index.classes.items() for c in classes if self.index.defining(file, c) == f]

    def __call__(self, cell, calls: list[ast.Call]) -> ModelRef | None:
        if cell.tree is None:
            return None
        self.learn(cell.tree, cell.index)
        self.ran.append(cell.tree)
        built = None
        for call in calls:
            for func, args in [(call.func, literal_args(call))] + [(a, "") for a in call.args if isinstance(a, ast.Name)]:
                built = self.resolve(func, args) or built
        return built

    def resolve(self, func: ast.expr, args: str) -> ModelRef | None:
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in self.modules:
            found = self.index.defining(self.modules[func.value.id], func.attr)
            return ModelRef(func.attr, found, f"{found}:{func.attr}", args) if found else None
        if not isinstance(func, ast.Name):
            return None
        name = func.id
        if name in self.defined:
            source = snapshot(self.ran)
            file = generated_name(self.notebook, self.index.folder, source)
            return ModelRef(name, file, f"{self.notebook.name}:{name} (cell {self.defined[name] + 1})", args, source)
        if name in self.imported:
            file, real = self.imported[name]
            return ModelRef(real, file, f"{file}:{real}", args)
        return None
