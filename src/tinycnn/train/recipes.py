"""Training recipes a user asks for by name: `tinycnn train --recipe fast`, `tinycnn check --rerun 5
--recipe fast`. Each is the [train] table of the experiment whose report measures it (a test
checks that they agree): `step3` is TrainConfig's defaults (reports/step3.md), `fast` the
time-to-target record (reports/fast.md).
"""
from __future__ import annotations

from tinycnn.errors import ConfigError
from tinycnn.train.config import TrainConfig

RECIPES: dict[str, dict] = {
    "step3": {},
    # both cores for one run, batch 128 at twice the peak rate, a 5x5-first model, 14 epochs, the last 3 unaugmented
    "fast": {"model": "Model_9", "epochs": 14, "batch_size": 128, "lr": 0.2, "clean_epochs": 3, "device": "cpu",
             "processes": 2},
}


def recipe(name: str) -> TrainConfig:
    """The named recipe's settings, its model included."""
    if name not in RECIPES:
        raise ConfigError(f"unknown recipe {name!r}; known recipes: {', '.join(RECIPES)}", key="recipe")
    return TrainConfig(**RECIPES[name])
