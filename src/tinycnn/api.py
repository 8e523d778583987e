"""The Python API, for a notebook or a script: summary, fit, evaluate, predict and export.

    from tinycnn import fit, summary, evaluate, predict, export
    summary(Net())                     # parameters, MACs, receptive field (tables in Jupyter)
    trained = fit(Net(), epochs=15)    # an nn.Module, a registered name or "model.py:Net"
    trained.history                    # per-epoch metrics (a list of dicts); trained.plot() draws them
    evaluate(trained).accuracy         # test accuracy of the trained (averaged) weights
    predict(trained, "digit.png")      # a picture of a digit: its digit and ten probabilities
    export(trained, "onnx", "ship/")   # "onnx", "int8" or "c"

Each function takes what the command line takes (a registered name, a run folder, a weights file,
FILE.py:NAME) and, besides, what Python holds: a module, or the result of `fit`. They raise
tinycnn's errors (ConfigError, DataError, Diverged) with the command line's one-line messages.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import nn

from tinycnn.cli.progress import TrainProgress
from tinycnn.errors import ConfigError
from tinycnn.evidence import records
from tinycnn.evidence.challenge import scored
from tinycnn.evidence.plots import history_figure
from tinycnn.evidence.runner import prepare_folder, train_run
from tinycnn.models.model import count_parameters
from tinycnn.models.names import is_model_file
from tinycnn.models.receptive_field import RFRow
from tinycnn.models.spec import ModelSpec, with_dropout
from tinycnn.models.tables import (
    NotTraceableError,
    count_macs,
    model_tables_markdown,
    model_tables_text,
    receptive_field_table,
)
from tinycnn.models.user_file import absolute
from tinycnn.ship.inference import Assessment, assess, probabilities
from tinycnn.ship.onnx import Exported
from tinycnn.ship.onnx import export as export_weights
from tinycnn.ship.preprocess import preprocess_file, preprocess_rgba
from tinycnn.ship.weights import Weights, load_model, load_weights
from tinycnn.train.config import TrainConfig
from tinycnn.train.data import MNIST, channel_stats, find_mnist, load_mnist
from tinycnn.train.engine import fit as train


@dataclass
class Trained:
    """What `fit` returns: the trained model and how it got there."""
    model: nn.Module         # the evaluated model (the weight average when ema > 0), in eval mode, on the CPU
    history: list[dict]      # one dict per epoch: train/eval loss and accuracy, learning rate, seconds
    config: TrainConfig      # every setting the run used
    mean: float              # the input normalisation it was trained with
    std: float
    folder: Path | None      # the run folder (out=...), or None

    @property
    def scored(self) -> list[float]:
        """The accuracies the challenge scores: the last three epochs'."""
        return scored(self.history)

    @property
    def weights(self) -> Weights:
        """The trained model as `evaluate`, `predict` and `export` take it."""
        if self.folder is not None:
            return load_weights(self.folder / records.WEIGHTS)
        return Weights(self.model, {"model": self.config.model, "mean": self.mean, "std": self.std,
                                    "channels_last": self.config.channels_last}, None)

    def plot(self):
        """The loss and accuracy curves as a matplotlib Figure (Jupyter shows it inline)."""
        evaluated_on = "validation" if self.config.holdout else "test"
        return history_figure([self.history], f"{self.config.model}, seed {self.config.seed}", evaluated_on)


@dataclass
class Summary:
    """A model's parameter, MAC and receptive-field tables: text when printed, tables in Jupyter."""
    model: nn.Module
    params: int
    macs: int
    receptive_field: list[RFRow] | None   # None: the model cannot be traced (the text says why)

    def __str__(self) -> str:
        return model_tables_text(self.model)

    def _repr_markdown_(self) -> str:
        return model_tables_markdown(self.model)


def module_of(model) -> nn.Module:
    """A module from anything `summary` takes: a module, a `fit` result, a name or FILE.py:NAME."""
    if isinstance(model, nn.Module):
        return model
    if isinstance(model, Trained):
        return model.model
    if isinstance(model, str):
        return ModelSpec(model).build()
    raise ConfigError(f"expected an nn.Module, a fit result, a registered name or FILE.py:NAME, "
                      f"not {type(model).__name__}")


def summary(model) -> Summary:
    module = module_of(model)
    try:
        rows = receptive_field_table(module)
    except NotTraceableError:
        rows = None
    return Summary(module, count_parameters(module), count_macs(module), rows)


def mnist(data: MNIST | str | Path | None) -> MNIST:
    """The images: an MNIST tuple as given, a folder of IDX files, or (None) the bundled copy."""
    return data if isinstance(data, MNIST) else load_mnist(data)


def fit(model="Model_3", *, data: MNIST | str | Path | None = None, out: str | Path | None = None,
        force: bool = False, progress: bool = True, **settings) -> Trained:
    """Train `model` with tinycnn's whole pipeline and any TrainConfig setting (epochs=14, seed=0,
    lr=0.2, ...; the defaults are the step-3 recipe, except that a module built in Python trains in
    this one process unless processes= says otherwise: step 3's second process rebuilds the model
    by its name).

    `model`: an nn.Module (trained from its current weights, on a copy: the module you pass is left
    as it was), a registered name or "FILE.py:NAME" (relative to the current folder). `out`: also
    write a run folder (checkpoint every epoch, metrics, weights, curves), as `tinycnn train
    --out` does; a module built in Python cannot be rebuilt from a weights file, so it needs a
    name or a FILE.py:NAME. `data`: MNIST from load_mnist(), a folder of IDX files, or the bundled
    copy. Raises Diverged (with the history so far) if the loss stops being finite.
    """
    module = None
    if isinstance(model, nn.Module):
        if out is not None:
            raise ConfigError(f"out=: a run folder's weights rebuild their model from a name or FILE.py:NAME, "
                              f"and {type(model).__name__} was built in Python: put its class in a file and "
                              f"pass 'file.py:{type(model).__name__}', or leave out= away")
        module = copy.deepcopy(model)
        settings = {"processes": 1, **settings, "model": type(model).__name__}
    elif isinstance(model, str):
        settings = {**settings, "model": absolute(model, Path.cwd())}
    else:
        raise ConfigError(f"fit takes an nn.Module, a registered name or FILE.py:NAME, not {type(model).__name__}")
    cfg = TrainConfig.from_dict(settings)
    if module is not None:
        if cfg.layout:
            raise ConfigError("layout= changes registered models only, not a module built in Python")
        if cfg.dropout >= 0:
            module = with_dropout(module, cfg.dropout, type(model).__name__)
    images = mnist(data)
    events = TrainProgress(cfg.epochs, "validation" if cfg.holdout else "test", quiet=not progress, notebook=True)
    try:
        if out is None:
            result = train(cfg, images, events, module=module)
            return Trained(result.model.cpu().eval(), result.history, cfg, result.mean, result.std, None)
        prepare_folder(Path(out), force)
        source = data if isinstance(data, MNIST) else find_mnist(data)
        record = train_run(cfg, Path(out), images, str(source), events)
    finally:
        events.close()
    weights = load_weights(Path(out) / records.WEIGHTS)
    return Trained(weights.model, record["history"], cfg, weights.meta["mean"], weights.meta["std"], Path(out))


def weights_of(model, data: MNIST | None = None) -> Weights:
    """Weights from anything `evaluate`, `predict` and `export` take. A bare module is taken as
    trained on all 60,000 training images, normalised by their mean and standard deviation."""
    if isinstance(model, Weights):
        return model
    if isinstance(model, Trained):
        return model.weights
    if isinstance(model, nn.Module):
        mean, std = channel_stats((data or load_mnist()).train_images)
        label = type(model).__name__
        return Weights(model.eval(), {"model": label, "mean": mean, "std": std, "channels_last": False}, None)
    if isinstance(model, (str, Path)):
        spec = str(model)
        if is_model_file(spec):
            raise ConfigError(f"{spec} is a model file: train it first (fit, or tinycnn train --model {spec}), "
                              f"then pass the result or its run folder")
        return load_model(spec)
    raise ConfigError(f"expected a fit result, a module, a registered name, a run folder or a weights file, "
                      f"not {type(model).__name__}")


def evaluate(model, data: MNIST | str | Path | None = None) -> Assessment:
    """Test accuracy and loss, per-class accuracy, confusion matrix and every mistake."""
    images = mnist(data)
    return assess(weights_of(model, images), images)


def predict(model, pictures) -> list[dict]:
    """Read digits: `pictures` is one picture or a list, each a file path or an RGBA/gray uint8
    array, prepared as `tinycnn predict` prepares photos. One dict per picture: prediction,
    probabilities (ten floats) and seen (the 28x28 input the model saw)."""
    pictures = pictures if isinstance(pictures, list) else [pictures]
    seen = np.stack([preprocess_file(p) if isinstance(p, (str, Path)) else preprocess_rgba(as_rgba(p))
                     for p in pictures])
    weights = weights_of(model)
    chances = probabilities(weights, seen)
    return [{"prediction": int(p.argmax()), "probabilities": [float(v) for v in p], "seen": s}
            for p, s in zip(chances, seen)]


def as_rgba(picture: np.ndarray) -> np.ndarray:
    """A gray (H, W) or RGB(A) (H, W, 3|4) uint8 array as RGBA."""
    picture = np.asarray(picture)
    if picture.ndim == 2:
        picture = np.repeat(picture[..., None], 3, axis=2)
    if picture.ndim != 3 or picture.shape[2] not in (3, 4) or picture.dtype != np.uint8:
        raise ConfigError(f"a picture must be a uint8 array (H, W), (H, W, 3) or (H, W, 4), not "
                          f"{picture.dtype} {picture.shape}")
    if picture.shape[2] == 3:
        picture = np.concatenate([picture, np.full(picture.shape[:2] + (1,), 255, np.uint8)], axis=2)
    return picture


def export(model, format: str = "onnx", out: str | Path = "export", weights: str = "fp32",
           data: MNIST | str | Path | None = None) -> Exported:
    """Write the model as ONNX, int8 ONNX or C (`weights`: fp32 or int8, for C) into `out`, checked
    on the 10,000 test images as `tinycnn export` checks it; .described is its model.json."""
    images = mnist(data)
    return export_weights(weights_of(model, images), format, Path(out), images, weights)


__all__ = ["Summary", "Trained", "evaluate", "export", "fit", "predict", "summary"]
