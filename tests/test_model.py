"""Registered models: each builds, fits the budget, and the registry refuses silent overwrites."""
import pytest
import torch
from conftest import one_line_error, run_cli

from tinycnn.models.blocks import TinyNet
from tinycnn.models.model import MODELS, build_model, count_parameters, register


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


def test_5x5_and_separable_tokens_build_what_they_say():
    """c6k5: a 5x5 conv block (28 -> 24); c6pk5 pads 2 (size kept); s8: a 3x3 depthwise conv
    (groups = input channels), BN, a 1x1 conv to 8, BN, ReLU (size - 2); s8p pads 1."""
    net = TinyNet("c6k5,c6pk5,m,s8,s10p")
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.kernel_size[0], c.padding[0], c.groups, c.out_channels) for c in convs] == [
        (5, 0, 1, 6), (5, 2, 1, 6), (3, 0, 6, 6), (1, 0, 1, 8), (3, 1, 8, 8), (1, 0, 1, 10), (1, 0, 1, 10)]
    assert [name for name, _ in net.named_children()] == ["conv1", "conv2", "pool1", "sep1", "sep2", "head"]
    weights_and_bn = [25 * 6 + 12, 25 * 36 + 12, 9 * 6 + 12 + 6 * 8 + 16, 9 * 8 + 16 + 8 * 10 + 20, 10 * 10]
    assert count_parameters(net) == sum(weights_and_bn)
    shapes = []
    for block in list(net.children())[:-1]:
        block.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[1:])))
    net.eval()(torch.zeros(1, 1, 28, 28))
    assert shapes == [(6, 24, 24), (6, 24, 24), (6, 12, 12), (8, 10, 10), (10, 10, 10)]


def test_unknown_model_is_a_clear_error():
    for args in (["summary", "Model_99"], ["train", "--model", "Model_99"]):
        line = one_line_error(run_cli(*args))
        assert "unknown model 'Model_99'" in line and "Model_1, Model_2, Model_3" in line
