"""`tinycnn demo`: a page where you draw a digit and watch each layer of the network read it.

`build` writes a self-contained static folder: the page (web/), onnxruntime-web (from the npm
lockfile's node_modules, or the wheel's copy), every registered model's shipped weights and any
`--weights` of your own exported to ONNX with each block's output as an extra output (the feature
maps; exported once and kept in the user's cache), models.json (parameters, MACs, reported
accuracy, each block's receptive field), and the reports the page links to. Nothing is fetched
from the internet when it runs. `serve` shows a folder on 127.0.0.1 only.
There is one implementation of the model, PyTorch's, exported; the page's JavaScript computes
the preprocessing (web/preprocess.js, the twin of preprocess.py) and draws.
"""
from __future__ import annotations

import hashlib
import re
import shutil
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path

import torch

from tinycnn.errors import ConfigError
from tinycnn.evidence.experiment import load_experiment
from tinycnn.evidence.facts import load_measured
from tinycnn.files import write_bytes, write_json, write_text
from tinycnn.models import blocks
from tinycnn.models import model as model_module
from tinycnn.models.model import MODELS, count_parameters
from tinycnn.models.tables import count_macs, receptive_field_table
from tinycnn.ship import onnx as exporter
from tinycnn.ship import preprocess
from tinycnn.ship.onnx import Deployable, block_names, onnx_bytes
from tinycnn.ship.weights import REPO_ROOT, Weights, load_weights, shipped_weights
from tinycnn.train.data import default_data_dir

WEB = Path(str(resources.files("tinycnn") / "demo" / "web"))
# onnxruntime-web's files: package data in an installed tinycnn (a wheel built by `make wheel`); in
# the checkout, web/ort is a link to node_modules/onnxruntime-web/dist (from `npm ci`)
ORT = WEB / "ort"
# onnxruntime-web's single-file ES module (wasm backend) is served as .js: every static host
# serves .js as JavaScript, not every one .mjs; it finds its .wasm beside itself.
ORT_FILES = {"ort.wasm.bundle.min.mjs": "ort.bundle.min.js", "ort-wasm-simd-threaded.wasm": "ort-wasm-simd-threaded.wasm",
             "ort-wasm-simd-threaded.mjs": "ort-wasm-simd-threaded.mjs"}
PAGE_FILES = ("index.html", "demo.js", "preprocess.js", "style.css")
# preprocess.py's constants, which its JavaScript twin (web/preprocess.js) imports
PREPROCESS_CONSTANTS = ("BOX", "SIZE", "MAX_SIDE", "MIN_CONTRAST", "BACKGROUND_FITS", "NOISE_DEVIATIONS")


def block_fields(model: torch.nn.Module) -> list[dict]:
    """Each block's output: name, shape (C, H, W) and its receptive field (r, j, start)."""
    rows = receptive_field_table(model)
    with torch.inference_mode():
        outputs = Deployable(model, 0.0, 1.0, feature_maps=True).eval()(torch.zeros(1, 1, 28, 28))[1:]
    fields = []
    for name, output in zip(block_names(model), outputs):
        row = [r for r in rows if r.block == name][-1]  # the block's last spatial layer
        fields.append({"name": name, "shape": list(output.shape[1:]), "r": row.r_out, "j": row.j_out,
                       "start": row.start})
    return fields


def reported(experiment: str, reports_dir: Path, weights: Weights) -> dict:
    """Seed 0's final test accuracy and how many seeds hold the challenge, from the committed records;
    an installed tinycnn has no experiments or reports, only the weights and the accuracy they record."""
    path = REPO_ROOT / "experiments" / f"{experiment}.toml"
    if not path.is_file():
        return {"accuracy": weights.meta.get("eval_acc"), "holding": None, "report": None}
    exp = load_experiment(path)
    measured = load_measured(exp, reports_dir)
    if measured is None:
        return {"accuracy": None, "holding": None, "report": f"reports/{experiment}.md"}
    return {"accuracy": measured.records[exp.seeds[0]]["history"][-1]["eval_acc"],
            "holding": f"{measured.stats.holding}/{len(exp.seeds)}", "report": f"reports/{experiment}.md"}


def build(out: Path, reports_dir: Path = REPO_ROOT / "reports", log=print, own: list[Weights] = ()) -> Path:
    """Write (or bring up to date) the static demo folder, with the shipped models and `own`
    (trained models of your own, added to the picker); returns it."""
    missing = [name for name in ORT_FILES if not (ORT / name).is_file()]
    if missing:
        raise ConfigError(f"onnxruntime-web is not installed ({ORT / missing[0]} is missing): in a clone, run "
                          f"`npm ci` in {REPO_ROOT} (`make demo` does it); a wheel carries it when built by "
                          f"`make wheel`")
    write_page(out)
    for source, target in ORT_FILES.items():
        if not (out / target).exists() or (out / target).stat().st_size != (ORT / source).stat().st_size:
            shutil.copyfile(ORT / source, out / target)
    entries = []
    for name, info in MODELS.items():
        path = shipped_weights(name)
        if not path.is_file():
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        weights = load_weights(path)
        write_bytes(out / "models" / f"{name}.onnx", feature_map_onnx(weights, digest, log))
        entries.append({"name": name, "onnx": f"models/{name}.onnx", "experiment": info.experiment,
                        "summary": info.summary,
                        "params": count_parameters(weights.model), "macs": count_macs(weights.model),
                        "weights_sha256": digest, "blocks": block_fields(weights.model),
                        **reported(info.experiment, reports_dir, weights)})
        copy_report(reports_dir, info.experiment, out)
    if not entries:
        raise ConfigError(f"no shipped weights in {shipped_weights('Model_3').parent}")
    for weights in own:
        entries.append(own_entry(weights, out, log))
    write_json(out / "models.json", entries)
    return out


def feature_map_onnx(weights: Weights, digest: str, log) -> bytes:
    """The model's ONNX with every block's map as an output, exported once per weights and code:
    kept in the user's cache under the weights' SHA-256, the exporting code's (ship/onnx.py,
    models/model.py, models/blocks.py) and torch's version, so a page rebuilt in any folder re-exports only what changed."""
    code = b"".join(Path(module.__file__).read_bytes() for module in (exporter, model_module, blocks))
    key = hashlib.sha256(digest.encode() + torch.__version__.encode() + code).hexdigest()
    cached = default_data_dir() / "demo" / f"{key}.onnx"
    if not cached.is_file():
        log(f"exporting {weights.name} ({weights.path}) with its feature maps")
        write_bytes(cached, onnx_bytes(weights, feature_maps=True))
    return cached.read_bytes()


def own_entry(weights: Weights, out: Path, log) -> dict:
    """A trained model of your own in the picker: its feature maps, receptive fields and the
    accuracy its run recorded (no report: it is your run, not a committed experiment)."""
    digest = hashlib.sha256(Path(weights.path).read_bytes()).hexdigest()
    name = weights.name
    onnx = f"models/own-{re.sub(r'[^A-Za-z0-9_.-]', '-', name)}-{digest[:8]}.onnx"
    write_bytes(out / onnx, feature_map_onnx(weights, digest, log))
    evaluated_on = weights.meta.get("evaluated_on", "test")
    return {"name": name, "onnx": onnx, "experiment": None,
            "summary": f"Your model, {name}, from {weights.path}", "params": count_parameters(weights.model),
            "macs": count_macs(weights.model), "weights_sha256": digest, "blocks": block_fields(weights.model),
            "accuracy": weights.meta.get("eval_acc") if evaluated_on == "test" else None, "holding": None,
            "report": None}


def write_page(out: Path) -> None:
    """The page's own files, and preprocess-constants.js generated from preprocess.py."""
    out.mkdir(parents=True, exist_ok=True)
    for name in PAGE_FILES:
        shutil.copyfile(WEB / name, out / name)
    lines = [f"export const {name} = {getattr(preprocess, name)!r};" for name in PREPROCESS_CONSTANTS]
    write_text(out / "preprocess-constants.js", "// Generated from preprocess.py by `tinycnn demo`: edit that file, not this one.\n"
               + "\n".join(lines) + "\n")


def copy_report(reports_dir: Path, experiment: str, out: Path) -> None:
    """The report a model links to, with its figures, so the link works offline."""
    page = reports_dir / f"{experiment}.md"
    if page.exists():
        (out / "reports" / experiment).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(page, out / "reports" / page.name)
        for figure in (reports_dir / experiment).glob("*.png"):
            shutil.copyfile(figure, out / "reports" / experiment / figure.name)


class Handler(SimpleHTTPRequestHandler):
    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".js": "text/javascript", ".mjs": "text/javascript",
                      ".wasm": "application/wasm", ".md": "text/markdown; charset=utf-8", ".json": "application/json"}

    def log_message(self, format, *args) -> None:  # noqa: A002 - the base class's name
        pass  # a quiet console: the address line is what a user needs


def serve(folder: Path, port: int, announce=print) -> None:
    """Serve `folder` on 127.0.0.1:port (0: any free port) until interrupted."""
    server = ThreadingHTTPServer(("127.0.0.1", port), partial(Handler, directory=str(folder)))
    announce(f"tinycnn demo: http://127.0.0.1:{server.server_port}/  (Ctrl-C stops it)")
    try:
        server.serve_forever()
    finally:
        server.server_close()
