"""Named recipes (train/recipes.py): each is what its experiment file trains, and the command
line takes them by name, a tiny run of each through `tinycnn train --recipe`."""
import json

import pytest
from conftest import ROOT, run_cli

from tinycnn.errors import ConfigError
from tinycnn.evidence.experiment import load_experiment
from tinycnn.evidence.grading.rerun import read_recipe
from tinycnn.train.recipes import RECIPES, recipe


@pytest.mark.parametrize("name", list(RECIPES))
def test_each_recipe_is_its_experiment_files_settings(name):
    assert recipe(name) == load_experiment(ROOT / "experiments" / f"{name}.toml").train.replace(seed=0)


def test_a_class_rerun_takes_a_recipe_by_name_without_its_model():
    settings = read_recipe("step3_wide")
    assert "model" not in settings and "layout" not in settings and "seed" not in settings
    assert settings["processes"] == recipe("step3_wide").processes and settings["epochs"] == recipe("step3_wide").epochs
    assert read_recipe("step3") == read_recipe("fast") == {}  # the defaults (fast: under Model_9's name)
    with pytest.raises(ConfigError, match=r"--recipe fastest: neither a recipe file nor a named recipe \(step3, step3_wide, fast\)"):
        read_recipe("fastest")


def test_train_starts_from_a_recipe_and_options_override_it(tmp_path, mnist):
    out = tmp_path / "run"
    result = run_cli("train", "--recipe", "fast", "--epochs", "1", "--train-subset", "1280", "--test-subset", "500",
                     "--quiet", "--out", out)
    assert result.returncode == 0, result.stderr
    config = json.loads((out / "config.json").read_text())
    assert config == {**recipe("fast").to_dict(), "epochs": 1, "train_subset": 1280, "test_subset": 500}
    assert "2 processes of 1 thread(s)" in json.loads((out / "metrics.json").read_text())["machine"]


def test_an_unknown_recipe_or_one_given_with_resume_is_one_line(tmp_path):
    result = run_cli("train", "--recipe", "fastest", "--out", tmp_path / "run")
    assert result.returncode == 2 and result.stderr.strip() == (
        "tinycnn: error: unknown recipe 'fastest'; known recipes: step3, step3_wide, fast")
    assert not (tmp_path / "run").exists()
    result = run_cli("train", "--resume", tmp_path / "nothing", "--recipe", "fast")
    assert result.returncode == 2 and "drop --recipe" in result.stderr and len(result.stderr.splitlines()) == 1
