"""A model of your own, FILE.py:NAME: a course-style model file through summary (its RF table
against one worked by hand), train, evaluate, predict and export; log_softmax against logits; and
every way a spec, or a moved or edited model file, can be wrong, one line each."""
import inspect
import json
import re
import shutil
import subprocess
import sys
import urllib.request

import pytest
import torch
import torch.nn.functional as F
from conftest import ROOT, call_cli, one_line_error, run_cli, trials
from PIL import Image
from test_analysis import Concat, Residual

from tinycnn.evidence import records
from tinycnn.models.model import count_parameters
from tinycnn.models.spec import ModelSpec
from tinycnn.models.tables import count_macs, receptive_field_table
from tinycnn.models.user_file import absolute, load_model_file
from tinycnn.ship.weights import load_weights
from tinycnn.train.config import TrainConfig

# As students write it (examples/course/model.py: ReLU before BatchNorm, dropout, AvgPool2d as
# GAP, a 1x1 head, view and log_softmax, the notebook's imports), plus bad models for the specs.
COURSE_MODEL = (ROOT / "examples" / "course" / "model.py").read_text() + '''

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


class Halved(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 10, 28)

    def forward(self, x):
        return self.conv(x).flatten(1) / 2
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
    ("model.py:Model7", 2, "model.py defines no 'Model7' (its models: Model6, NeedsWidth, Maps, Halved)"),
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


# One short real run of the course model: 6,000 training images (enough to read most digits: a
# model that guesses one class would make "C equals PyTorch" an empty check), evaluated on all
# 10,000 test images, so `evaluate` on its folder must give exactly the run's own last accuracy.
SHORT = ["--epochs", "1", "--train-subset", "6000", "--batch-size", "64", "--lr", "0.05", "--schedule", "none",
         "--ema", "0", "--processes", "1", "--clean-epochs", "0"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("course")
    (folder / "model.py").write_text(COURSE_MODEL)
    result = run_cli("train", "--model", "model.py:Model6", *SHORT, "--out", "run", "--quiet", cwd=folder)
    assert result.returncode == 0, result.stderr
    assert "model.py:Model6: 7,422 parameters, 1,384,608 MACs per image" in result.stdout
    return folder


def test_a_trained_model_file_is_evaluated_predicted_and_exported_from_any_folder(trained, mnist, tmp_path, capsys,
                                                                                 monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = trained / "run"
    last = records.read_metrics(run / records.METRICS)["history"][-1]["eval_acc"]
    assert last > 80  # it reads digits
    evaluated = call_cli(capsys, "evaluate", run, "--json", "--out", tmp_path / "ev")
    assert evaluated.returncode == 0, evaluated.stderr
    answer = json.loads(evaluated.stdout)
    assert answer["model"] == "model.py:Model6" and answer["accuracy"] == last  # the rebuilt model is the trained one
    Image.fromarray(mnist.test_images[0]).save(tmp_path / "digit.png")
    predicted = call_cli(capsys, "predict", run, tmp_path / "digit.png", "--json")
    assert predicted.returncode == 0, predicted.stderr
    assert sum(json.loads(predicted.stdout)[0]["probabilities"]) == pytest.approx(1.0, abs=1e-5)  # log_softmax model
    for fmt, weights in (("onnx", "fp32"), ("c", "fp32")):  # int8 ONNX and C: test_export (the same code)
        exported = call_cli(capsys, "export", run, "--format", fmt, "--weights", weights, "--out",
                            tmp_path / fmt / weights)
        assert exported.returncode == 0, exported.stderr
        described = json.loads((tmp_path / fmt / weights / "model.json").read_text())
        # C: BatchNorm after ReLU has its own step, GAP is an AvgPool2d
        assert described["predictions_equal_to_pytorch"] == 10_000, described
        assert described["test_accuracy"] == pytest.approx(last, abs=1e-9)


def test_c_export_refuses_arithmetic_it_cannot_see(course, tmp_path, capsys, monkeypatch):
    """Code after the model's last layer (here `/ 2`) is not a layer the trace sees: refused, never left out."""
    monkeypatch.chdir(course)
    run = call_cli(capsys, "train", "--model", "model.py:Halved", "--epochs", "1", "--train-subset", "500",
                   "--test-subset", "500", "--out", tmp_path / "run", "--quiet")
    assert run.returncode == 0, run.stderr
    refused = call_cli(capsys, "export", tmp_path / "run", "--format", "c", "--out", tmp_path / "c")
    assert "computes something after its last layer (conv) besides log_softmax" in one_line_error(refused)
    assert not (tmp_path / "c").exists()


def test_an_edited_or_moved_model_file_is_one_line_naming_what_changed(trained, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    copy = tmp_path / "course"
    shutil.copytree(trained, copy)
    # the weights name the file by its absolute path: this copy's weights still point at the original
    weights = load_weights(copy / "run" / records.WEIGHTS)
    assert weights.meta["model"] == f"{trained / 'model.py'}:Model6"
    moved = tmp_path / "elsewhere.py"
    (trained / "model.py").rename(moved)
    try:
        # a cloned or moved project finds its own model.py beside the run, byte for byte the trained one
        assert call_cli(capsys, "evaluate", copy / "run", "--out", tmp_path / "ev0").returncode == 0
        (copy / "model.py").write_text(COURSE_MODEL + "\n# edited in the copy\n")  # not the same file: not taken
        line = one_line_error(call_cli(capsys, "evaluate", copy / "run"))
        assert "its model file" in line and "is gone" in line and "--model-file" in line
        line = one_line_error(call_cli(capsys, "evaluate", trained / "run"))
        assert "its model file" in line and "is gone" in line and "--model-file" in line
        evaluated = call_cli(capsys, "evaluate", trained / "run", "--model-file", moved, "--out", tmp_path / "ev")
        assert evaluated.returncode == 0
        moved.write_text(moved.read_text() + "\n# tuned later\n")
        line = one_line_error(call_cli(capsys, "evaluate", trained / "run", "--model-file", moved), code=1)
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
    assert (course / "weights" / "mine.safetensors").is_file()  # the first seed's weights, shipped beside reports/


def test_an_experiment_refuses_a_model_over_its_budget_before_training(course):
    (course / "over.toml").write_text('title = "t"\ntarget = "t"\nanalysis = "a"\nbudget = 5000\n'
                                      '[train]\nmodel = "model.py:Model6"\nepochs = 1\n')
    line = one_line_error(run_cli("run", "over.toml", cwd=course))
    assert "model.py:Model6 has 7,422 parameters, over the budget of 5,000 in over.toml" in line, line
    assert not (course / "reports").exists()


def test_a_sweep_tunes_a_model_file_from_a_start_point(course):
    """A model of your own in a sweep: fixed in [train] (relative to the sweep file), its training
    settings searched, an enqueued start point tried first; the page names the model."""
    (course / "sweeps").mkdir()
    (course / "sweeps" / "mine_sweep.toml").write_text(f'''
title = "the course model's learning rate"
budget = 8000
storage = "sqlite:///{course / 'mine.db'}"
layout = ""
enqueue = [{{lr = 0.05}}]
[train]
model = "../model.py:Model6"
epochs = 1
holdout = 10000
train_subset = 2000
test_subset = 500
ema = 0.0
[space]
lr = {{float = [0.01, 0.1], log = true}}
''')
    result = run_cli("sweep", "sweeps/mine_sweep.toml", "--trials", "2", "--workers", "1", "--report", "--out", "out",
                     cwd=course)
    assert result.returncode == 0, result.stderr
    done = [t for t in trials(course / "sweeps" / "mine_sweep.toml") if t.value is not None]
    assert len(done) == 2 and done[0].params == {"lr": 0.05}  # the start point ran first
    assert done[0].user_attrs["params"] == 7_422
    assert "| 7,422 | `model.py:Model6` |" in (course / "out" / "mine_sweep.md").read_text()


def doc_block(page: str, language: str, heading: str | None = None) -> str:
    """The first ```language block of a docs/ page, or of its `## heading` section."""
    section = (ROOT / "docs" / page).read_text()
    if heading:
        section = section.split(f"## {heading}\n")[1].split("\n## ")[0]
    return section.split(f"```{language}\n")[1].split("```")[0]


def test_the_readme_commands_for_your_own_model_work_as_written(mnist, tmp_path):
    """docs/use.md's "Your own model" commands, each as written, in a copy of examples/course (without
    its results). Only the lengths shrink: `train` gets one epoch on 6,000 images, and the copied
    experiment file two seeds of one epoch; `demo` is stopped once it serves."""
    project = tmp_path / "course"
    shutil.copytree(ROOT / "examples" / "course", project, ignore=shutil.ignore_patterns("reports", "weights", "runs"))
    experiment = project / "experiments" / "own_recipe.toml"
    experiment.write_text(experiment.read_text().replace("seeds = [0, 1, 2, 3, 4]", "seeds = [0, 1]")
                          .replace("epochs = 15", "epochs = 1").replace("train_subset = 0", "train_subset = 2000")
                          .replace("test_subset = 0", "test_subset = 1000"))
    Image.fromarray(mnist.test_images[0]).save(project / "my_digit.png")
    commands = [line.split("#")[0].strip() for line in doc_block("use.md", "bash", "Your own model").splitlines()]
    assert commands[0] == "cd examples/course" and all(c.startswith("tinycnn ") for c in commands[1:]), commands
    for command in commands[1:]:
        args = command.split()[1:]
        if args[0] == "demo":
            server = subprocess.Popen([sys.executable, "-m", "tinycnn.cli", *args, "--port", "0"], cwd=project,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            try:
                address = next(found.group(0) for line in server.stdout
                               if (found := re.search(r"http://127\.0\.0\.1:\d+/", line)))
                models = json.loads(urllib.request.urlopen(address + "models.json").read())
                assert models[-1]["name"] == "model.py:Model6" and models[-1]["params"] == 7_422
            finally:
                server.terminate()
                server.wait(timeout=30)
            continue
        result = run_cli(*args, *(SHORT if args[0] == "train" else []), cwd=project)
        assert result.returncode == 0, (command, result.stderr)
    assert "7,422" in (project / "reports" / "own_recipe.md").read_text()
    assert (project / "ship" / "model.onnx").is_file()


# test_analysis's residual and concatenating models (their RF tables worked by hand there), as a file
BRANCHES = ("import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n\n\n"
            + inspect.getsource(Residual) + "\n\n" + inspect.getsource(Concat))


@pytest.mark.parametrize("name, last_row", [
    ("Residual", "add add                      28     28  1   1  3   5      0"),  # test_analysis: worked by hand
    ("Concat", "cat cat                     26     26  1   1  3   7      1"),
])
def test_branching_model_files_are_summarised_trained_and_exported(tmp_path, name, last_row, capsys, monkeypatch):
    """The commands called in this process (what they print and return; the commands as a new
    process are test_the_readme_commands_for_your_own_model_work_as_written's)."""
    (tmp_path / "branches.py").write_text(BRANCHES)
    monkeypatch.chdir(tmp_path)
    summary = call_cli(capsys, "summary", f"branches.py:{name}")
    assert summary.returncode == 0, summary.stderr
    assert " ".join(last_row.split()) in [" ".join(line.split()) for line in summary.stdout.splitlines()], summary.stdout
    trained = call_cli(capsys, "train", "--model", f"branches.py:{name}", "--epochs", "1", "--train-subset", "2000",
                       "--out", "run", "--quiet")
    assert trained.returncode == 0, trained.stderr
    exported = call_cli(capsys, "export", "run", "--format", "onnx", "--out", "onnx")
    assert exported.returncode == 0 and "10,000 of 10,000 predictions equal" in exported.stdout, exported.stderr
    refused = call_cli(capsys, "export", "run", "--format", "c", "--out", "c")
    assert "C export: straight-chain models only" in one_line_error(refused)


def test_dropout_sets_a_model_files_dropout_layers(course, tmp_path):
    """--dropout (every TrainConfig setting works on your model): each nn.Dropout layer gets the rate;
    a model with none is refused in one line, before any run folder exists."""
    model = ModelSpec.of(TrainConfig(model=absolute("model.py:Model6", course), dropout=0.0)).build()
    rates = [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert rates == [0.0] * 5
    refused = run_cli("train", "--model", "model.py:small", "--dropout", "0.2", "--out", tmp_path / "run", cwd=course)
    assert "--dropout 0.2: model.py:small has no dropout layer" in one_line_error(refused)
    assert not (tmp_path / "run").exists()
