"""Experiments: files, where their runs go, seeds in parallel equal to seeds alone, finished seeds kept."""
from pathlib import Path

import pytest
from conftest import ROOT, TINY, one_line_error, run_cli, without_time

from tinycnn.errors import ConfigError
from tinycnn.evidence import records
from tinycnn.evidence.experiment import (
    EpochDone,
    Experiment,
    RunEvents,
    StepsDone,
    default_folder,
    load_experiment,
    load_experiments,
    run_config,
    run_experiment,
    settings_label,
    steps_to_train,
)
from tinycnn.report.experiment_page import validation_block
from tinycnn.train.config import TrainConfig
from tinycnn.train.engine import fit

TINY_EXPERIMENT = """title = "Tiny: a test experiment"
target = "x"
analysis = "y"
seeds = [0, 1]

[train]
""" + "\n".join(f"{k} = {v!r}" for k, v in TINY.items())


def test_committed_experiment_files_load():
    names = [e.name for e in load_experiments(ROOT / "experiments")]
    files = sorted(p.stem for p in (ROOT / "experiments").glob("*.toml") if not p.stem.endswith("_sweep"))
    assert names == files and {"step1", "step2", "step3"} <= set(names)  # every file loads, none is skipped
    for exp in load_experiments(ROOT / "experiments"):
        assert exp.train.epochs <= 15 and exp.target and exp.seeds


@pytest.mark.parametrize("text, message", [
    ('title = "x"\ntarget = "x"\nanalysis = "x"\ncolour = "red"\n[train]\nmodel = "Model_1"\n', "unknown key.*colour"),
    ('title = "x"\ntarget = "x"\nanalysis = "x"\n[train]\nmodle = "Model_1"\n', "unknown key.*modle"),
    ('title = "x"\ntarget = "x"\n[train]\n', "missing key.*analysis"),
    ('title = "x"\ntarget = "x"\nanalysis = "x"\nseeds = [-1]\n[train]\n', "seeds must be"),
    ('title = "x"\ntarget = "x"\nanalysis = "x"\n[train]\nepochs = "15"\n', "epochs must be int"),
    ('title = "x"\ntarget = \n', "not valid TOML"),
])
def test_bad_experiment_files_are_clear_errors(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_experiment(path)
    one_line_error(run_cli("run", path))


def test_where_runs_go(tmp_path):
    """Beside the file's experiments/ folder, in its project's reports/, whatever the working folder."""
    exp = Experiment("step9", "t", "x", "y", TrainConfig(), [0], str(tmp_path / "experiments" / "step9.toml"))
    reports = tmp_path / "reports"
    assert default_folder(exp, run_config(exp, {}, False), False) == reports / "step9"
    tuned = run_config(exp, {"ema": 0.99, "lr": 0.3}, validate=True)
    assert tuned.holdout == 10_000 and settings_label(exp, tuned) == "ema=0.99+lr=0.3"
    assert default_folder(exp, tuned, True) == reports / "validation" / "step9-ema=0.99+lr=0.3"
    assert default_folder(exp, run_config(exp, {}, True), True).name == "step9-as-file"
    with pytest.raises(ConfigError, match="settings differ from .*step9.toml"):
        default_folder(exp, run_config(exp, {"lr": 0.3}, False), False)
    relative = Experiment("step9", "t", "x", "y", TrainConfig(), [0], "experiments/step9.toml")
    assert default_folder(relative, run_config(relative, {}, False), False) == Path("reports") / "step9"


def test_a_default_validation_run_appears_in_the_step_report(tmp_path):
    """The bug this fixes: --validate wrote reports/validation/<name>, the report read <name>-* only."""
    (tmp_path / "experiments").mkdir()
    path = tmp_path / "experiments" / "tiny.toml"
    path.write_text(TINY_EXPERIMENT.replace("seeds = [0, 1]", "seeds = [0]"))
    result = run_cli("run", path, "--validate", "--test-subset", "500", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "seed 0: last 1 validation accuracies:" in result.stdout  # what was scored, named as it is
    block = validation_block(load_experiment(path), tmp_path / "reports")
    assert "| tiny-test_subset=500 | test_subset=500 | 7,696 | 0 |" in block


def test_parallel_seeds_equal_seeds_run_alone(mnist, tmp_path):
    cfg = TrainConfig(**TINY)
    exp = Experiment("tiny", "t", "x", "y", cfg, [0, 1], str(tmp_path / "tiny.toml"))
    found = run_experiment(exp, cfg, [0, 1], tmp_path, workers=2)
    for seed in (0, 1):
        alone = fit(cfg.replace(seed=seed), mnist)
        assert without_time(found[seed]["history"]) == without_time(alone.history)
        assert records.run_status(records.seed_run_folder(tmp_path, seed)) == "complete"
        assert (records.seed_run_folder(tmp_path, seed) / records.WEIGHTS).exists()
    # a second run finds both seeds finished and trains nothing: its progress bar plans no step
    before = {p: p.stat().st_mtime_ns for p in tmp_path.glob("seed*.json")}
    heard = Heard()
    run_experiment(exp, cfg, [0, 1], tmp_path, workers=2, events=heard)
    assert {p: p.stat().st_mtime_ns for p in tmp_path.glob("seed*.json")} == before
    assert heard.plan == (0, []) and heard.messages == []
    # other settings in the same folder are refused unless forced
    with pytest.raises(ConfigError, match="seed 0 trained with other settings \\(lr\\)"):
        run_experiment(exp, cfg.replace(lr=0.3), [0], tmp_path, workers=1)


class Heard(RunEvents):
    def __init__(self):
        self.plan, self.messages = None, []

    def planned(self, steps, seeds):
        self.plan = (steps, seeds)

    def message(self, seed, message):
        self.messages.append((seed, message))


def test_the_progress_bar_counts_exactly_the_steps_left(mnist, tmp_path):
    """A resumed seed plans only its remaining epochs, and the workers' steps add up to the plan."""
    cfg = TrainConfig(**{**TINY, "epochs": 2})  # 2,000 images in batches of 100: 20 steps an epoch
    exp = Experiment("tiny", "t", "x", "y", cfg, [0], str(tmp_path / "tiny.toml"))
    heard = Heard()
    run_experiment(exp, cfg, [0], tmp_path, workers=1, events=heard)
    assert heard.plan == (40, [0])
    assert sum(m.steps for _, m in heard.messages if isinstance(m, StepsDone)) == 40
    assert [m.record["epoch"] for _, m in heard.messages if isinstance(m, EpochDone)] == [1, 2]
    # as if killed after epoch 1: the seed's record gone, its run folder still running with one epoch
    run = records.seed_run_folder(tmp_path, 0)
    metrics = records.read_metrics(run / records.METRICS)
    records.write_metrics(run, {**metrics, "status": "running", "history": metrics["history"][:1]})
    records.seed_path(tmp_path, 0).unlink()
    assert steps_to_train(cfg, tmp_path, [0], mnist, force=False) == 20
    assert steps_to_train(cfg, tmp_path, [0], mnist, force=True) == 40


def test_committed_experiment_files_spell_out_every_setting():
    """A later change of TrainConfig's defaults must not change what a committed experiment claims."""
    import dataclasses
    import tomllib
    settings = {f.name for f in dataclasses.fields(TrainConfig)} - {"seed"}
    shipped = [ROOT / "experiments", ROOT / "examples" / "course" / "experiments", ROOT / "src" / "tinycnn" / "starter" / "experiments"]
    for path in sorted(p for folder in shipped for p in folder.glob("*.toml")):
        if not path.name.endswith("_sweep.toml"):
            missing = settings - set(tomllib.loads(path.read_text())["train"])
            assert not missing, f"{path.name} leaves {sorted(missing)} to the defaults"
