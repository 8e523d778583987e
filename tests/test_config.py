"""Configuration is data: unknown keys and wrong types are errors with clear messages."""
import pytest

from conftest import ROOT, run_cli
from tinycnn.config import ConfigError, TrainConfig, load_experiment


def test_defaults_are_valid_and_round_trip():
    cfg = TrainConfig()
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize("values, message", [
    ({"learning_rate": 0.1}, "unknown key"),
    ({"epochs": "15"}, "epochs must be int"),
    ({"epochs": 1.5}, "epochs must be int"),
    ({"nesterov": 1}, "nesterov must be bool"),
    ({"epochs": True}, "epochs must be int"),
    ({"optimizer": "rmsprop"}, "optimizer must be one of"),
    ({"schedule": "cosine"}, "schedule must be one of"),
    ({"batch_size": 0}, "batch_size must be positive"),
    ({"rotate": -3.0}, "rotate must not be negative"),
    ({"dropout": 1.5}, "dropout must be"),
])
def test_bad_settings_are_errors(values, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_dict(values)


def test_integer_where_float_expected_is_accepted():
    assert TrainConfig.from_dict({"lr": 1}).lr == 1.0


def test_experiment_files_load():
    for name in ("step1", "step2", "step3"):
        exp = load_experiment(ROOT / "experiments" / f"{name}.toml")
        assert exp.seeds == [0, 1, 2, 3, 4] and exp.train.epochs <= 15 and exp.target


def test_unknown_experiment_key_is_an_error(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('title = "x"\ntarget = "x"\nanalysis = "x"\ncolour = "red"\n[train]\nmodel = "Model_1"\n')
    with pytest.raises(ConfigError, match="unknown key.*colour"):
        load_experiment(path)
    path.write_text('title = "x"\ntarget = "x"\nanalysis = "x"\n[train]\nmodle = "Model_1"\n')
    with pytest.raises(ConfigError, match="unknown key.*modle"):
        load_experiment(path)
    result = run_cli("run", str(path))
    assert result.returncode == 2 and "modle" in result.stderr and "Traceback" not in result.stderr


def test_cli_rejects_a_bad_value_without_traceback():
    result = run_cli("train", "--optimizer", "rmsprop")
    assert result.returncode == 2 and "optimizer must be one of" in result.stderr
    assert "Traceback" not in result.stderr
