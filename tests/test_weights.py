"""Weights files: round trip, the shipped models against their reports, and unfit files refused."""
import json

import pytest
import torch
from conftest import ROOT, call_cli, one_line_error, run_cli
from safetensors.torch import save_file

from tinycnn.evidence.experiment import load_experiment
from tinycnn.evidence.records import read_metrics, seed_path
from tinycnn.models.model import MODELS, build_model
from tinycnn.models.spec import ModelSpec
from tinycnn.ship.inference import assess
from tinycnn.ship.weights import SHIPPED_DIR, load_weights, resolve, save_weights, shipped_weights

SHIPPED = sorted(SHIPPED_DIR.glob("*.safetensors"))


def test_save_and_load_round_trip(tmp_path):
    model = build_model("Model_4").eval()
    save_weights(tmp_path / "w.safetensors", model, ModelSpec("Model_4"), 0.13, 0.31, seed=3)
    loaded = load_weights(tmp_path / "w.safetensors")
    assert loaded.name == "Model_4" and loaded.meta["seed"] == 3 and loaded.meta["mean"] == 0.13
    for a, b in zip(model.state_dict().values(), loaded.model.state_dict().values()):
        assert torch.equal(a, b)
    save_weights(tmp_path / "m3.safetensors", build_model("Model_3"), ModelSpec("Model_3"), 0.13, 0.31)
    assert load_weights(tmp_path / "m3.safetensors").meta["layout"] == ""  # today's Model_3, not the first one


def test_every_experiment_ships_its_first_seed():
    experiments = {p.stem for p in (ROOT / "experiments").glob("*.toml") if not p.stem.endswith("_sweep")}
    assert {p.stem for p in SHIPPED} == experiments
    for name, info in MODELS.items():
        assert resolve(name) == shipped_weights(name) == SHIPPED_DIR / f"{info.experiment}.safetensors"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_a_shipped_model_scores_exactly_its_reported_accuracy(path, mnist):
    exp = load_experiment(ROOT / "experiments" / f"{path.stem}.toml")
    record = read_metrics(seed_path(ROOT / "reports" / exp.name, exp.seeds[0]))
    weights = load_weights(path)
    assert weights.spec.model == exp.train.model and weights.meta["seed"] == exp.seeds[0]
    assert weights.meta["layout"] == exp.train.layout  # step3_wide: written while that layout was Model_3's own
    assert assess(weights, mnist).accuracy == record["history"][-1]["eval_acc"]


def test_evaluate_prints_the_reported_accuracy_of_a_registered_model(tmp_path, capsys):
    record = read_metrics(seed_path(ROOT / "reports" / "step3", 0))
    result = call_cli(capsys, "evaluate", "Model_3", "--json", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    numbers = json.loads(result.stdout)
    assert numbers["accuracy"] == record["history"][-1]["eval_acc"] and len(numbers["per_class"]) == 10
    assert sum(map(sum, numbers["confusion"])) == 10_000
    assert (tmp_path / "confusion.png").stat().st_size > 10_000 and (tmp_path / "misclassified.png").exists()


def unfit(tmp_path, kind):
    path = tmp_path / f"{kind}.safetensors"
    good = shipped_weights("Model_3").read_bytes()
    if kind == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif kind == "not-safetensors":
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(500))
    elif kind == "no-metadata":
        save_file({"x": torch.zeros(3)}, path)
    elif kind == "another-model":  # Model_4's tensors, labelled Model_3
        save_weights(path, build_model("Model_4"), ModelSpec("Model_3"), 0.13, 0.31)
    return path


@pytest.mark.parametrize("kind, message", [
    ("truncated", "not a readable safetensors weights file"),
    ("not-safetensors", "not a readable safetensors weights file"),
    ("no-metadata", "without tinycnn's metadata"),
    ("another-model", "these weights do not fit Model_3"),
])
def test_unfit_weights_are_refused_in_one_line(tmp_path, kind, message):
    line = one_line_error(run_cli("evaluate", unfit(tmp_path, kind)), code=1)
    assert message in line


def test_a_missing_or_unknown_model_is_a_usage_error(tmp_path):
    assert "neither a registered model" in one_line_error(run_cli("evaluate", "Model_99"))
    assert "without model.safetensors" in one_line_error(run_cli("predict", tmp_path, "x.png"))
