"""Trained weights as safetensors files, saved with what rebuilds the model and checked before use.

A weights file is a safetensors file (tensors only, no pickled code: safe to load from anyone)
whose metadata key "tinycnn" holds JSON: model (registered name), layout and dropout (tuning
overrides), mean and std (the training images' normalisation), and what the writer adds
(experiment, seed, evaluation accuracy), and format 2 (a file without it was written while
Model_3 had step 3's first layout, which it then means). `load_weights` rebuilds the model from that and refuses,
with one clear line, a file that is damaged, not safetensors, or of another model.
The repository ships seed 0 of every reported experiment as weights/<experiment>.safetensors,
which the package carries as package data (tinycnn/models/weights/).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save
from torch import nn

from tinycnn.errors import ConfigError, DataError, UnknownModelError
from tinycnn.files import write_bytes
from tinycnn.models.model import MODELS, layout_before_step3_changed
from tinycnn.models.names import is_model_file
from tinycnn.models.spec import ModelSpec
from tinycnn.models.user_file import file_sha256, load_model_file
from tinycnn.train.data import normalise

META_KEY = "tinycnn"
REPO_ROOT = Path(__file__).resolve().parents[3]  # the checkout this package runs from (src/tinycnn/ship/)
FORMAT = 2
WEIGHTS = "model.safetensors"  # a run folder's trained weights (records.py names the folder's other files)
SHIPPED = "weights"            # a project's shipped weights, <project>/weights/<experiment>.safetensors
# Package data, so an installed tinycnn has its shipped weights; in the checkout,
# src/tinycnn/models/weights is a link to weights/, where `tinycnn run` ships each experiment's first seed.
SHIPPED_DIR = Path(str(resources.files("tinycnn") / "models" / SHIPPED))


@dataclass
class Weights:
    model: nn.Module   # in eval mode, on the CPU
    meta: dict         # model, layout, dropout, mean, std, and what the writer added
    path: Path | None  # None: a model held in Python (api.py), not read from a file

    @property
    def spec(self) -> ModelSpec:
        """The model the weights are of, as trained (a layout is part of it)."""
        return ModelSpec(self.meta["model"], self.meta.get("layout", ""), self.meta.get("dropout", -1.0))

    @property
    def name(self) -> str:
        return self.spec.label


def save_weights(path: Path, model: nn.Module, spec: ModelSpec, mean: float, std: float, **extra) -> None:
    # safetensors stores plain contiguous tensors (channels_last weights are permuted views)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {"format": FORMAT, "model": spec.model, "layout": spec.layout, "dropout": spec.dropout, "mean": mean, "std": std,
            **extra}
    write_bytes(path, save(state, metadata={META_KEY: json.dumps(meta)}))


def rebuild(meta: dict, path: Path, model_file: str | None) -> nn.Module:
    """The module the weights belong to: a registered model, or the user's FILE.py:NAME that the
    weights record, refused in one line if that file is gone or no longer the one trained."""
    spec = meta["model"]
    if not is_model_file(spec):
        return ModelSpec(spec, meta.get("layout", ""), meta.get("dropout", -1.0)).build()
    recorded, name = spec.rsplit(":", 1)
    file = Path(model_file or recorded)
    if not file.is_file() and model_file is None:
        file = same_file_nearby(Path(recorded).name, path, meta.get("model_file_sha256")) or file
    if not file.is_file():
        raise ConfigError(f"{path}: its model file {file} is gone (moved or deleted): put it back, or pass "
                          f"--model-file with its new place")
    digest = file_sha256(file)
    if digest != meta.get("model_file_sha256"):
        raise DataError(f"{path}: {file} is not the file these weights were trained with (SHA-256 "
                        f"{meta.get('model_file_sha256', '?')[:12]}... then, {digest[:12]}... now): restore it, or train again")
    return load_model_file(f"{file.resolve()}:{name}")


def same_file_nearby(name: str, weights: Path, digest: str | None) -> Path | None:
    """The model file, byte for byte the one trained (same SHA-256), beside the weights or up to
    three folders above them: a project cloned or moved elsewhere (runs/x/model.safetensors,
    weights/x.safetensors) still finds its model.py, while a file that differs is never taken."""
    for folder in list(Path(weights).resolve().parents)[:3]:
        candidate = folder / name
        if digest and candidate.is_file() and file_sha256(candidate) == digest:
            return candidate
    return None


def load_weights(path: str | Path, model_file: str | None = None) -> Weights:
    """The model a weights file describes, with its weights loaded; DataError if the file is unfit.
    `model_file`: where a user's FILE.py is now, if it moved since training."""
    path = Path(path)
    try:
        with safe_open(path, framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get(META_KEY, "null"))
            state = {key: f.get_tensor(key) for key in f.keys()}
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such weights file") from None
    except (SafetensorError, OSError, ValueError) as e:  # truncated, foreign, or not safetensors
        raise DataError(f"{path}: not a readable safetensors weights file ({str(e).splitlines()[0]})") from None
    if not isinstance(meta, dict) or "model" not in meta:
        raise DataError(f"{path}: a safetensors file without tinycnn's metadata (which model it holds)")
    if meta.get("format", 1) < FORMAT:
        meta = {**meta, "layout": layout_before_step3_changed(meta["model"], meta.get("layout", ""))}
    try:
        model = rebuild(meta, path, model_file)
        model.load_state_dict(state, strict=True)
    except UnknownModelError:
        raise DataError(f"{path}: holds weights of model {meta['model']!r}, which this tinycnn does not know") from None
    except RuntimeError as e:  # missing or unexpected keys, or shapes of another model
        first = str(e).splitlines()[1].strip() if len(str(e).splitlines()) > 1 else str(e)
        raise DataError(f"{path}: these weights do not fit {meta['model']} (another model's file?): {first}") from None
    return Weights(model.eval(), meta, path)


def shipped_weights(name: str) -> Path:
    """The committed weights of a registered model: seed 0 of the experiment that reports it."""
    return SHIPPED_DIR / f"{MODELS[name].experiment}.safetensors"


def resolve(spec: str) -> Path:
    """A weights file from a registered model name, a run folder or a weights file path."""
    if spec in MODELS:
        path = shipped_weights(spec)
        if not path.is_file():
            raise DataError(f"no shipped weights for {spec} ({path} is missing); pass a run folder or a "
                            f"weights file instead")
        return path
    path = Path(spec)
    if path.is_dir():
        if not (path / WEIGHTS).is_file():
            raise ConfigError(f"{path}: a folder without {WEIGHTS} (not a finished tinycnn run)")
        return path / WEIGHTS
    if path.is_file():
        return path
    raise ConfigError(f"{spec!r} is neither a registered model ({', '.join(MODELS)}), a run folder, "
                      f"nor a weights file")


def ship(experiment: str, run_folder: Path, project: Path) -> Path:
    """Copy a finished run's weights to <project>/weights/<experiment>.safetensors, the shipped copy."""
    return write_bytes(Path(project) / SHIPPED / f"{experiment}.safetensors", (Path(run_folder) / WEIGHTS).read_bytes())


def load_model(spec: str, model_file: str | None = None) -> Weights:
    """`load_weights(resolve(spec))`: what evaluate, predict, export and the demo take."""
    return load_weights(resolve(spec), model_file)


def model_input(images_uint8: torch.Tensor, meta: dict) -> torch.Tensor:
    """(N, 28, 28) uint8 pixels to the (N, 1, 28, 28) float input the model was trained on."""
    return normalise(images_uint8.float(), meta["mean"], meta["std"]).unsqueeze(1)
