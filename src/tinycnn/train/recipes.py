"""Training recipes a user asks for by name: `tinycnn train --recipe step3_wide`, `tinycnn check
--rerun 5 --recipe step3_wide`. Each is the [train] table of the experiment whose report measures
it (a test checks that they agree): `step3` is TrainConfig's defaults (reports/step3.md), what
`make train` runs; `step3_wide` is step 3 as first reported (reports/step3_wide.md); `fast` the
time-to-target record that became step 3, under its own model name (reports/fast.md).
"""
from __future__ import annotations

from tinycnn.errors import ConfigError
from tinycnn.models.model import FIRST_STEP3
from tinycnn.train.config import TrainConfig

RECIPES: dict[str, dict] = {
    "step3": {},
    # the skeleton with a wider end (the Model_3 of that time), 15 epochs of batch 64 on one core, all augmented
    "step3_wide": {"layout": FIRST_STEP3, "epochs": 15, "batch_size": 64, "lr": 0.1,
                   "clean_epochs": 0, "device": "auto", "processes": 1},
    "fast": {"model": "Model_9"},
}


def recipe(name: str) -> TrainConfig:
    """The named recipe's settings, its model included."""
    if name not in RECIPES:
        raise ConfigError(f"unknown recipe {name!r}; known recipes: {', '.join(RECIPES)}", key="recipe")
    return TrainConfig(**RECIPES[name])
