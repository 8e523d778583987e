"""`pip install` works outside the clone: a wheel built from the checkout's tracked files (in a copy,
so nothing is written into the checkout), installed into a fresh virtual environment that reuses the
installed torch and other dependencies (a path file, not a second download), and used from an
unrelated folder: init, check, summary, evaluate, predict, export and demo find everything they
need inside the installed package (shipped weights, starter project, onnxruntime-web)."""
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from conftest import ROOT
from PIL import Image

from tinycnn.models.model import MODELS

ORT_FILES = ("ort.wasm.bundle.min.mjs", "ort-wasm-simd-threaded.wasm", "ort-wasm-simd-threaded.mjs")
ORT_DIST = ROOT / "node_modules" / "onnxruntime-web" / "dist"
pytestmark = pytest.mark.skipif(not (ORT_DIST / ORT_FILES[0]).is_file() and not os.environ.get("CI"),
                                reason="no node_modules (npm ci; make test does it)")


def checkout_copy(target: Path) -> Path:
    """The tracked files (links kept as links), and onnxruntime-web's three files where npm puts them."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target / name, follow_symlinks=False)
    (target / "node_modules" / "onnxruntime-web" / "dist").mkdir(parents=True)
    for name in ORT_FILES:
        shutil.copyfile(ORT_DIST / name, target / "node_modules" / "onnxruntime-web" / "dist" / name)
    return target


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """bin/ of a fresh environment with the wheel installed."""
    tmp = tmp_path_factory.mktemp("install")
    source = checkout_copy(tmp / "source")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp / "dist"), str(source)], check=True, capture_output=True)
    wheel = next((tmp / "dist").glob("tinycnn-*.whl"))
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp / "env")], check=True)
    python = tmp / "env" / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # torch and the other dependencies from this environment; its editable tinycnn is not on the path
    # (a path file's lines are added as they are: the .pth files in that folder do not run)
    (site / "reuse-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index",
                    str(wheel)], check=True, capture_output=True)
    return tmp / "env" / "bin"


def tinycnn(bin_dir: Path, *args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(bin_dir / "tinycnn"), *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


def test_the_installed_package_is_the_one_that_runs(installed, tmp_path):
    code = "import tinycnn.ship.weights as w; print(w.__file__, w.SHIPPED_DIR)"
    where = subprocess.run([installed / "python", "-c", code], cwd=tmp_path, capture_output=True, text=True,
                           check=True).stdout.split()
    assert all(str(installed.parent) in path for path in where), where  # not the checkout's src/


def test_init_check_evaluate_predict_export_and_demo_from_any_folder(installed, tmp_path, mnist):
    assert tinycnn(installed, "init", "mine", cwd=tmp_path).returncode == 0
    summary = tinycnn(installed, "summary", "model.py:Model_1", cwd=tmp_path / "mine")
    assert summary.returncode == 0 and "covers the whole 28x28 input" in summary.stdout, summary.stderr
    checked = tinycnn(installed, "check", "mine", cwd=tmp_path)
    assert checked.returncode == 1 and "FAIL  texts" in checked.stdout and "PASS  steps" in checked.stdout
    evaluated = tinycnn(installed, "evaluate", "Model_3", "--json", "--out", "ev", cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["accuracy"] > 99.4  # the shipped step-3 weights
    Image.fromarray(mnist.test_images[0]).save(tmp_path / "digit.png")
    predicted = tinycnn(installed, "predict", "Model_3", "digit.png", cwd=tmp_path)
    assert predicted.returncode == 0 and predicted.stdout.startswith("digit.png: 7"), predicted.stderr
    exported = tinycnn(installed, "export", "Model_3", "--format", "onnx", "--out", "ship", cwd=tmp_path)
    assert exported.returncode == 0 and "10,000 of 10,000 predictions equal" in exported.stdout, exported.stderr
    demo = tinycnn(installed, "demo", "--static", "site", cwd=tmp_path)
    assert demo.returncode == 0, demo.stderr
    assert {"ort.bundle.min.js", "ort-wasm-simd-threaded.wasm", "index.html"} <= {p.name for p in (tmp_path / "site").iterdir()}
    models = json.loads((tmp_path / "site" / "models.json").read_text())
    assert [m["name"] for m in models] == list(MODELS)  # the wheel carries every registered model's weights
    assert models[2]["accuracy"] > 99.4 and models[2]["report"] is None  # no reports in a wheel: no link
