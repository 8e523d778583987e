"""Configuration is data: unknown keys, wrong types, NaN and out-of-range values are errors."""
import pytest

from tinycnn.errors import ConfigError
from tinycnn.models.names import check_layout
from tinycnn.train.config import TrainConfig


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
    ({"batch_size": 0}, "batch_size must be between 1 and 60000"),
    ({"rotate": -3.0}, "rotate must be between 0 and 180"),
    ({"dropout": 1.5}, "dropout must be"),
    ({"lr": float("nan")}, "lr must be a finite number"),
    ({"lr": float("inf")}, "lr must be a finite number"),
    ({"momentum": float("nan")}, "momentum must be a finite number"),
    ({"ema": 1.0}, r"ema must be in \[0, 1\)"),
    ({"epochs": 10**6}, "epochs must be between 1 and 1000"),
    ({"holdout": 60_000}, "holdout must be in"),
    ({"seed": -1}, "seed must be in"),
    ({"layout": "c8,x3"}, "bad layout token 'x3'"),
    ({"clean_epochs": -1}, "clean_epochs must be zero or more"),
])
def test_bad_settings_are_errors_naming_the_setting(values, message):
    with pytest.raises(ConfigError, match=message) as error:
        TrainConfig.from_dict(values)
    assert error.value.key == next(iter(values))


def test_integer_where_float_expected_is_accepted():
    assert TrainConfig.from_dict({"lr": 1}).lr == 1.0


def test_layout_grammar():
    assert check_layout("c8, c12p,t8,m") == ["c8", "c12p", "t8", "m"]
    assert check_layout("c14k5,c8pk5,m,s24,s24p") == ["c14k5", "c8pk5", "m", "s24", "s24p"]
    for bad in ("c", "c8k4", "c8k", "s", "sp8", "c8k5p"):
        with pytest.raises(ValueError, match=f"bad layout token '{bad}'"):
            check_layout(f"c8,{bad}")
