"""A class compared: two submissions whose final training logs are the same line for line (no two
runs print the same accuracies and losses epoch after epoch by chance), or whose final model code is
the same once comments and the class's own name are set aside, are flagged in the class table (more
than three alike are counted, not named: a template the course handed out looks like that). A flag
is for a teacher to look at, not a verdict: a course's template model is often shared on purpose.
"""

from __future__ import annotations

import ast
import hashlib
import re

from tinycnn.evidence.grading.submission import Submission

MIN_EPOCHS = 3  # a shorter log is too little to call two the same
MANY = 3  # more alike than this are counted, not named


def class_source(sub: Submission) -> str | None:
    final = sub.final
    if final is None or final.model is None:
        return None
    ref = final.model
    text = ref.source or ((sub.folder / ref.file).read_text(errors="replace") if (sub.folder / ref.file).is_file()
                          else "")
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return None
    node = next((n for n in reversed(tree.body) if isinstance(n, ast.ClassDef) and n.name == ref.name), None)
    if node is None:
        return None
    node.name = "Model"  # the class's own name set aside: a renamed copy is a copy
    return ast.dump(node, annotate_fields=False, include_attributes=False)


def fingerprints(sub: Submission) -> dict[str, str]:
    """{"log": digest of the final run's printed test lines, "code": digest of the final class}."""
    found = {}
    run = sub.final.run if sub.final else None
    if run is not None and len(run.epochs) >= MIN_EPOCHS:
        lines = [re.sub(r"\s+", " ", e.line) for e in run.epochs]
        found["log"] = hashlib.sha256("\n".join(lines).encode()).hexdigest()
    if (code := class_source(sub)) is not None:
        found["code"] = hashlib.sha256(code.encode()).hexdigest()
    return found


def similar(prints: dict[str, dict[str, str]]) -> dict[str, list[str]]:
    """{submission: ["same training log as carl", "same model code as dora"]}."""
    flags: dict[str, list[str]] = {name: [] for name in prints}
    for kind, words in (("log", "same training log as"), ("code", "same model code as")):
        groups: dict[str, list[str]] = {}
        for name, found in prints.items():
            if kind in found:
                groups.setdefault(found[kind], []).append(name)
        for names in groups.values():
            for name in names if len(names) > 1 else []:
                others = [n for n in names if n != name]
                # many alike: a template the course handed out, more likely than copying
                flags[name].append(f"{words} {', '.join(others)}" if len(others) <= MANY else
                                   f"{words} {len(others)} others (a shared template?)")
    return flags
