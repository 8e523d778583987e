"""One model, however it was named: ModelSpec.

A model is named three ways: a registered name (`Model_3`), a registered name whose layers a
layout string replaces (`--layout c6,c8,m,c10`: tuning and sweeps) and a file of your own
(`model.py:Net`). A ModelSpec is that name read once; what comes after asks it for its label, its
portable form, its file and SHA-256, and the module itself, instead of reading the string again.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from tinycnn.errors import ConfigError, UnknownModelError
from tinycnn.models.model import MODELS, build_model
from tinycnn.models.names import MODEL_FILE, is_model_file, portable_model
from tinycnn.models.user_file import absolute, file_sha256, load_model_file


@dataclass(frozen=True)
class ModelSpec:
    model: str = "Model_3"  # a registered name, or FILE.py:NAME
    layout: str = ""  # "" = the model's own layers; else a TinyNet of this layout replaces them
    dropout: float = -1.0  # -1 = the model's own rate; 0..1 replaces it

    @classmethod
    def of(cls, settings) -> ModelSpec:
        """The spec of whatever holds model, layout and dropout settings (a TrainConfig)."""
        return cls(settings.model, settings.layout, settings.dropout)

    def resolved(self, base: Path) -> ModelSpec:
        """FILE made absolute (relative to `base`): the same file from any folder, as records keep it."""
        return dataclasses.replace(self, model=absolute(self.model, base))

    @property
    def is_file(self) -> bool:
        return is_model_file(self.model)

    @property
    def file(self) -> Path | None:
        """FILE of FILE.py:NAME, as given (absolute once resolved); None for a registered model."""
        return Path(MODEL_FILE.match(self.model)["file"]) if self.is_file else None

    @property
    def name(self) -> str:
        """The registered name, or NAME of FILE.py:NAME."""
        return MODEL_FILE.match(self.model)["name"] if self.is_file else self.model

    @property
    def portable(self) -> str:
        """The model setting as records and reports show it: "Model_3", or "model.py:Net" (the file
        by its name: a project is cloned, moved and graded elsewhere)."""
        return portable_model(self.model)

    @property
    def label(self) -> str:
        """What is built, as a person reads it: a layout is the TinyNet it builds, not the registered
        model whose layers it replaces."""
        return f"TinyNet({self.layout.replace(' ', '')})" if self.layout and not self.is_file else self.portable

    @property
    def slug(self) -> str:
        """The label as a folder name: Model_3, Net, TinyNet-c6-c8-m-c10."""
        return (
            self.label.replace("(", "-").replace(",", "-").rstrip(")")
            if self.layout and not self.is_file
            else self.name
        )

    def sha256(self) -> str | None:
        """The SHA-256 of a model file (what weights record and `tinycnn check` compares); None otherwise."""
        return file_sha256(self.file) if self.is_file else None

    def build(self, base: Path = Path(".")) -> nn.Module:
        """The module, freshly initialised (FILE relative to `base` unless resolved)."""
        if not self.is_file:
            if self.model not in MODELS:
                raise UnknownModelError(self.model, list(MODELS))
            return build_model(self.model, self.dropout, self.layout)
        if self.layout:
            raise ConfigError(f"--layout changes registered models only, not {self.label}", key="model")
        model = load_model_file(self.model, base)
        return model if self.dropout < 0 else with_dropout(model, self.dropout, self.label)


def with_dropout(model: nn.Module, rate: float, label: str) -> nn.Module:
    """A user's model with every dropout layer set to `rate` (dropout called in forward, F.dropout,
    is the user's code and cannot be reached: a model with no dropout layer is refused)."""
    layers = [m for m in model.modules() if isinstance(m, nn.modules.dropout._DropoutNd)]
    if not layers:
        raise ConfigError(
            f"--dropout {rate:g}: {label} has no dropout layer (nn.Dropout, nn.Dropout2d, ...) to set", key="dropout"
        )
    for layer in layers:
        layer.p = rate
    return model
