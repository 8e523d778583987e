"""The Python API as a notebook uses it: docs/api.md's example run as written (shorter), a module
built in Python trained on a copy, run folders through the API, and its errors."""
import numpy as np
import pytest
import torch
from conftest import ROOT
from PIL import Image
from test_model_file import doc_block
from torch import nn

from tinycnn import api, evaluate, export, fit, predict, summary
from tinycnn.errors import ConfigError
from tinycnn.models.model import count_parameters

SHORT = dict(epochs=1, train_subset=6000, test_subset=1000, batch_size=64, ema=0.0, lr=0.05, schedule="none")


class Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(8, 16, 3), nn.BatchNorm2d(16), nn.ReLU(), nn.Dropout(0.1))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))

    def forward(self, x):
        return self.head(self.features(x))


def test_the_readme_python_example_runs_as_written(mnist, tmp_path, monkeypatch):
    """Executed as written, but for the run's length (epochs=15 becomes one short epoch)."""
    code = doc_block("api.md", "python")
    assert "epochs=15" in code
    monkeypatch.chdir(tmp_path)
    Image.fromarray(mnist.test_images[0]).save("digit.png")
    namespace = {}
    exec(code.replace("epochs=15", "epochs=1, train_subset=3000, test_subset=1000"), namespace)  # noqa: S102
    trained = namespace["trained"]
    assert len(trained.history) == 1 and trained.scored == [trained.history[0]["eval_acc"]]
    assert {"train_loss", "train_acc", "eval_loss", "eval_acc", "lr", "seconds"} <= set(trained.history[0])
    assert (tmp_path / "ship" / "tinycnn_model.c").is_file()
    assert namespace["figure"].axes  # the curves, drawn without pyplot


def test_fit_trains_a_copy_of_a_module_and_everything_takes_the_result(mnist, tmp_path):
    torch.manual_seed(0)
    module = Small()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    trained = fit(module, data=mnist, progress=False, **SHORT)
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())  # the caller's module is as it was
    assert trained.model is not module and trained.config.model == "Small"
    assessed = evaluate(trained, mnist)
    assert assessed.accuracy > 20 and assessed.confusion.sum() == 10_000  # it learnt (chance: 10%)
    read = predict(trained, [mnist.test_images[0], np.stack([mnist.test_images[1]] * 3, axis=2)])
    assert [r["seen"].shape for r in read] == [(28, 28)] * 2
    assert sum(read[0]["probabilities"]) == pytest.approx(1, abs=1e-5)
    exported = export(trained, "c", tmp_path / "c", data=mnist)
    assert exported.agreement.predictions_equal_to_pytorch == 10_000
    assert exported.agreement.test_accuracy == pytest.approx(assessed.accuracy)
    onnx = export(trained, "onnx", tmp_path / "onnx", data=mnist)  # trained channels_last: exported all the same
    assert onnx.agreement.predictions_equal_to_pytorch == 10_000
    # the same seed, the same start: the same numbers
    torch.manual_seed(0)
    again = fit(Small(), data=mnist, progress=False, **SHORT)
    assert [r["eval_acc"] for r in again.history] == [r["eval_acc"] for r in trained.history]


def test_fit_with_a_run_folder_is_tinycnn_train(mnist, tmp_path, monkeypatch):
    (tmp_path / "model.py").write_text((ROOT / "examples" / "course" / "model.py").read_text())
    monkeypatch.chdir(tmp_path)
    whole_test_set = {**SHORT, "test_subset": 0}  # so the run's last accuracy is evaluate's
    trained = fit("model.py:Model6", data=mnist, out=tmp_path / "run", progress=False, **whole_test_set)
    assert (tmp_path / "run" / "model.safetensors").is_file() and (tmp_path / "run" / "checkpoint.pt").is_file()
    assert evaluate(str(tmp_path / "run"), mnist).accuracy == trained.history[-1]["eval_acc"] == \
        evaluate(trained, mnist).accuracy
    table = summary("model.py:Model6")
    assert table.params == count_parameters(trained.model) == 7_422 and table.receptive_field[-1].r_out == 32
    assert "| convblock6.0 Conv2d |" in table._repr_markdown_() and "Total params: 7,422" in str(table)


def test_the_api_refuses_in_one_line(mnist, tmp_path):
    with pytest.raises(ConfigError, match="put its class in a file"):
        fit(Small(), data=mnist, out=tmp_path / "run", **SHORT)
    with pytest.raises(ConfigError, match="has no dropout layer"):
        fit(nn.Sequential(nn.Conv2d(1, 10, 28), nn.Flatten()), data=mnist, dropout=0.2, progress=False, **SHORT)
    with pytest.raises(ConfigError, match="epochs"):
        fit(Small(), data=mnist, epochs=0)
    with pytest.raises(ConfigError, match="not int"):
        summary(3)


def test_importing_tinycnn_leaves_matplotlib_alone():
    """A notebook keeps its inline plots: nothing in tinycnn selects a backend or touches pyplot."""
    import subprocess
    import sys
    code = ("import matplotlib; matplotlib.use('svg'); import tinycnn.api, tinycnn.report, tinycnn.cli.training, tinycnn.cli.models, "
            "tinycnn.cli.shipping, tinycnn.cli.evidence; "
            "import sys; assert matplotlib.get_backend() == 'svg', matplotlib.get_backend(); "
            "assert 'matplotlib.pyplot' not in sys.modules")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).returncode == 0
    assert api.__all__
