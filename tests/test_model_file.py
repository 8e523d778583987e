"""A model of your own, FILE.py:NAME: a course-style model file through `tinycnn summary` (its RF
table against one worked by hand), and every way a spec can be wrong, one line each."""
import pytest

from conftest import one_line_error, run_cli
from tinycnn.analysis import count_macs, receptive_field_table
from tinycnn.model import count_parameters
from tinycnn.model_file import load_model_file

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
