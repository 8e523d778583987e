"""The package's shape: the folder listing is the architecture, imports run only downward between
its groups, and every module stays short enough to read in one sitting."""

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "tinycnn"
# Bottom to top. A group imports its own modules and those of groups below it (or beside it, at the
# same rank: the command line and the Python API are two faces of one layer), never one above.
RANKS = {
    "errors": 0,
    "files": 0,
    "machine": 0,
    "models": 1,
    "train": 2,
    "ship": 3,
    "evidence": 4,
    "report": 5,
    "demo": 5,
    "api": 6,
    "cli": 6,
}
NOT_CODE = {"__init__.py", "starter"}  # the package's lazy API (see below) and the starter project's files
LONGEST = 300  # lines: one reading


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "starter" not in p.relative_to(PACKAGE).parts)


def group(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def imported_groups(path: Path) -> set[tuple[str, int]]:
    """(group, line) of every tinycnn module that `path` imports, relative or absolute."""
    package = list(path.relative_to(PACKAGE).parent.parts)
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package[: len(package) - node.level + 1] + (node.module.split(".") if node.module else [])
                names = [parts] if parts else [[alias.name] for alias in node.names]
            elif node.module and node.module.split(".")[0] == "tinycnn":
                parts = node.module.split(".")[1:]
                names = [parts] if parts else [[alias.name] for alias in node.names]
            else:
                continue
        elif isinstance(node, ast.Import):
            names = [a.name.split(".")[1:] for a in node.names if a.name.split(".")[0] == "tinycnn"]
        else:
            continue
        found |= {(n[0], node.lineno) for n in names if n and n[0] in RANKS}
    return found


def test_the_folder_listing_is_the_groups():
    """A new top-level module or folder is a decision about the architecture: it goes in RANKS first."""
    listing = {p.name.removesuffix(".py") for p in PACKAGE.iterdir() if p.name != "__pycache__"}
    assert listing - {"__init__", "starter"} == set(RANKS)


def test_imports_run_only_downward():
    upward = []
    for path in modules():
        here = group(path)
        if here == "__init__":  # `from tinycnn import fit`: the root loads api on first use, not at import
            continue
        for there, line in imported_groups(path):
            if RANKS[there] > RANKS[here]:
                upward.append(
                    f"{path.relative_to(PACKAGE)}:{line} ({here}, rank {RANKS[here]}) imports {there} "
                    f"(rank {RANKS[there]})"
                )
    assert not upward, "\n".join(upward)


def test_the_rule_sees_an_upward_import(tmp_path, monkeypatch):
    """The check itself: a models/ module that imports the command line is caught, relative or absolute."""
    for text in (
        "from tinycnn.cli.main import main\n",
        "from ..cli import main\n",
        "import tinycnn.evidence.records\n",
    ):
        (tmp_path / "models").mkdir(exist_ok=True)
        bad = tmp_path / "models" / "bad.py"
        bad.write_text(text)
        monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path)
        assert {g for g, _ in imported_groups(bad)} <= {"cli", "evidence"} and imported_groups(bad)


def test_no_module_outgrows_one_reading():
    long = {str(p.relative_to(PACKAGE)): n for p in modules() if (n := len(p.read_text().splitlines())) > LONGEST}
    assert not long, long
