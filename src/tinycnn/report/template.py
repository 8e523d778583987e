"""Named page templates (report/templates/*.md) filled with `$name` / `${name}` values.

Templates hold the fixed wording of each page; the values are blocks already rendered from
statistics. A template that names a value nobody supplied is an error, never a silent gap.
"""
from __future__ import annotations

from functools import cache
from pathlib import Path
from string import Template

FOLDER = Path(__file__).with_name("templates")


@cache
def template(file: str) -> Template:
    return Template((FOLDER / file).read_text())


def render(template_file: str, /, **values) -> str:
    return template(template_file).substitute(values)
