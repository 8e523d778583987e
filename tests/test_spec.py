"""ModelSpec: a model named by registered name, layout or FILE.py:NAME is read once, labelled by
what it builds, and carried that way into the run and its weights."""

import pytest
from conftest import ROOT

from tinycnn.cli.main import main
from tinycnn.errors import ConfigError, UnknownModelError
from tinycnn.models.model import count_parameters
from tinycnn.models.spec import ModelSpec
from tinycnn.ship.weights import load_model
from tinycnn.train.config import TrainConfig

COURSE = ROOT / "examples" / "course"


def test_each_kind_of_name_is_labelled_by_what_it_builds():
    registered, layout = ModelSpec("Model_3"), ModelSpec.of(TrainConfig(model="Model_3", layout="c6, c8,m,c10"))
    own = ModelSpec("model.py:Model6").resolved(COURSE)
    assert (registered.label, registered.slug, registered.portable) == ("Model_3", "Model_3", "Model_3")
    assert (layout.label, layout.slug, layout.portable) == ("TinyNet(c6,c8,m,c10)", "TinyNet-c6-c8-m-c10", "Model_3")
    assert (own.label, own.slug, own.name, own.file) == ("model.py:Model6", "Model6", "Model6", COURSE / "model.py")
    assert count_parameters(registered.build()) == 7_696 and count_parameters(layout.build()) == 1_354
    assert own.sha256() == __import__("hashlib").sha256((COURSE / "model.py").read_bytes()).hexdigest()
    assert registered.sha256() is None and count_parameters(own.build()) == 7_422


def test_what_cannot_be_built_is_refused_in_one_line():
    with pytest.raises(UnknownModelError):
        ModelSpec("Model_99").build()
    with pytest.raises(ConfigError, match="--layout changes registered models only, not model.py:Model6"):
        ModelSpec("model.py:Model6", layout="c8,m").resolved(COURSE).build()


def test_a_layout_run_and_its_weights_are_labelled_by_the_layout(mnist, tmp_path, capsys):
    """`tinycnn train --layout` once named its run and `evaluate` its result after the default
    Model_3 (7,712 parameters then) while it trained 1,354: both now say what was trained."""
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--layout",
                "c6,c8,m,c10",
                "--epochs",
                "1",
                "--train-subset",
                "640",
                "--test-subset",
                "500",
                "--quiet",
                "--out",
                str(run),
            ]
        )
        == 0
    )
    assert "TinyNet(c6,c8,m,c10): 1,354 parameters" in capsys.readouterr().out
    assert load_model(str(run)).name == "TinyNet(c6,c8,m,c10)"
    assert main(["evaluate", str(run), "--out", str(tmp_path / "evaluated")]) == 0
    assert capsys.readouterr().out.startswith(f"TinyNet(c6,c8,m,c10) ({run / 'model.safetensors'}): test accuracy")
