"""Registered models: each builds, fits the budget, and the registry refuses silent overwrites."""
import pytest
import torch

from conftest import one_line_error, run_cli
from tinycnn.model import MODELS, TinyNet, build_model, count_parameters, register


@pytest.mark.parametrize("name", list(MODELS))
def test_every_registered_model_runs_and_fits_the_budget(name):
    model = build_model(name)
    assert model.eval()(torch.randn(4, 1, 28, 28)).shape == (4, 10)
    assert count_parameters(model) < 8000


@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_names_the_experiment_that_reports_it(name):
    from conftest import ROOT
    info = MODELS[name]
    assert (ROOT / "experiments" / f"{info.experiment}.toml").exists()
    assert info.summary and f"reports/{info.experiment}.md" in info.summary


def test_registering_a_second_model_of_the_same_name_is_an_error():
    with pytest.raises(ValueError, match="registered already"):
        @register("step3")
        def Model_3():  # noqa: N802 - the name is the point
            return TinyNet("c4")
    assert MODELS["Model_3"].experiment == "step3"


def test_layout_strings_build_what_they_say():
    net = TinyNet("c4p,t2,m,c3", dropout=0.1)
    assert net.eval()(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert [name for name, _ in net.named_children()] == ["conv1", "trans1", "pool1", "conv2", "head"]
    with pytest.raises(ValueError, match="bad layout token"):
        TinyNet("c4,x9")


def test_unknown_model_is_a_clear_error():
    for args in (["summary", "Model_9"], ["train", "--model", "Model_9"]):
        line = one_line_error(run_cli(*args))
        assert "unknown model 'Model_9'" in line and "Model_1, Model_2, Model_3" in line
