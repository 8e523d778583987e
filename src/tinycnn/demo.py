"""`tinycnn demo`: a page where you draw a digit and watch each layer of the network read it.

`build` writes a self-contained static folder: the page (web/), onnxruntime-web (from the npm
lockfile's node_modules), every registered model's shipped weights exported to ONNX with each
block's output as an extra output (the feature maps), models.json (parameters, MACs, reported
accuracy, each block's receptive field), and the reports the page links to. Nothing is fetched
from the internet when it runs. `serve` shows a folder on 127.0.0.1 only.
There is one implementation of the model, PyTorch's, exported; the page's JavaScript computes
the preprocessing (web/preprocess.js, the twin of preprocess.py) and draws.
"""
from __future__ import annotations

import hashlib
import shutil
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import torch

from . import preprocess
from .analysis import count_macs, receptive_field_table
from .errors import ConfigError
from .experiment import load_experiment
from .export import Deployable, block_names, onnx_bytes
from .files import read_json, write_bytes, write_json, write_text
from .model import MODELS, count_parameters
from .report.facts import load_measured
from .weights import REPO_ROOT, load_weights, shipped_weights

WEB = Path(__file__).with_name("web")
ORT = REPO_ROOT / "node_modules" / "onnxruntime-web" / "dist"
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


def reported(experiment: str, reports_dir: Path) -> dict:
    """Seed 0's final test accuracy and how many seeds hold the challenge, from the committed records."""
    exp = load_experiment(REPO_ROOT / "experiments" / f"{experiment}.toml")
    measured = load_measured(exp, reports_dir)
    if measured is None:
        return {"accuracy": None, "holding": None, "report": f"reports/{experiment}.md"}
    return {"accuracy": measured.records[exp.seeds[0]]["history"][-1]["eval_acc"],
            "holding": f"{measured.stats.holding}/{len(exp.seeds)}", "report": f"reports/{experiment}.md"}


def build(out: Path, reports_dir: Path = REPO_ROOT / "reports", log=print) -> Path:
    """Write (or bring up to date) the static demo folder; returns it."""
    missing = [name for name in ORT_FILES if not (ORT / name).is_file()]
    if missing:
        raise ConfigError(f"onnxruntime-web is not installed ({ORT / missing[0]} is missing): run `npm ci` in "
                          f"{REPO_ROOT} (`make demo` does it)")
    write_page(out)
    for source, target in ORT_FILES.items():
        if not (out / target).exists() or (out / target).stat().st_size != (ORT / source).stat().st_size:
            shutil.copyfile(ORT / source, out / target)
    before = {m["name"]: m for m in read_json(out / "models.json")} if (out / "models.json").exists() else {}
    entries = []
    for name, info in MODELS.items():
        path = shipped_weights(name)
        if not path.is_file():
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        weights = load_weights(path)
        if before.get(name, {}).get("weights_sha256") != digest or not (out / "models" / f"{name}.onnx").exists():
            log(f"exporting {name} ({path.name}) with its feature maps")
            write_bytes(out / "models" / f"{name}.onnx", onnx_bytes(weights, feature_maps=True))
        entries.append({"name": name, "experiment": info.experiment, "summary": info.summary,
                        "params": count_parameters(weights.model), "macs": count_macs(weights.model),
                        "weights_sha256": digest, "blocks": block_fields(weights.model),
                        **reported(info.experiment, reports_dir)})
        copy_report(reports_dir, info.experiment, out)
    if not entries:
        raise ConfigError(f"no shipped weights in {shipped_weights('Model_3').parent}")
    write_json(out / "models.json", entries)
    return out


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
