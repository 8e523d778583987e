"""Editions of the assignment as data: how many steps, the parameter budget ("fewer than"), the epoch
limit, the target and how many last epochs must hold it, which steps the limits bind (the final
model's, as the assignment states them, or every step's), files and classes it requires, and the
points each rule is worth on Gradescope. The code holds how a rule is judged; a rubric, which
course asked for what. Three editions are built in; `--rubric FILE.toml` reads another:

    name = "S7: three steps under 8k"
    steps = 3                  # exactly; with steps_at_least = true, at least
    budget = 8000              # parameters: fewer than this
    epochs = 15                # at most
    target = 99.4              # percent, on each scored epoch
    scored = 3                 # the last logged epochs of the final run that must each hold it
    limits = "final"           # "final": budget and epochs bind the final model; "all": every step
    required_files = ["model.py"]
    required_classes = ["Model_1", "Model_2", "Model_3"]   # each defined in a required file
    [points]                   # Gradescope points per rule (1 each by default)
    holds = 3
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from tinycnn.errors import ConfigError
from tinycnn.train.config import read_toml

RULES = ("steps", "texts", "budget", "epochs", "holds", "figures", "rf", "files")


@dataclass(frozen=True)
class Rubric:
    name: str = "three steps, fewer than 8,000 parameters"
    steps: int = 3
    steps_at_least: bool = False
    budget: int = 8000
    epochs: int = 15
    target: float = 99.4
    scored: int = 3
    limits: str = "final"
    required_files: tuple[str, ...] = ()
    required_classes: tuple[str, ...] = ()
    points: dict = field(default_factory=dict, hash=False)

    @property
    def steps_text(self) -> str:
        return f"{'at least ' if self.steps_at_least else ''}{self.steps} steps"

    def describe(self) -> str:
        return (
            f"{self.steps_text}, fewer than {self.budget:,} parameters, at most {self.epochs} epochs "
            f"({'the final model' if self.limits == 'final' else 'every step'}), {self.target:.2f}% on each of the "
            f"last {self.scored} epochs"
        )

    def point(self, rule: str) -> float:
        return float(self.points.get(rule, 1))


BUILT_IN = {
    "three-steps": Rubric(),
    "four-steps": Rubric("four steps, fewer than 10,000 parameters", steps=4, budget=10_000),
    "five-steps": Rubric("at least five steps, fewer than 10,000 parameters", steps=5, steps_at_least=True,
                         budget=10_000),
}


def load_rubric(spec: str | None, **shortcuts) -> Rubric:
    """A built-in edition by name or a TOML file, with the command line's shortcuts (--steps,
    --budget, --max-epochs, --target) over it."""
    if spec is None:
        rubric = BUILT_IN["three-steps"]
    elif spec in BUILT_IN:
        rubric = BUILT_IN[spec]
    elif spec.endswith(".toml"):
        rubric = read_rubric(Path(spec))
    else:
        raise ConfigError(f"--rubric {spec}: neither a built-in edition ({', '.join(BUILT_IN)}) nor a .toml file")
    given = {k: v for k, v in shortcuts.items() if v is not None}
    return dataclasses.replace(rubric, **given) if given else rubric


def read_rubric(path: Path) -> Rubric:
    names = {f.name for f in dataclasses.fields(Rubric)}
    raw = read_toml(path, "rubric", names, set())
    types = {"name": str, "steps": int, "steps_at_least": bool, "budget": int, "epochs": int, "target": (int, float),
             "scored": int, "limits": str, "required_files": list, "required_classes": list, "points": dict}
    for key, value in raw.items():
        if not isinstance(value, types[key]) or (types[key] is int and isinstance(value, bool)):
            raise ConfigError(f"{path}: {key} = {value!r} is not a {getattr(types[key], '__name__', 'number')}")
    if raw.get("limits", "final") not in ("final", "all"):
        raise ConfigError(f"{path}: limits = {raw['limits']!r}: \"final\" or \"all\"")
    unknown = sorted(set(raw.get("points", {})) - set(RULES))
    if unknown:
        raise ConfigError(f"{path}: points for unknown rule(s) {', '.join(unknown)} (rules: {', '.join(RULES)})")
    for key in ("steps", "budget", "epochs", "scored"):
        if key in raw and raw[key] < 1:
            raise ConfigError(f"{path}: {key} = {raw[key]} must be at least 1")
    raw = {**raw, "required_files": tuple(raw.get("required_files", ())),
           "required_classes": tuple(raw.get("required_classes", ())), "target": float(raw.get("target", 99.4))}
    return Rubric(**{"name": path.stem, **raw})
