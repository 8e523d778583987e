"""Committed reports, plots and the README table are exactly what the committed metrics give."""
import inspect
from pathlib import Path

import pytest

from conftest import ROOT
from tinycnn.config import TrainConfig, load_experiment
from tinycnn.model import MODELS
from tinycnn.report import load_experiments, load_step_stats, result_line, write_all

STEPS = ["step1", "step2", "step3"]
# Beyond the challenge: experiments whose model has its own docstring (skeleton reuses Model_1).
BEYOND = ["frontier", "ladder"]


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory, data_dir):
    out = tmp_path_factory.mktemp("regenerated")
    write_all(ROOT / "experiments", ROOT / "reports", ROOT / "README.md", data_dir=data_dir, out_dir=out)
    return out


@pytest.mark.parametrize("step", STEPS + BEYOND + ["skeleton"])
def test_step_metrics_are_committed_for_every_seed(step):
    exp = load_experiment(ROOT / "experiments" / f"{step}.toml")
    assert load_step_stats(exp, ROOT / "reports") is not None, f"reports/{step}/seed*.json missing"


def test_every_report_and_plot_regenerates_byte_for_byte(regenerated):
    files = sorted(p.relative_to(regenerated) for p in regenerated.rglob("*") if p.is_file())
    assert {f"{step}.md" for step in STEPS} <= {str(f) for f in files}
    for name in files:
        committed = ROOT / ("README.md" if str(name) == "README.md" else Path("reports") / name)
        assert committed.exists(), f"{committed} is generated but not committed"
        assert (regenerated / name).read_bytes() == committed.read_bytes(), f"{committed} differs from what the data give"


def test_readme_results_table_matches_the_metrics(regenerated):
    assert (regenerated / "README.md").read_text() == (ROOT / "README.md").read_text()


@pytest.mark.parametrize("step", STEPS + BEYOND)
def test_model_docstring_result_matches_the_report(step):
    exp = load_experiment(ROOT / "experiments" / f"{step}.toml")
    stats = load_step_stats(exp, ROOT / "reports")
    doc = inspect.getdoc(MODELS[exp.train.model])
    assert result_line(stats) in " ".join(doc.split()), f"{exp.train.model} docstring: expected {result_line(stats)!r}"


def test_step3_meets_the_challenge_on_every_seed():
    exp = load_experiment(ROOT / "experiments" / "step3.toml")
    stats = load_step_stats(exp, ROOT / "reports")
    assert stats.params < 8000 and stats.epochs <= 15
    assert stats.passing == len(exp.seeds) == 5, [s.last for s in stats.seeds]


def test_train_defaults_are_the_final_step_settings():
    """`make train` (tinycnn train with defaults) trains exactly what step 3 reports."""
    step3 = load_experiment(ROOT / "experiments" / "step3.toml").train
    assert TrainConfig() == step3


def test_every_experiment_has_written_analysis():
    for exp in load_experiments(ROOT / "experiments"):
        assert "written once the runs are in" not in exp.analysis and len(exp.analysis) > 200, exp.name
