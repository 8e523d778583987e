"""The front door and the site: the README fits a screen, the docs/ pages build with MkDocs --strict
(a broken link or anchor fails), every page is in the navigation, and the module names the API
page documents import."""

import importlib
import os
import re
import subprocess
import sys

import yaml
from conftest import ROOT

DOCS = ROOT / "docs"


def mkdocs(config, site):
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "--site-dir", str(site)],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )


def test_the_readme_fits_a_screen():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 150, len(lines)
    assert (
        lines[2:5] == ["```bash", lines[3], lines[4]]
        and lines[3].startswith("make train")
        and lines[4].startswith("make test")
    ), "the two commands come first"


def test_the_site_builds_with_strict_links(tmp_path):
    built = mkdocs(ROOT / "mkdocs.yml", tmp_path / "site")
    assert built.returncode == 0, built.stderr[-3000:]
    assert (tmp_path / "site" / "index.html").is_file() and (
        tmp_path / "site" / "reports" / "step3" / "index.html"
    ).is_file()


def test_a_broken_link_or_anchor_fails_the_build(tmp_path):
    """The check itself: the same validation settings on a page with a dead link, then a dead anchor."""
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text("# Page\n\n## Here\n")
    for text in ("[gone](nowhere.md)", "[gone](page.md#not-here)"):
        (tmp_path / "docs" / "index.md").write_text(f"# Home\n\n{text}\n")
        small = {**config, "nav": [{"Home": "index.md"}, {"Page": "page.md"}], "exclude_docs": ""}
        (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump(small))
        built = mkdocs(tmp_path / "mkdocs.yml", tmp_path / "site")
        assert built.returncode != 0 and "WARNING" in built.stderr, (text, built.stderr[-2000:])


def test_every_page_is_in_the_navigation():
    nav = {next(iter(entry.values())) for entry in yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]}
    assert nav == {p.name for p in DOCS.glob("*.md")}


def test_the_module_names_the_api_page_documents_import():
    names = re.findall(r"^\| [^|]+ \| `(tinycnn\.[\w.]+)` \|", (DOCS / "api.md").read_text(), re.M)
    assert len(names) >= 8, names
    for name in names:
        module, attribute = name.rsplit(".", 1)
        assert hasattr(importlib.import_module(module), attribute), name


def test_the_readmes_commands_parse_as_written():
    """Each `tinycnn ...` line of the README's examples is a command line the parser takes (the pages'
    examples run as written in the tests of their commands)."""
    from tinycnn.cli.main import build_parser

    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    lines = [part.split("#")[0].strip() for block in blocks for line in block.splitlines() for part in line.split("&&")]
    commands = [line.split()[1:] for line in lines if line.startswith("tinycnn ")]
    assert len(commands) >= 8, commands
    for args in commands:
        build_parser().parse_args(args)  # argparse exits 2 on a command it does not take
