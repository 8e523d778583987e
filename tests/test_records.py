"""Run records on disk: one format, old records upgraded on read, damaged files refused clearly."""
import json

import pytest
import torch

from tinycnn.errors import DataError
from tinycnn.evidence import records
from tinycnn.models.model import FIRST_STEP3, build_model
from tinycnn.train.config import TrainConfig


def test_a_format_1_record_reads_as_format_3(tmp_path):
    """The first records called validation accuracy test_acc and predate the `ema` setting."""
    old = {"config": {**TrainConfig(holdout=10_000).to_dict()}, "params": 7712, "wall_seconds": 3.0,
           "history": [{"epoch": 1, "train_loss": 0.3, "train_acc": 90.0, "test_loss": 0.1, "test_acc": 97.0,
                        "lr": 0.01, "seconds": 3.0}], "misclassified": [], "machine": "m"}
    del old["config"]["ema"]
    (tmp_path / "seed0.json").write_text(json.dumps(old))
    record = records.read_metrics(tmp_path / "seed0.json")
    assert record["format"] == 3 and record["status"] == "complete" and record["evaluated_on"] == "validation"
    assert record["history"][0]["eval_acc"] == 97.0 and "test_acc" not in record["history"][0]
    assert record["config"]["ema"] == 0.0  # what format-1 runs did, not today's default


def test_model_3_in_a_record_from_before_step_3_changed_layout_means_the_first_layout(tmp_path):
    """Records of formats 1 and 2 were written while Model_3 was step 3's first layout; a format-3
    record's Model_3 is the layout of today, and a layout given in any record stays what it was."""
    def read(format, model="Model_3", layout=""):
        config = {**TrainConfig(model=model, layout=layout).to_dict()}
        path = tmp_path / f"{format}-{model}-{layout}.json"
        path.write_text(json.dumps({"format": format, "config": config, "params": 1, "history": []}))
        return records.read_metrics(path)["config"]
    assert read(2)["layout"] == FIRST_STEP3 == "c8,c12,t8,m,c16,c16,c20"
    assert read(3)["layout"] == "" and read(2, "Model_1")["layout"] == "" and read(2, layout="c8,m")["layout"] == "c8,m"
    assert build_model("Model_3", layout=read(2)["layout"]).state_dict().keys() != build_model("Model_3").state_dict().keys()
    run = records.ExperimentRun("experiments/x.toml", [0], TrainConfig().to_dict(), 1.0, 1, [0])
    records.write_experiment_run(tmp_path, run)  # written today: format 3
    assert records.read_experiment_run(tmp_path).config["layout"] == ""
    old = {k: v for k, v in json.loads((tmp_path / records.EXPERIMENT).read_text()).items() if k != "format"}
    (tmp_path / records.EXPERIMENT).write_text(json.dumps(old))
    assert records.read_experiment_run(tmp_path).config["layout"] == FIRST_STEP3
    records.save_checkpoint(tmp_path, {"config": TrainConfig().to_dict()})  # a run stopped today resumes as it was
    assert records.load_checkpoint(tmp_path)["config"]["layout"] == ""
    torch.save({"config": TrainConfig().to_dict()}, tmp_path / records.CHECKPOINT)  # one stopped before the change
    assert records.load_checkpoint(tmp_path)["config"]["layout"] == FIRST_STEP3


def test_new_records_round_trip(tmp_path):
    cfg = TrainConfig(seed=3)
    history = [{"epoch": 1, "train_loss": 0.3, "train_acc": 90.0, "eval_loss": 0.1, "eval_acc": 97.0, "lr": 0.01,
                "seconds": 3.0}]
    record = records.metrics_record(cfg, history, params=7712, mean=0.13, std=0.31, wall_seconds=3.0, machine="m",
                                    data="IDX files in x", misclassified=[[4, 7, 1]])
    records.write_seed(tmp_path, 3, record)
    assert records.read_seeds(tmp_path, [3]) == {3: record}
    assert records.read_seeds(tmp_path, [3, 4]) is None  # not every seed is there yet
    assert not list(tmp_path.glob(".*"))  # written through a temporary name, nothing left over


def test_run_status_follows_the_files(tmp_path):
    assert records.run_status(tmp_path) is None and not records.holds_a_run(tmp_path)
    records.save_checkpoint(tmp_path, {"config": TrainConfig().to_dict(), "epoch": 1})
    assert records.run_status(tmp_path) == "running" and records.holds_a_run(tmp_path)
    assert records.load_checkpoint(tmp_path)["epoch"] == 1


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_a_damaged_checkpoint_is_refused_in_one_line(tmp_path, damage):
    records.save_checkpoint(tmp_path, {"config": TrainConfig().to_dict(), "epoch": 1, "w": torch.zeros(1000)})
    path = tmp_path / records.CHECKPOINT
    blob = path.read_bytes()
    path.write_bytes({"truncate": blob[: len(blob) // 2], "garbage": b"\x00not a checkpoint" * 50, "empty": b""}[damage])
    with pytest.raises(DataError, match="damaged or not a tinycnn checkpoint") as error:
        records.load_checkpoint(tmp_path)
    assert "\n" not in str(error.value)


def test_a_checkpoint_with_code_in_it_is_refused(tmp_path):
    """weights_only loading: a pickle that would run code is not a checkpoint."""
    class Evil:
        def __reduce__(self):
            return (print, ("this must never run",))
    torch.save({"config": TrainConfig().to_dict(), "evil": Evil()}, tmp_path / records.CHECKPOINT)
    with pytest.raises(DataError, match="damaged or not a tinycnn checkpoint"):
        records.load_checkpoint(tmp_path)
