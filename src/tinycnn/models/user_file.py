"""A model of your own: `FILE.py:NAME`, where NAME is an nn.Module class or a function returning
one, called without arguments. It takes (N, 1, 28, 28) normalised images and returns (N, 10)
logits or log-probabilities (many course solutions end in log_softmax).

Loading the model imports FILE.py, which runs its code: it is the user's own file, as when they
run it with python. (Weights files hold tensors only, no code.) A path on the command line is
relative to the current folder; in an experiment file, to that file's folder. Every way a spec can
be wrong is one line: a spec, file or name that is not there is bad input (ConfigError, exit 2);
a file whose code fails, or a model that returns the wrong shape, is a bad file (DataError, exit 1).
"""
from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
from pathlib import Path

import torch
from torch import nn

from tinycnn.errors import ConfigError, DataError
from tinycnn.models.blocks import NUM_CLASSES
from tinycnn.models.names import MODEL_FILE


def absolute(spec: str, base: Path) -> str:
    """FILE.py:NAME with FILE made absolute (relative to `base`), so the spec means the same file
    from any folder: what `tinycnn train` and experiment files record."""
    match = MODEL_FILE.match(spec)
    return f"{(Path(base) / match['file']).resolve()}:{match['name']}" if match else spec


def file_sha256(path: str | Path) -> str:
    """What weights record of the model file they were trained with."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__


def import_file(path: Path, spec: str):
    """Import FILE.py as its own module (named by its path, so two files never clash); its folder is
    on sys.path while it imports, so it can import its neighbours as `python FILE.py` would."""
    name = "tinycnn_user_" + hashlib.sha256(str(path).encode()).hexdigest()[:16]
    loader = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(loader)
    sys.path.insert(0, str(path.parent))
    sys.modules[name] = module
    try:
        loader.loader.exec_module(module)
    except Exception as e:  # noqa: BLE001 - whatever the user's code raises is reported, in one line
        del sys.modules[name]
        raise DataError(f"{spec}: importing {path.name} failed: {first_line(e)}") from None
    finally:
        sys.path.remove(str(path.parent))
    return module


def load_model_file(spec: str, base: Path = Path(".")) -> nn.Module:
    """Build NAME from FILE.py and check that it maps (N, 1, 28, 28) images to (N, 10) outputs."""
    match = MODEL_FILE.match(spec)
    if match is None:
        raise ConfigError(f"{spec!r} is not FILE.py:NAME (for example model.py:Net)")
    path = (Path(base) / match["file"]).resolve()
    if not path.is_file():
        raise ConfigError(f"{spec}: no such file {path}")
    module, name = import_file(path, spec), match["name"]
    if not hasattr(module, name):
        found = [n for n, v in vars(module).items() if inspect.isclass(v) and issubclass(v, nn.Module)
                 and v.__module__ == module.__name__]
        raise ConfigError(f"{spec}: {path.name} defines no {name!r}" + (f" (its models: {', '.join(found)})" if found else ""))
    build = getattr(module, name)
    if not callable(build):
        raise ConfigError(f"{spec}: {name} is a {type(build).__name__}, not an nn.Module class or a function returning one")
    try:
        inspect.signature(build).bind()
    except TypeError:
        raise ConfigError(f"{spec}: {name} needs arguments ({name}{inspect.signature(build)}); tinycnn calls it with "
                          f"none: give every argument a default, or add a function that builds it") from None
    except ValueError:  # no signature to inspect (a builtin): calling it tells
        pass
    try:
        model = build()
    except Exception as e:  # noqa: BLE001
        raise DataError(f"{spec}: {name}() failed: {first_line(e)}") from None
    if not isinstance(model, nn.Module):
        raise ConfigError(f"{spec}: {name}() returned a {type(model).__name__}, not an nn.Module")
    check_output(model, spec)
    return model


def check_output(model: nn.Module, spec: str) -> None:
    """Two zero images in, (2, 10) out: what training, evaluation and export rely on."""
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            out = model(torch.zeros(2, 1, 28, 28, device=next(model.parameters(), torch.zeros(())).device))
    except Exception as e:  # noqa: BLE001
        raise DataError(f"{spec}: the model fails on (N, 1, 28, 28) images: {first_line(e)}") from None
    finally:
        model.train(was_training)
    shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
    if shape != (2, NUM_CLASSES):
        raise DataError(f"{spec}: the model returns {shape} for 2 images; tinycnn needs (2, {NUM_CLASSES}): "
                        f"logits or log-probabilities, one row per image")
