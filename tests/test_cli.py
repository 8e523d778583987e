"""The command line end to end, as a user runs it: real subprocesses, real files."""
import json
import re

import torch
from conftest import TINY, run_cli

from tinycnn.evidence import records
from tinycnn.models.model import build_model, count_parameters
from tinycnn.ship.weights import load_weights
from tinycnn.train.config import TrainConfig
from tinycnn.train.data import split_for
from tinycnn.train.engine import evaluate, make_loaders


def test_help_answers_and_lists_every_command():
    result = run_cli("--help")
    assert result.returncode == 0
    listed = re.search(r"\{([a-z,-]+)\}", result.stdout).group(1).split(",")  # argparse's {train,run,...}
    assert set(listed) >= {"train", "run", "summary", "report", "bench", "sweep", "evaluate", "predict", "export",
                           "export-check", "demo"}
    for command in listed:  # and each one's own help answers
        assert run_cli(command, "--help").returncode == 0, command


def test_train_writes_a_complete_run_folder(tmp_path, mnist):
    out = tmp_path / "run"
    result = run_cli("train", "--model", "Model_3", "--epochs", "1", "--train-subset", "12000", "--test-subset", "2000",
                     "--batch-size", "64", "--seed", "0", "--out", out)
    assert result.returncode == 0, result.stderr
    assert "epoch  1:" in result.stdout and f"{count_parameters(build_model('Model_3')):,} parameters" in result.stdout
    assert {p.name for p in out.iterdir()} == {"config.json", "metrics.json", "checkpoint.pt", "model.safetensors",
                                               "curves.png"}
    metrics = records.read_metrics(out / "metrics.json")
    assert metrics["status"] == "complete" and metrics["evaluated_on"] == "test"
    assert metrics["data"].startswith("the bundled MNIST copy")
    (epoch,) = metrics["history"]
    # chance is 10%; a pipeline with broken labels, normalisation or gradients stays far below this
    assert epoch["eval_acc"] > 90.0, epoch
    assert set(epoch) == {"epoch", "train_loss", "train_acc", "eval_loss", "eval_acc", "lr", "seconds"}
    assert len(metrics["misclassified"]) == round(2000 * (1 - epoch["eval_acc"] / 100))
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=True)
    assert {"model", "optimizer", "scheduler", "rng", "history", "config"} <= set(checkpoint)
    # the saved weights are the evaluated model: they score exactly what the metrics say
    weights = load_weights(out / "model.safetensors")
    cfg = TrainConfig.from_dict(json.loads((out / "config.json").read_text()))
    loaders = make_loaders(cfg, mnist, torch.device("cpu"))
    assert weights.meta["mean"] == loaders.mean and weights.meta["eval_acc"] == epoch["eval_acc"]
    assert evaluate(weights.model, loaders.eval)["acc"] == epoch["eval_acc"]
    assert len(split_for(cfg, mnist)[2]) == 2000


def test_summary_writes_markdown(tmp_path):
    result = run_cli("summary", "Model_4", "--markdown", tmp_path / "m4.md")
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "m4.md").read_text()
    assert text.startswith("# Model_4\n\n**Parameters** (3,702") and "r_out" in text


def test_run_trains_seeds_and_prints_their_scores(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text('title = "Tiny: t"\ntarget = "x"\nanalysis = "y"\nseeds = [3]\n[train]\n'
                    + "\n".join(f"{k} = {v!r}" for k, v in TINY.items()))
    result = run_cli("run", path, "--out", tmp_path / "out", "--workers", "1")
    assert result.returncode == 0, result.stderr
    assert "seed 3: last 1 test accuracies:" in result.stdout
    assert records.read_experiment_run(tmp_path / "out").seeds == [3]


def test_a_report_run_ships_its_first_seed_even_when_its_page_must_wait(tmp_path):
    """`tinycnn run` into reports/<name>/ writes weights/<name>.safetensors from the first seed; a page
    whose text quotes an experiment without metrics yet is written later by `tinycnn report`."""
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "tiny.toml").write_text(
        'title = "Tiny: t"\ntarget = "as big as {elsewhere_params}"\nanalysis = "y"\nseeds = [0]\n[train]\n'
        + "\n".join(f"{k} = {v!r}" for k, v in TINY.items()))
    result = run_cli("run", "experiments/tiny.toml", "--workers", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "report not written yet" in result.stdout and "no fact {elsewhere_params}" in result.stdout
    shipped = tmp_path / "weights" / "tiny.safetensors"
    assert shipped.read_bytes() == (tmp_path / "reports" / "tiny" / "seed0" / "model.safetensors").read_bytes()
