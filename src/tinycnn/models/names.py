"""How a model is written down: the TinyNet layout grammar and a model of your own as FILE.py:NAME.

Plain text rules, no torch: the command line checks what was typed with them before its slow
imports (spec.py turns what passes into a ModelSpec).
"""

from __future__ import annotations

import re
from pathlib import Path

# A TinyNet layout string (blocks.py): comma-separated cN (3x3 conv block, N channels), cNp (padded),
# cNk5 / cNpk5 (5x5 kernel), sN / sNp (depthwise-separable block), tN (1x1 transition to N channels)
# and m (2x2 max pool).
LAYOUT_TOKEN = re.compile(
    r"^(?:c(?P<conv>\d+)(?P<pad>p?)(?:k(?P<kernel>[357]))?"
    r"|s(?P<sep>\d+)(?P<sep_pad>p?)|t(?P<trans>\d+)|m)$"
)
# A model of your own (user_file.py).
MODEL_FILE = re.compile(r"^(?P<file>.+\.py):(?P<name>[A-Za-z_]\w*)$")


def check_layout(layout: str) -> list[str]:
    """The layout's tokens; ValueError naming the first bad one."""
    tokens = layout.replace(" ", "").split(",")
    for token in tokens:
        if not LAYOUT_TOKEN.match(token):
            raise ValueError(f"bad layout token {token!r} in {layout!r} (use cN, cNp, cNk5, sN, sNp, tN or m)")
    return tokens


def is_model_file(model: str) -> bool:
    return isinstance(model, str) and MODEL_FILE.match(model) is not None


def portable_model(model):
    """FILE.py:NAME as its file's name and NAME ("model.py:Net"); a registered name stays itself."""
    match = MODEL_FILE.match(model) if isinstance(model, str) else None
    return f"{Path(match['file']).name}:{match['name']}" if match else model
