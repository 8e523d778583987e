"""A model of your own, FILE.py:NAME: a course-style model file through summary (its RF table
against one worked by hand), train, evaluate, predict and export; log_softmax against logits; and
every way a spec, or a moved or edited model file, can be wrong, one line each."""
import json
import shutil

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from conftest import one_line_error, run_cli
from tinycnn import records
from tinycnn.analysis import count_macs, receptive_field_table
from tinycnn.model import count_parameters
from tinycnn.model_file import load_model_file
from tinycnn.weights import load_weights

# As students write it: plain PyTorch, ReLU before BatchNorm, dropout, AvgPool2d as GAP, a 1x1
# head, view and log_softmax at the end, and the notebook's imports at the top.
COURSE_MODEL = '''
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm
import matplotlib.pyplot as plt

dropout_value = 0.1


class Model6(nn.Module):
    def __init__(self):
        super().__init__()
        self.convblock1 = nn.Sequential(nn.Conv2d(1, 10, 3, padding=0, bias=False), nn.ReLU(),
                                        nn.BatchNorm2d(10), nn.Dropout(dropout_value))
        self.convblock2 = nn.Sequential(nn.Conv2d(10, 16, 3, padding=0, bias=False), nn.ReLU(),
                                        nn.BatchNorm2d(16), nn.Dropout(dropout_value))
        self.convblock3 = nn.Sequential(nn.Conv2d(16, 10, 1, padding=0, bias=False))
        self.pool1 = nn.MaxPool2d(2, 2)
        self.convblock4 = nn.Sequential(nn.Conv2d(10, 16, 3, padding=0, bias=False), nn.ReLU(),
                                        nn.BatchNorm2d(16), nn.Dropout(dropout_value))
        self.convblock5 = nn.Sequential(nn.Conv2d(16, 16, 3, padding=0, bias=False), nn.ReLU(),
                                        nn.BatchNorm2d(16), nn.Dropout(dropout_value))
        self.convblock6 = nn.Sequential(nn.Conv2d(16, 12, 3, padding=1, bias=False), nn.ReLU(),
                                        nn.BatchNorm2d(12), nn.Dropout(dropout_value))
        self.gap = nn.Sequential(nn.AvgPool2d(kernel_size=8))
        self.convblock7 = nn.Sequential(nn.Conv2d(12, 10, 1, padding=0, bias=False))

    def forward(self, x):
        x = self.convblock1(x)
        x = self.convblock2(x)
        x = self.convblock3(x)
        x = self.pool1(x)
        x = self.convblock4(x)
        x = self.convblock5(x)
        x = self.convblock6(x)
        x = self.gap(x)
        x = self.convblock7(x)
        x = x.view(-1, 10)
        return F.log_softmax(x, dim=-1)


def small():
    return nn.Sequential(nn.Conv2d(1, 10, 28), nn.Flatten())


class NeedsWidth(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.conv = nn.Conv2d(1, width, 28)


class Maps(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 10, 3)

    def forward(self, x):
        return self.conv(x)
'''

# Worked by hand: (layer, kernel, stride, padding, n_in, n_out, j_in, j_out, r_in, r_out, start)
COURSE_RF = [
    ("convblock1.0 Conv2d", 3, 1, 0, 28, 26, 1, 1, 1, 3, 1.0),
    ("convblock2.0 Conv2d", 3, 1, 0, 26, 24, 1, 1, 3, 5, 2.0),
    ("convblock3.0 Conv2d", 1, 1, 0, 24, 24, 1, 1, 5, 5, 2.0),
    ("pool1 MaxPool2d", 2, 2, 0, 24, 12, 1, 2, 5, 6, 2.5),
    ("convblock4.0 Conv2d", 3, 1, 0, 12, 10, 2, 2, 6, 10, 4.5),
    ("convblock5.0 Conv2d", 3, 1, 0, 10, 8, 2, 2, 10, 14, 6.5),
    ("convblock6.0 Conv2d", 3, 1, 1, 8, 8, 2, 2, 14, 18, 6.5),
    ("gap.0 AvgPool2d", 8, 8, 0, 8, 1, 2, 16, 18, 32, 13.5),
    ("convblock7.0 Conv2d", 1, 1, 0, 1, 1, 16, 16, 32, 32, 13.5),
]


@pytest.fixture
def course(tmp_path):
    (tmp_path / "model.py").write_text(COURSE_MODEL)
    return tmp_path


def test_a_course_model_file_loads_with_its_hand_worked_rf_table(course):
    model = load_model_file("model.py:Model6", course)
    rows = [(r.layer, r.kernel, r.stride, r.padding, r.n_in, r.n_out, r.j_in, r.j_out, r.r_in, r.r_out, r.start)
            for r in receptive_field_table(model)[1:]]
    assert rows == COURSE_RF
    # 90 + 1,440 + 160 + 1,440 + 2,304 + 1,728 + 120 conv weights, 2 per BatchNorm channel (10+16+16+16+12)
    assert count_parameters(model) == 7_422
    assert count_macs(model) == 26 * 26 * 10 * 9 + 24 * 24 * 16 * 90 + 24 * 24 * 10 * 16 + 10 * 10 * 16 * 90 \
        + 8 * 8 * 16 * 144 + 8 * 8 * 12 * 144 + 10 * 12
    assert count_parameters(load_model_file("model.py:small", course)) == 7_850  # a function returning a module


def test_summary_of_a_model_file_on_the_command_line(course):
    result = run_cli("summary", "model.py:Model6", cwd=course)
    assert result.returncode == 0, result.stderr
    assert "Total params: 7,422" in result.stdout and "convblock6.0 Conv2d" in result.stdout
    assert "final RF: 32 px, which covers the whole 28x28 input" in result.stdout


@pytest.mark.parametrize("spec, code, says", [
    ("missing.py:Net", 2, "missing.py:Net: no such file"),
    ("model.py:Model7", 2, "model.py defines no 'Model7' (its models: Model6, NeedsWidth, Maps)"),
    ("model.py:dropout_value", 2, "dropout_value is a float, not an nn.Module class or a function returning one"),
    ("model.py:NeedsWidth", 2, "NeedsWidth needs arguments (NeedsWidth(width))"),
    ("model.py:Maps", 1, "the model returns (2, 10, 26, 26) for 2 images; tinycnn needs (2, 10)"),
    ("broken.py:Net", 1, "importing broken.py failed: RuntimeError: no GPU here"),
    ("model.py", 2, "unknown model 'model.py'"),
])
def test_every_bad_spec_is_one_line(course, spec, code, says):
    (course / "broken.py").write_text("import torch\nraise RuntimeError('no GPU here')\n")
    line = one_line_error(run_cli("summary", spec, cwd=course), code=code)
    assert says in line, line


# One short real run of the course model: 2,000 training images, evaluated on all 10,000 test images,
# so `evaluate` on its folder must give exactly the run's own last accuracy.
SHORT = ["--epochs", "1", "--train-subset", "2000", "--batch-size", "100", "--lr", "0.05", "--schedule", "none"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("course")
    (folder / "model.py").write_text(COURSE_MODEL)
    result = run_cli("train", "--model", "model.py:Model6", *SHORT, "--out", "run", "--quiet", cwd=folder)
    assert result.returncode == 0, result.stderr
    assert "model.py:Model6: 7,422 parameters, 1,384,608 MACs per image" in result.stdout
    return folder


def test_a_trained_model_file_is_evaluated_predicted_and_exported_from_any_folder(trained, mnist, tmp_path):
    run = trained / "run"
    last = records.read_metrics(run / records.METRICS)["history"][-1]["eval_acc"]
    evaluated = run_cli("evaluate", run, "--json", "--out", tmp_path / "ev", cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    answer = json.loads(evaluated.stdout)
    assert answer["model"] == "model.py:Model6" and answer["accuracy"] == last  # the rebuilt model is the trained one
    Image.fromarray(mnist.test_images[0]).save(tmp_path / "digit.png")
    predicted = run_cli("predict", run, tmp_path / "digit.png", "--json", cwd=tmp_path)
    assert predicted.returncode == 0, predicted.stderr
    assert sum(json.loads(predicted.stdout)[0]["probabilities"]) == pytest.approx(1.0, abs=1e-5)  # log_softmax model
    exported = run_cli("export", run, "--format", "onnx", "--out", tmp_path / "onnx", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    assert "10,000 of 10,000 predictions equal" in exported.stdout
    refused = run_cli("export", run, "--format", "c", "--out", tmp_path / "c", cwd=tmp_path)  # ReLU before BatchNorm
    assert "convblock1.2 (BatchNorm2d) comes after a ReLU" in one_line_error(refused)


def test_an_edited_or_moved_model_file_is_one_line_naming_what_changed(trained, tmp_path):
    copy = tmp_path / "course"
    shutil.copytree(trained, copy)
    run = copy / "run"
    # the weights name the file by its absolute path: this copy's weights still point at the original
    weights = load_weights(run / records.WEIGHTS)
    assert weights.meta["model"] == f"{trained / 'model.py'}:Model6"
    moved = tmp_path / "elsewhere.py"
    (trained / "model.py").rename(moved)
    try:
        line = one_line_error(run_cli("evaluate", run, cwd=tmp_path))
        assert "its model file" in line and "is gone" in line and "--model-file" in line
        assert run_cli("evaluate", run, "--model-file", moved, "--out", tmp_path / "ev", cwd=tmp_path).returncode == 0
        moved.write_text(moved.read_text() + "\n# tuned later\n")
        line = one_line_error(run_cli("evaluate", run, "--model-file", moved, cwd=tmp_path), code=1)
        assert "is not the file these weights were trained with" in line
    finally:
        moved.write_text(COURSE_MODEL)
        moved.rename(trained / "model.py")


def test_log_softmax_and_logits_give_the_same_loss_and_gradients(course):
    """Many course models end in log_softmax. Cross-entropy applies log_softmax to what the model
    returns, and log_softmax of log-probabilities is those log-probabilities again, so the loss and
    every gradient are the same as for the model returning logits, up to the rounding of one more
    log_softmax: shown here for one batch. Over many steps such last-bit differences grow as any
    does (measured: the same accuracy after epoch 1 of a short run, 22.7% against 20.6% after
    epoch 2, early in training where accuracy jumps), so the two train like two runs of one
    recipe: the same distribution, not the same digits. Nothing needs handling."""
    (course / "logits.py").write_text(COURSE_MODEL.replace("return F.log_softmax(x, dim=-1)", "return x"))
    torch.manual_seed(0)
    probs = load_model_file("model.py:Model6", course)
    logits = load_model_file("logits.py:Model6", course)
    logits.load_state_dict(probs.state_dict())
    x, y = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))
    losses = []
    for model in (probs, logits):
        torch.manual_seed(1)  # the same dropout masks for both (train mode, as in training)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(losses[1], rel=1e-6)
    for a, b in zip(probs.parameters(), logits.parameters()):
        assert torch.allclose(a.grad, b.grad, rtol=1e-4, atol=1e-6)


def test_an_experiment_naming_a_model_file_runs_its_seeds_and_writes_its_report(course):
    """The path in an experiment file is relative to that file; two seeds in parallel, then the
    same report as the built-in steps (per-seed table, interval, plots, placeholders filled)."""
    (course / "experiments").mkdir()
    (course / "experiments" / "mine.toml").write_text(
        'title = "Mine: the course model"\ntarget = "Hold 99.4% with {params} parameters."\n'
        'analysis = "{passing} seeds hold."\nseeds = [0, 1]\n[train]\nmodel = "../model.py:Model6"\n'
        'epochs = 1\ntrain_subset = 2000\ntest_subset = 1000\nbatch_size = 100\n')
    result = run_cli("run", "experiments/mine.toml", "--workers", "2", cwd=course)
    assert result.returncode == 0, result.stderr
    page = (course / "reports" / "mine.md").read_text()
    assert "Hold 99.4% with 7,422 parameters." in page and "0/2 seeds hold." in page and "model.py:Model6" in page
    assert {p.name for p in (course / "reports" / "mine").glob("*.png")} == {"curves.png", "misclassified.png", "seeds.png"}
    assert (course / "models" / "mine.safetensors").is_file()  # the first seed's weights, shipped beside reports/
