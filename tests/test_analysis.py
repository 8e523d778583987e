"""Parameters, MACs and receptive fields: the calculators against hand-worked tables and torchinfo."""
import pytest
import torch
import torch.nn.functional as F
from conftest import run_cli
from torch import nn

from tinycnn.models.blocks import TinyNet
from tinycnn.models.model import MODELS, build_model, count_parameters
from tinycnn.models.receptive_field import NotTraceableError
from tinycnn.models.tables import (
    count_macs,
    layer_macs,
    model_tables_text,
    receptive_field_facts,
    receptive_field_table,
    summary,
)


@pytest.mark.parametrize("name", list(MODELS))
def test_parameter_count_agrees_with_torchinfo(name):
    model = build_model(name)
    stats = summary(model)
    assert stats.total_params == count_parameters(model) == sum(p.numel() for p in model.parameters())
    assert stats.trainable_params == stats.total_params


@pytest.mark.parametrize("name", list(MODELS))
def test_macs_agree_with_torchinfo_mult_adds_of_conv_and_linear_layers(name):
    model = build_model(name)
    layers = [row for row in summary(model).summary_list if row.class_name in ("Conv2d", "Linear")]
    assert count_macs(model) == sum(row.macs for row in layers) > 0


def test_macs_by_hand():
    # 28x28 -> 3x3 conv 1->4 (26x26x4 outputs x 9) -> 1x1 conv 4->2 (26x26x2 x 4) -> GAP -> linear 2->10
    model = nn.Sequential(nn.Conv2d(1, 4, 3, bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 1),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 10))
    assert list(layer_macs(model).values()) == [26 * 26 * 4 * 9, 26 * 26 * 2 * 4, 20]
    assert count_macs(model) == 26 * 26 * 4 * 9 + 26 * 26 * 2 * 4 + 20
    grouped = nn.Sequential(nn.Conv2d(4, 4, 3, groups=4), nn.Conv2d(4, 4, 3, groups=2))
    assert count_macs(grouped, (4, 10, 10)) == 8 * 8 * 4 * 1 * 9 + 6 * 6 * 4 * 2 * 9


def rf_columns(model, input_size=(1, 28, 28)):
    return [(r.kernel, r.stride, r.padding, r.dilation, r.n_in, r.n_out, r.j_in, r.j_out, r.r_in, r.r_out)
            for r in receptive_field_table(model, input_size)[1:]]


def test_rf_skeleton_by_hand():
    # c8, c12 (valid 3x3), 1x1, pool, c16 x3, GAP: worked out on paper
    expected = [
        (3, 1, 0, 1, 28, 26, 1, 1, 1, 3),
        (3, 1, 0, 1, 26, 24, 1, 1, 3, 5),
        (1, 1, 0, 1, 24, 24, 1, 1, 5, 5),
        (2, 2, 0, 1, 24, 12, 1, 2, 5, 6),
        (3, 1, 0, 1, 12, 10, 2, 2, 6, 10),
        (3, 1, 0, 1, 10, 8, 2, 2, 10, 14),
        (3, 1, 0, 1, 8, 6, 2, 2, 14, 18),
        (6, 6, 0, 1, 6, 1, 2, 12, 18, 28),   # GAP: kernel = incoming size
        (1, 1, 0, 1, 1, 1, 12, 12, 28, 28),  # 1x1 classifier
    ]
    assert rf_columns(build_model("Model_1")) == expected
    # the centre of each layer's first cell: +1 per valid 3x3, +0.5 for the 2x2 pool, then +1 jump (2) per 3x3
    starts = [row.start for row in receptive_field_table(build_model("Model_1"))]
    assert starts == [0, 1, 2, 2, 2.5, 4.5, 6.5, 8.5, 13.5, 13.5]  # GAP's single cell: the image centre
    facts = receptive_field_facts(receptive_field_table(build_model("Model_1")))
    assert (facts.last_spatial_rf, facts.final_rf, facts.covers_input) == (18, 28, True)


def test_rf_step_3_by_hand():
    # c8k5 (valid 5x5), pool, c12, c16 x3 (valid 3x3), GAP: worked out on paper
    expected = [
        (5, 1, 0, 1, 28, 24, 1, 1, 1, 5),
        (2, 2, 0, 1, 24, 12, 1, 2, 5, 6),
        (3, 1, 0, 1, 12, 10, 2, 2, 6, 10),
        (3, 1, 0, 1, 10, 8, 2, 2, 10, 14),
        (3, 1, 0, 1, 8, 6, 2, 2, 14, 18),
        (3, 1, 0, 1, 6, 4, 2, 2, 18, 22),
        (4, 4, 0, 1, 4, 1, 2, 8, 22, 28),    # GAP over 4x4: 22 + 3 * 2
        (1, 1, 0, 1, 1, 1, 8, 8, 28, 28),    # 1x1 classifier
    ]
    assert rf_columns(build_model("Model_3")) == expected
    starts = [row.start for row in receptive_field_table(build_model("Model_3"))]
    assert starts == [0, 2, 2.5, 4.5, 6.5, 8.5, 10.5, 13.5, 13.5]  # +2 for the valid 5x5, then as above
    facts = receptive_field_facts(receptive_field_table(build_model("Model_3")))
    assert (facts.last_spatial_rf, facts.final_rf, facts.covers_input) == (22, 28, True)


def test_rf_padding_stride_and_dilation_by_hand():
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(),              # n 28, r 3
        nn.Conv2d(4, 4, 3, stride=2, padding=1), nn.BatchNorm2d(4),  # n 14, j 2, r 5
        nn.Conv2d(4, 4, 3, padding=2, dilation=2),             # n 14, r 5 + 2*2*2 = 13
        nn.Conv2d(4, 4, 5, padding="same"),                    # n 14, r 13 + 4*2 = 21
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))
    assert [row.start for row in receptive_field_table(model)][1:3] == [0, 0]  # padding keeps cells on their pixel
    assert rf_columns(model) == [
        (3, 1, 1, 1, 28, 28, 1, 1, 1, 3),
        (3, 2, 1, 1, 28, 14, 1, 2, 3, 5),
        (3, 1, 2, 2, 14, 14, 2, 2, 5, 13),
        (5, 1, 2, 1, 14, 14, 2, 2, 13, 21),
        (14, 14, 0, 1, 14, 1, 2, 28, 21, 47),
    ]


def test_rf_max_and_avg_pool_and_flatten_by_hand():
    model = nn.Sequential(
        nn.Conv2d(1, 2, 5), nn.MaxPool2d(2),       # n 24 -> 12, r 5 -> 6, j 2
        nn.Conv2d(2, 2, 3), nn.AvgPool2d(3, stride=1),  # n 10 -> 8, r 10 -> 14
        nn.Dropout(0.1), nn.Flatten(), nn.Linear(128, 10))  # flatten sees the whole 8x8 map
    assert rf_columns(model) == [
        (5, 1, 0, 1, 28, 24, 1, 1, 1, 5),
        (2, 2, 0, 1, 24, 12, 1, 2, 5, 6),
        (3, 1, 0, 1, 12, 10, 2, 2, 6, 10),
        (3, 1, 0, 1, 10, 8, 2, 2, 10, 14),
        (8, 1, 0, 1, 8, 1, 2, 2, 14, 28),
    ]


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))

    def forward(self, x):
        y = self.a(x)
        return self.head(y + self.b(y))


class TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem, self.left, self.right = nn.Conv2d(1, 4, 3), nn.Conv2d(4, 4, 3), nn.Conv2d(4, 4, 5)

    def forward(self, x):
        y = self.stem(x)
        return self.left(y).mean((2, 3)) + self.right(y).mean((2, 3))


def rows_by_hand(model) -> list[tuple]:
    return [(r.layer, r.kernel, r.stride, r.padding, r.n_in, r.n_out, r.j_in, r.j_out, r.r_in, r.r_out, r.start)
            for r in receptive_field_table(model)[1:]]


def test_rf_of_a_residual_model_by_hand():
    # where branches meet with equal jumps, a cell sees the union of its branches' fields: y's 3x3
    # and b(y)'s 5x5 around the same centre, so 5; kernel etc. stay empty (0) on that row
    assert rows_by_hand(Residual()) == [
        ("a Conv2d", 3, 1, 1, 28, 28, 1, 1, 1, 3, 0.0),
        ("b Conv2d", 3, 1, 1, 28, 28, 1, 1, 3, 5, 0.0),
        ("add add", 0, 0, 0, 28, 28, 1, 1, 3, 5, 0.0),
        ("head.0 AdaptiveAvgPool2d", 28, 28, 0, 28, 1, 1, 28, 5, 32, 13.5),
    ]


class Concat(nn.Module):
    """Two branches concatenated, functional ReLU, max pool and a mean over the map as GAP."""

    def __init__(self):
        super().__init__()
        self.stem, self.small = nn.Conv2d(1, 4, 3), nn.Conv2d(4, 4, 1)
        self.big, self.head = nn.Conv2d(4, 4, 5, padding=2), nn.Conv2d(8, 10, 1)

    def forward(self, x):
        y = F.relu(self.stem(x))
        y = torch.cat([self.small(y), self.big(y)], dim=1)
        return self.head(F.max_pool2d(y, 2)).mean((2, 3))


def test_rf_of_a_concatenating_model_with_functional_ops_by_hand():
    assert rows_by_hand(Concat()) == [
        ("stem Conv2d", 3, 1, 0, 28, 26, 1, 1, 1, 3, 1.0),
        ("small Conv2d", 1, 1, 0, 26, 26, 1, 1, 3, 3, 1.0),
        ("big Conv2d", 5, 1, 2, 26, 26, 1, 1, 3, 7, 1.0),
        ("cat cat", 0, 0, 0, 26, 26, 1, 1, 3, 7, 1.0),          # spans [0, 2] and [-2, 4]: 7 wide
        ("max_pool2d max_pool2d", 2, 2, 0, 26, 13, 1, 2, 7, 8, 1.5),
        ("head Conv2d", 1, 1, 0, 13, 13, 2, 2, 8, 8, 1.5),
        ("mean mean", 13, 13, 0, 13, 1, 2, 26, 8, 32, 13.5),    # a mean over both spatial dims is a GAP
    ]
    # two heads meeting after their own global pools: both see all 28 pixels, centred on the image
    assert rows_by_hand(TwoHeads())[-1] == ("add add", 0, 0, 0, 1, 1, 24, 24, 28, 28, 13.5)


class DifferentJumps(nn.Module):
    def __init__(self):
        super().__init__()
        self.pool, self.wide = nn.AvgPool2d(2), nn.Conv2d(1, 1, 15)  # both 14x14: jumps 2 and 1

    def forward(self, x):
        return self.pool(x) + self.wide(x)


def test_branches_meeting_with_different_jumps_say_what_the_row_shows():
    # cell i sees pool's [2i, 2i+1] and wide's [i, i+14]: the union is 15 wide for every cell
    row = receptive_field_table(DifferentJumps())[-1]
    assert (row.r_out, row.j_out, row.start) == (15, 2, 7.0) and "jumps 1, 2 meet" in row.note
    assert "add add: branches with jumps 1, 2 meet here" in model_tables_text(DifferentJumps())


class DataDependent(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 10, 28)

    def forward(self, x):
        if x.sum() > 0:  # Python control flow on a tensor: torch.fx cannot trace it
            x = -x
        return self.conv(x).flatten(1)


def test_an_untraceable_model_gets_its_tables_and_one_line_why_not_its_rf():
    with pytest.raises(NotTraceableError, match="torch.fx cannot trace DataDependent"):
        receptive_field_table(DataDependent())
    text = model_tables_text(DataDependent())
    assert "Total params: 7,850" in text and "7,840" in text  # parameters and MACs are still there
    assert text.splitlines()[-1].startswith("Receptive field: not computed: torch.fx cannot trace DataDependent")


def test_inplace_relu_is_still_a_chain():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(inplace=True), nn.Conv2d(2, 2, 3))
    assert [r.r_out for r in receptive_field_table(model)] == [1, 3, 5]


def test_layout_rf_sizes():
    net = TinyNet("c4p,t2,m,c3", dropout=0.1)
    assert [r.n_out for r in receptive_field_table(net)] == [28, 28, 28, 14, 12, 1, 1]


def test_summary_cli_prints_both_tables():
    result = run_cli("summary", "Model_3")
    assert result.returncode == 0, result.stderr
    assert f"Total params: {count_parameters(build_model('Model_3')):,}" in result.stdout and "r_out" in result.stdout
    assert f"Multiply-accumulates per image (convolutions and linear layers): {count_macs(build_model('Model_3')):,}" \
        in result.stdout
    assert "final RF: 28 px, which covers the whole 28x28 input" in result.stdout


def test_summary_cli_lists_models():
    result = run_cli("summary")
    assert result.returncode == 0
    assert [line.split()[0] for line in result.stdout.splitlines()] == list(MODELS)
    assert "Step 3: augmentation instead of dropout" in result.stdout  # each model's own docstring line
    model3 = next(line for line in result.stdout.splitlines() if line.startswith("Model_3"))
    assert f"{count_macs(build_model('Model_3')):,} MACs" in model3
