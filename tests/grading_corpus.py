"""A corpus of submissions in the shapes real ones have, written here in this project's own words: steps
headed `Code-1`, `CODE 5`, `iter 3`, a bold `**class Model1()**` line, a README table, steps only in the
notebooks (Target / Result / Analysis in the last cell) or only in pictures; models in `models.py`,
`src/model.py`, a file per step, a cloned package, or only in notebook cells (a `Net` per notebook,
redefined); logs with rounded percentages, 0-based epochs, `EPOCH - 3`, `epoch num ====`, schedulers'
lines, several runs in one notebook, a run stopped by KeyboardInterrupt, logs pasted into a README.

Each fixture states what a careful teacher's hand grading gives, rule by rule, before the tool runs
(EXPECTED), with the final model's parameters (counted here from the fixture's own source: our code)
and its last three test accuracies.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

ALL = ("steps", "texts", "budget", "epochs", "holds", "figures", "rf")


def model_source(name: str, widths: tuple[int, ...] = (8, 12, 16, 16, 16), base: str = "nn.Module",
                 rf_comments: bool = False) -> str:
    """One class of the corpus's family: five 3x3 blocks, a pool after the second, GAP, a 1x1 to 10."""
    a, b, c, d, e = widths
    rf = ["  # RF 3", "  # RF 5", "  # RF 6", "  # RF 10", "  # RF 14", "  # RF 18", "  # RF 28"] if rf_comments else [""] * 7
    return f'''
class {name}({base}):
    def __init__(self):
        super().__init__()
        self.c1 = block(1, {a}){rf[0]}
        self.c2 = block({a}, {b}){rf[1]}
        self.pool = nn.MaxPool2d(2){rf[2]}
        self.c3 = block({b}, {c}){rf[3]}
        self.c4 = block({c}, {d}){rf[4]}
        self.c5 = block({d}, {e}){rf[5]}
        self.gap = nn.AdaptiveAvgPool2d(1){rf[6]}
        self.out = nn.Conv2d({e}, 10, 1)

    def forward(self, x):
        x = self.pool(self.c2(self.c1(x)))
        x = self.gap(self.c5(self.c4(self.c3(x))))
        return F.log_softmax(self.out(x).view(-1, 10), dim=-1)
'''


HEADER = '''import torch.nn as nn
import torch.nn.functional as F


def block(cin, cout):
    """a 3x3 convolution, then BatchNorm and ReLU"""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, bias=False), nn.BatchNorm2d(cout), nn.ReLU())
'''

WIDTHS = {1: (8, 12, 16, 16, 16), 2: (6, 10, 14, 14, 16), 3: (8, 12, 14, 16, 16), 4: (8, 12, 16, 16, 20),
          5: (8, 16, 16, 16, 16)}
BIG = (32, 64, 128, 128, 512)  # a first step far over the budget (millions of parameters)


def params_of(source: str, name: str) -> int:
    """The test's own count of a fixture class (this corpus's code, not a submission's)."""
    scope: dict = {}
    exec(compile(source, "corpus_model.py", "exec"), scope)
    return sum(p.numel() for p in scope[name]().parameters())


def curve(start: float, end: float, epochs: int, hold_from: int | None = None) -> list[float]:
    """Test accuracies rising from start to end; from `hold_from` (1-based) on, each >= 99.40."""
    values = [round(start + (end - start) * min(i / max(epochs - 4, 1), 1.0), 2) for i in range(epochs)]
    if hold_from:
        values = [max(v, 99.4 + 0.01 * ((i * 7) % 5)) if i + 1 >= hold_from else min(v, 99.38)
                  for i, v in enumerate(values)]
    return values


def log(tests: list[float], style: str = "example", first: int = 1, train_gap: float = -0.4, salt: str = "") -> str:
    """A training log as courses print it, one evaluated epoch per accuracy; `salt` (a student) sets the
    losses' last digits, so two students' logs differ as real ones do unless one copied the other."""
    lines, extra = [], zlib.crc32(salt.encode()) % 10000
    for i, test in enumerate(tests):
        epoch, train, count = first + i, round(test + train_gap, 2), round(test * 100)
        if style == "example":
            lines += [f"EPOCH: {epoch}", f"Loss=0.{90 - i:02d} Batch_id=468 Accuracy={train:.2f}: 100%|#####| 469/469",
                      "", f"Test set: Average loss: 0.0{40 - i:02d}{extra:04d}, Accuracy: {count}/10000 ({test:.2f}%)", ""]
        elif style == "rounded":  # the PyTorch example's `({:.0f}%)`: only the counts are exact
            lines += [f"epoch num ==== {epoch}", f"loss=0.0{50 - i} batch_id=468: 100%|#####| 469/469",
                      f"Test set: Average loss: 0.0{40 - i:02d}{extra:04d}, Accuracy: {count}/10000 ({test:.0f}%)", ""]
        elif style == "dash":
            lines += [f"EPOCH - {epoch}", f"Train: Loss=0.{60 - i} Batch_id=117 Accuracy={train:.2f}: 100%|###| 118/118",
                      f"Test set: Average loss: 0.0{30 - i:02d}{extra:04d}, accuracy: {count}/10000 ({test:.5f}%)", ""]
        elif style == "slash":  # a scheduler's own lines between epochs
            lines += [f"Epoch {epoch}/{len(tests)}", f"Train Acc: {train:.2f} | Test Loss: 0.0{extra:04d} | Test Acc: {test:.2f}",
                      f"Adjusting learning rate of group 0 to {0.01 / (1 + i // 5):.4e}."]
            if i == 10:
                lines.append(f"Epoch {epoch:05d}: reducing learning rate of group 0 to 1.0000e-03.")
    return "\n".join(lines) + "\n"


def summary_table(params: int) -> str:
    return (f"----------------------------------------------------------------\nTotal params: {params:,}\n"
            f"Trainable params: {params:,}\nNon-trainable params: 0\n")


def student(path: Path) -> str:
    """Whose work a file is: the corpus folder's name under the test's folder."""
    return next((p for p in reversed(path.parts) if p in CORPUS), path.parent.name)


def stream(text: str) -> dict:
    return new_output("stream", name="stdout", text=text)


def notebook(path: Path, cells: list) -> None:
    """cells: ("md", text) or ("code", source, [outputs]) or ("code", source, [outputs], count)."""
    made, count = [], 0
    for cell in cells:
        if cell[0] == "md":
            made.append(new_markdown_cell(cell[1]))
            continue
        count += 1
        code = new_code_cell(cell[1], outputs=cell[2] if len(cell) > 2 else [])
        code.execution_count = cell[3] if len(cell) > 3 else count
        made.append(code)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(new_notebook(cells=made), path)


def tra(target: str, result: str, analysis: str, style: str = "bold") -> str:
    if style == "bold":
        return f"**Target:** {target}\n\n**Results:**\n{result}\n\n**Analysis:** {analysis}\n"
    if style == "headings":
        return f"### Target\n{target}\n\n### Result\n{result}\n\n### Analysis\n{analysis}\n"
    return f"Target:\n- {target}\n\nResults:\n{result}\n\nAnalysis:\n- {analysis}\n"


def results(params: int | str, tests: list[float], train_gap: float = -0.4) -> str:
    shown = f"{params:,}" if isinstance(params, int) else params
    return (f"- Parameters: {shown}\n- Best Train Accuracy: {max(tests) + train_gap:.2f}\n"
            f"- Best Test Accuracy: {max(tests):.2f}")


TARGETS = {
    1: "Get a working skeleton with the right receptive field, because every later step builds on it",
    2: "Cut parameters with narrower layers, since step 1 was heavy for what it did",
    3: "Add a learning-rate schedule so that the last epochs settle above 99.4%",
    4: "Add a little dropout, because the gap between train and test grew",
    5: "Tune the schedule's step so the accuracy holds from earlier on",
}
TRAIN_LOOP = "for epoch in range(EPOCHS):\n    train(model, device, train_loader, optimizer, epoch)\n    test(model, device, test_loader)"
RF_TABLE = "## Receptive field\n\n| layer | n_out | j | RF |\n|---|---|---|---|\n| conv1 | 26 | 1 | 3 |\n| conv2 | 24 | 1 | 5 |\n" \
           "| pool | 12 | 2 | 6 |\n| conv3 | 10 | 2 | 10 |\n| conv4 | 8 | 2 | 14 |\n| conv5 | 6 | 2 | 18 |\n| gap | 1 | - | 28 |\n"
GOOD = {1: curve(98.1, 99.18, 15), 2: curve(97.9, 99.12, 15), 3: curve(98.6, 99.5, 15, hold_from=11),
        4: curve(98.6, 99.5, 15, hold_from=10), 5: curve(98.7, 99.5, 15, hold_from=9)}


@dataclass
class Expected:
    """A teacher's hand grading, written before the tool ran: the verdict of each rule, the final
    model's parameters and last three test accuracies, and words the output must hold."""

    rules: dict[str, bool]
    params: int | None
    last_3: list[float]
    rubric: str | None = None
    says: list[str] = field(default_factory=list)  # in a rule's evidence or a note

    @property
    def passed(self) -> bool:
        return all(self.rules.values())


def verdicts(fail: tuple[str, ...] = (), extra: dict | None = None) -> dict[str, bool]:
    return {**{rule: rule not in fail for rule in ALL}, **(extra or {})}


def step_notebook(path: Path, imports: str, build: str, tests: list[float], params: int, style: str = "example",
                  first: int = 1, markdown: str = "", extra_cells: list | None = None, salt: str | None = None) -> None:
    salt = student(path) if salt is None else salt
    cells = [("md", markdown)] if markdown else []
    cells += [("code", "!pip install torchsummary\n%matplotlib inline\nimport torch\nfrom torchsummary import summary\n"
                       + imports),
              ("code", "use_cuda = torch.cuda.is_available()\ndevice = torch.device('cuda' if use_cuda else 'cpu')"),
              ("code", f"model = {build}.to(device)\nsummary(model, input_size=(1, 28, 28))",
               [stream(summary_table(params))]),
              *(extra_cells or []),
              ("code", f"EPOCHS = {len(tests)}\n" + TRAIN_LOOP, [stream(log(tests, style, first, salt=salt))])]
    notebook(path, cells)


def classic_files(folder: Path, names: list[str], file: str = "model.py", widths: dict | None = None,
                  header: str = HEADER, rf_comments: bool = False) -> str:
    source = header + "".join(model_source(n, (widths or WIDTHS)[i + 1], rf_comments=rf_comments)
                              for i, n in enumerate(names))
    (folder / file).parent.mkdir(parents=True, exist_ok=True)
    (folder / file).write_text(source)
    return source


def code_headings(folder: Path) -> Expected:
    """`### Code-1 - [link]` headings, models in models.py, rounded percentages in the logs."""
    source = classic_files(folder, ["Model_1", "Model_2", "Model_3"], "models.py")
    readme = ["# Session 7: MNIST under 8k\n"]
    for n in (1, 2, 3):
        params = params_of(source, f"Model_{n}")
        url = f"https://github.com/someone/era-s7/blob/main/S7_Code{n}.ipynb"
        readme.append(f"### Code-{n} - [Open in Colab]({url})\n\n" + tra(TARGETS[n], results(params, GOOD[n]), "It did."))
        step_notebook(folder / f"S7_Code{n}.ipynb", f"from models import Model_{n} as Net", "Net()", GOOD[n], params,
                      "rounded")
    (folder / "README.md").write_text("\n".join(readme) + "\n" + RF_TABLE)
    return Expected(verdicts(), params_of(source, "Model_3"), GOOD[3][-3:])


def caps_five(folder: Path) -> Expected:
    """`# CODE 1`..`# CODE 5`, a model file per step (`class Net` in each), the five-step edition."""
    readme = ["# MNIST, five codes\n"]
    for n in range(1, 6):
        source = classic_files(folder, ["Net"], f"model_{n}.py", {1: WIDTHS[n]}, rf_comments=True)
        params = params_of(source, "Net")
        readme.append(f"# CODE {n}\n\n" + tra(TARGETS[n], results(params, GOOD[n]), "As planned.", "plain"))
        step_notebook(folder / f"code{n}.ipynb", f"from model_{n} import Net", "Net()", GOOD[n], params)
    (folder / "README.md").write_text("\n".join(readme))
    return Expected(verdicts(), params, GOOD[5][-3:], rubric="five-steps")


def iter_nets(folder: Path) -> Expected:
    """`## iter 3` steps; every notebook defines its own `class Net` (a constant it reads, torchsummary);
    epochs counted from 0."""
    readme, params = ["# Iterations\n"], 0
    for n in (1, 2, 3):
        cell = "import torch.nn as nn\nimport torch.nn.functional as F\ndropout_value = 0.05\n\n" + HEADER.split(
            "\n\n\n", 1)[1] + model_source("Net", WIDTHS[n])
        params = params_of(cell, "Net")
        readme.append(f"## iter {n}\n\n" + tra(TARGETS[n], results(params, GOOD[n]), "Moving on.", "headings"))
        step_notebook(folder / f"iter{n}.ipynb", "", "Net()", GOOD[n], params, first=0,
                      extra_cells=[("code", cell)])
    # the cells' order matters: the class is defined after the imports, before the summary
    for n in (1, 2, 3):
        nb = nbformat.read(folder / f"iter{n}.ipynb", as_version=4)
        nb.cells.insert(1, nb.cells.pop(3))
        for count, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
            cell.execution_count = count + 1
        nbformat.write(nb, folder / f"iter{n}.ipynb")
    (folder / "README.md").write_text("\n".join(readme) + "\n" + RF_TABLE)
    return Expected(verdicts(), params, GOOD[3][-3:], says=["iter3.ipynb:Net (cell 2)"])


def bold_class_one_notebook(folder: Path) -> Expected:
    """`**class Model1()**` lines as headings; one notebook trains all three (`EPOCH - n`, 5-decimal
    percentages), each run after building its model."""
    source = classic_files(folder, ["Model1", "Model2", "Model3"], rf_comments=True)
    readme, cells = ["# Three models\n"], [("code", "from model import Model1, Model2, Model3\nimport torch")]
    for n in (1, 2, 3):
        params = params_of(source, f"Model{n}")
        readme.append(f"**class Model{n}()**\n\n" + tra(TARGETS[n], results(params, GOOD[n]), "Fine.", "plain"))
        cells += [("code", f"model = Model{n}()\nsummary(model, (1, 28, 28))", [stream(summary_table(params))]),
                  ("code", TRAIN_LOOP, [stream(log(GOOD[n], "dash", salt=folder.name))])]
    notebook(folder / "training.ipynb", cells)
    (folder / "README.md").write_text("\n".join(readme))
    return Expected(verdicts(), params_of(source, "Model3"), GOOD[3][-3:], says=["by the model training.ipynb trains"])


def notebook_steps_src(folder: Path) -> Expected:
    """The README only links the notebooks; each notebook holds its step, Target / Result / Analysis in
    its last cell; the models live in src/model.py."""
    source = classic_files(folder, ["Net1", "Net2", "Net3"], "src/model.py", rf_comments=True)
    links = []
    for n, name in ((1, "first"), (2, "second"), (3, "third")):
        params = params_of(source, f"Net{n}")
        path = folder / "notebooks" / f"S6_{name}.ipynb"
        step_notebook(path, f"from src.model import Net{n} as Net", "Net()", GOOD[n], params)
        nb = nbformat.read(path, as_version=4)
        nb.cells.append(new_markdown_cell(f"# Step {n}\n\n" + tra(TARGETS[n], results(params, GOOD[n]), "Done.")))
        nbformat.write(nb, path)
        links.append(f"- [{name}](notebooks/S6_{name}.ipynb)")
    (folder / "README.md").write_text("# My assignment\n\n" + "\n".join(links) + "\n")
    return Expected(verdicts(), params_of(source, "Net3"), GOOD[3][-3:])


def readme_table(folder: Path) -> Expected:
    """A README table with a row per step (Target, Results, Analysis columns) and an RF column."""
    source = classic_files(folder, ["Model_1", "Model_2", "Model_3"])
    rows = []
    for n in (1, 2, 3):
        params = params_of(source, f"Model_{n}")
        rows.append(f"| Model {n} | {TARGETS[n]} | {params:,} params, best test {max(GOOD[n]):.2f}% | Steady | 28 |")
        step_notebook(folder / f"model{n}.ipynb", f"from model import Model_{n}", f"Model_{n}()", GOOD[n], params)
    (folder / "README.md").write_text("# Results\n\n| Step | Target | Results | Analysis | RF |\n|---|---|---|---|---|\n"
                                      + "\n".join(rows) + "\n")
    return Expected(verdicts(), params_of(source, "Model_3"), GOOD[3][-3:])


def pictures_only(folder: Path) -> Expected:
    """Steps only as screenshots in the README; the notebooks carry the logs and no markdown."""
    source = classic_files(folder, ["Model_1", "Model_2", "Model_3"])
    for n in (1, 2, 3):
        step_notebook(folder / f"S7_{n}.ipynb", f"from model import Model_{n}", f"Model_{n}()", GOOD[n],
                      params_of(source, f"Model_{n}"))
    (folder / "README.md").write_text("# Session 7\n\n![step 1](img/s1.png)\n\n![step 2](img/s2.png)\n\n"
                                      "![step 3](img/s3.png)\n")
    return Expected(verdicts(("steps", "texts", "rf")), params_of(source, "Model_3"), GOOD[3][-3:],
                    says=["3 picture(s), which are not read"])


def linked_headings(folder: Path) -> Expected:
    """`## Model 1 - [Notebook](.../S7_first.ipynb)`: notebooks with no numbers, tied by the link."""
    source = classic_files(folder, ["Model_1", "Model_2", "Model_3"])
    readme = []
    for n, name in ((1, "first"), (2, "second"), (3, "final")):
        params = params_of(source, f"Model_{n}")
        readme.append(f"## Model {n} - [Notebook](https://github.com/s/r/blob/main/S7_{name}.ipynb)\n\n"
                      + tra(TARGETS[n], results(params, GOOD[n]), "Okay."))
        step_notebook(folder / f"S7_{name}.ipynb", f"from model import Model_{n} as Net", "Net()", GOOD[n], params)
    (folder / "README.md").write_text("\n".join(readme) + "\n" + RF_TABLE)
    return Expected(verdicts(), params_of(source, "Model_3"), GOOD[3][-3:], says=["linked from its text (S7_final.ipynb)"])


def cloned_package(folder: Path) -> Expected:
    """Notebooks that clone the course repository and import a package from it (re-exported by __init__)."""
    source = classic_files(folder, ["Model1", "Model2", "Model3"], "S7/models/network.py", rf_comments=True)
    (folder / "S7" / "models" / "__init__.py").write_text("from .network import *\n")
    readme = []
    for n in (1, 2, 3):
        params = params_of(source, f"Model{n}")
        readme.append(f"# Step {n}\n\n" + tra(TARGETS[n], results(params, GOOD[n]), "Good."))
        step_notebook(folder / "S7" / f"S7_step{n}.ipynb",
                      "!git clone https://github.com/someone/era.git\nimport sys\nsys.path.append('era/S7')\n"
                      f"from models import Model{n}", f"Model{n}()", GOOD[n], params)
    (folder / "README.md").write_text("\n".join(readme))
    return Expected(verdicts(), params_of(source, "Model3"), GOOD[3][-3:])


def module_alias(folder: Path) -> Expected:
    """`import model as m; m.Net3()`, a model.py whose top imports torchsummary and albumentations."""
    header = "from torchsummary import summary\nimport albumentations as A\nfrom tqdm import tqdm\n" + HEADER
    source = classic_files(folder, ["Net1", "Net2", "Net3"], header=header, rf_comments=True)
    readme = []
    for n in (1, 2, 3):
        params = params_of(HEADER + "".join(model_source(f"Net{k}", WIDTHS[k]) for k in (1, 2, 3)), f"Net{n}")
        readme.append(f"## Step {n}\n\n" + tra(TARGETS[n], results(params, GOOD[n]), "Right."))
        step_notebook(folder / f"Step{n}.ipynb", "import model as m", f"m.Net{n}()", GOOD[n], params)
    (folder / "README.md").write_text("\n".join(readme))
    assert "torchsummary" in source
    return Expected(verdicts(), params, GOOD[3][-3:], says=["stand-ins", "torchsummary"])


def one_notebook_redefined(folder: Path) -> Expected:
    """All three steps in one notebook, each with its own `class Net` defined again before its run."""
    cells, params = [("code", "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F")], 0
    cells.append(("code", HEADER.split("\n\n\n", 1)[1]))
    for n in (1, 2, 3):
        cell = model_source("Net", WIDTHS[n])
        params = params_of(HEADER + cell, "Net")
        cells += [("md", f"# Step {n}\n\n" + tra(TARGETS[n], results(params, GOOD[n]), "Next.")),
                  ("code", cell), ("code", "model = Net()"),
                  ("code", TRAIN_LOOP, [stream(log(GOOD[n], salt=folder.name))])]
    notebook(folder / "S7.ipynb", cells)
    (folder / "README.md").write_text("# S7\n\nEverything is in [the notebook](S7.ipynb).\n\n" + RF_TABLE)
    return Expected(verdicts(), params, GOOD[3][-3:])


def exploratory_runs(folder: Path) -> Expected:
    """The final notebook holds a 50-epoch exploratory run, then the 15-epoch one; step 1 ran 20 epochs
    (the epoch limit is the final model's)."""
    source = classic_files(folder, ["Model_1", "Model_2", "Model_3"])
    readme = []
    for n in (1, 2, 3):
        params = params_of(source, f"Model_{n}")
        tests = curve(98.1, 99.2, 20) if n == 1 else GOOD[n]
        readme.append(f"# Step {n}\n\n" + tra(TARGETS[n], results(params, tests), "Good enough."))
        extra = [("code", "model = Net().to(device)\n" + TRAIN_LOOP,
                   [stream(log(curve(98.0, 99.3, 50), salt=folder.name))])] if n == 3 else []
        step_notebook(folder / f"step{n}.ipynb", f"from model import Model_{n} as Net", "Net()", tests, params,
                      extra_cells=extra)
    (folder / "README.md").write_text("\n".join(readme) + "\n" + RF_TABLE)
    return Expected(verdicts(), params_of(source, "Model_3"), GOOD[3][-3:], says=["step 1 20"])


def three_steps(folder: Path, source: str, tests: dict | None = None, analysis: dict | None = None,
                rf: str = RF_TABLE, heading: str = "# Step {n}", salt: str | None = None) -> None:
    """The common shape: a README section per step over model.py's Model_1..3, a notebook per step."""
    readme = []
    for n in (1, 2, 3):
        params, t = params_of(source, f"Model_{n}"), (tests or {}).get(n, GOOD[n])
        readme.append(heading.format(n=n) + "\n\n" + tra(TARGETS[n], results(params, t), (analysis or {}).get(n, "Fine.")))
        step_notebook(folder / f"step{n}.ipynb", f"from model import Model_{n} as Net", "Net()", t, params, salt=salt)
    (folder / "README.md").write_text("\n".join(readme) + "\n" + rf)


def stopped_run(folder: Path) -> Expected:
    """The final run stopped by KeyboardInterrupt after 12 epochs, its last three holding."""
    source = classic_files(folder, ["Model_1", "Model_2", "Model_3"])
    tests = curve(98.6, 99.5, 12, hold_from=8)
    three_steps(folder, source, {3: tests}, {3: "Stopped when it held."})
    path = folder / "step3.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[-1].outputs.append(new_output("error", ename="KeyboardInterrupt", evalue="", traceback=[]))
    nbformat.write(nb, path)
    return Expected(verdicts(), params_of(source, "Model_3"), tests[-3:], says=["stopped (KeyboardInterrupt) after 12"])


def scheduler_lines(folder: Path) -> Expected:
    """`Epoch 3/15` logs with a StepLR's and a ReduceLROnPlateau's lines (`Epoch 00011: reducing ...`)."""
    source = classic_files(folder, ["Model_1", "Model_2", "Model_3"])
    readme = []
    for n in (1, 2, 3):
        params = params_of(source, f"Model_{n}")
        readme.append(f"## Step{n}\n\n" + tra(TARGETS[n], results(params, GOOD[n]), "Schedulers help."))
        step_notebook(folder / f"Step{n}.ipynb", f"from model import Model_{n} as Net", "Net()", GOOD[n], params, "slash")
    (folder / "README.md").write_text("\n".join(readme) + "\n" + RF_TABLE)
    return Expected(verdicts(), params_of(source, "Model_3"), GOOD[3][-3:], says=["step 3 15"])


def readme_logs(folder: Path) -> Expected:
    """No notebooks: each step's log pasted into the README under it."""
    source = classic_files(folder, ["Model_1", "Model_2", "Model_3"], rf_comments=True)
    readme = []
    for n in (1, 2, 3):
        params = params_of(source, f"Model_{n}")
        readme.append(f"# Step {n}\n\n" + tra(TARGETS[n], results(params, GOOD[n]), "See the log.")
                      + "\n```\n" + log(GOOD[n], salt=folder.name) + "```\n")
    (folder / "README.md").write_text("\n".join(readme))
    return Expected(verdicts(), params_of(source, "Model_3"), GOOD[3][-3:], says=["a log pasted under it"])


def big_first_step(folder: Path) -> Expected:
    """Step 1 has millions of parameters, claimed as `6.3M`-style (cut off, not rounded); the budget is
    the final model's."""
    source = classic_files(folder, ["Model_1", "Model_2", "Model_3"], widths={1: BIG, 2: WIDTHS[2], 3: WIDTHS[3]})
    readme = []
    for n in (1, 2, 3):
        params = params_of(source, f"Model_{n}")
        shown = f"{int(params / 1e5) / 10:.1f}M" if n == 1 else params
        readme.append(f"# Step {n}\n\n" + tra(TARGETS[n], results(shown, GOOD[n]), "Fine."))
        step_notebook(folder / f"step{n}.ipynb", f"from model import Model_{n} as Net", "Net()", GOOD[n], params)
    (folder / "README.md").write_text("\n".join(readme) + "\n" + RF_TABLE)
    return Expected(verdicts(), params_of(source, "Model_3"), GOOD[3][-3:])


def best_is_last(folder: Path) -> Expected:
    """Step 2's "best" test accuracy is its last epoch's, not its best: reported as such, not false."""
    source = classic_files(folder, ["Model_1", "Model_2", "Model_3"])
    tests2 = GOOD[2][:-1] + [GOOD[2][-1] - 0.05]
    readme = []
    for n in (1, 2, 3):
        params = params_of(source, f"Model_{n}")
        t = tests2 if n == 2 else GOOD[n]
        claim = results(params, t).replace(f"{max(t):.2f}", f"{t[-1]:.2f}") if n == 2 else results(params, t)
        readme.append(f"# Step {n}\n\n" + tra(TARGETS[n], claim, "Fine."))
        step_notebook(folder / f"step{n}.ipynb", f"from model import Model_{n} as Net", "Net()", t, params)
    (folder / "README.md").write_text("\n".join(readme) + "\n" + RF_TABLE)
    return Expected(verdicts(), params_of(source, "Model_3"), GOOD[3][-3:], says=["is its last epoch's"])


def wrong_analysis(folder: Path) -> Expected:
    """An Analysis that the logs refute: overfitting while test stays above train, the target called
    achieved where it was not, an augmentation credited where the transforms did not change."""
    source = classic_files(folder, ["Model_1", "Model_2", "Model_3"])
    short = curve(98.6, 99.45, 15)[:-3] + [99.41, 99.36, 99.43]
    words = {1: "The model is overfitting, so step 2 regularises.", 2: "Fine.",
             3: "Adding rotation augmentation did it: target achieved."}
    readme = []
    for n in (1, 2, 3):
        params = params_of(source, f"Model_{n}")
        t = short if n == 3 else GOOD[n]
        readme.append(f"# Step {n}\n\n" + tra(TARGETS[n], results(params, t), words[n]))
        transforms = [("code", "train_transforms = transforms.Compose([transforms.RandomRotation((-7.0, 7.0)), "
                               "transforms.ToTensor()])")] if n >= 2 else []
        step_notebook(folder / f"step{n}.ipynb", f"from model import Model_{n} as Net", "Net()", t, params,
                      extra_cells=transforms)
    (folder / "README.md").write_text("\n".join(readme) + "\n" + RF_TABLE)
    return Expected(verdicts(("holds",)), params_of(source, "Model_3"), short[-3:],
                    says=["says 'The model is overfitting", "target achieved", "credits 'rotation'"])


def wrong_rf(folder: Path) -> Expected:
    """A receptive-field table with values no layer has (the jump after the pool forgotten)."""
    source = classic_files(folder, ["Model_1", "Model_2", "Model_3"])
    wrong = RF_TABLE.replace("| 10 |", "| 8 |").replace("| 14 |", "| 10 |").replace("| 18 |", "| 12 |")
    three_steps(folder, source, rf=wrong)
    return Expected(verdicts(("rf",)), params_of(source, "Model_3"), GOOD[3][-3:], says=["8, 12"])


def consistent_no_rf(folder: Path) -> Expected:
    """"Consistently" said of a final run whose last three hold: no failure; no RF calculation anywhere."""
    source = classic_files(folder, ["Model_1", "Model_2", "Model_3"])
    three_steps(folder, source, analysis={3: "Consistently above 99.4% at the end."}, rf="")
    return Expected(verdicts(("rf",)), params_of(source, "Model_3"), GOOD[3][-3:],
                    says=["no receptive-field calculation found", "says 'Consistently'"])


def four_steps(folder: Path) -> Expected:
    """Another edition: four steps, fewer than 10,000 parameters (the final model has 8,000 to 10,000)."""
    source = classic_files(folder, ["Model_1", "Model_2", "Model_3", "Model_4"])
    readme = []
    for n in (1, 2, 3, 4):
        params = params_of(source, f"Model_{n}")
        readme.append(f"# Step {n}\n\n" + tra(TARGETS[n], results(params, GOOD[n]), "Fine."))
        step_notebook(folder / f"step{n}.ipynb", f"from model import Model_{n} as Net", "Net()", GOOD[n], params)
    (folder / "README.md").write_text("\n".join(readme) + "\n" + RF_TABLE)
    assert 8000 <= params_of(source, "Model_4") < 10_000
    return Expected(verdicts(), params_of(source, "Model_4"), GOOD[4][-3:], rubric="four-steps")


def over_budget_and_long(folder: Path) -> Expected:
    """The final model over the budget, trained 20 epochs: both limits fail, the target is judged anyway."""
    source = classic_files(folder, ["Model_1", "Model_2", "Model_3"], widths={1: WIDTHS[1], 2: WIDTHS[2], 3: WIDTHS[4]})
    tests = curve(98.6, 99.5, 20, hold_from=12)
    three_steps(folder, source, {3: tests})
    return Expected(verdicts(("budget", "epochs")), params_of(source, "Model_3"), tests[-3:],
                    says=["not fewer than 8,000", "20 epochs logged"])


def copied(folder: Path, wording: str) -> Expected:
    """Two students whose final logs are the same line for line (written apart, the README reworded)."""
    source = classic_files(folder, ["Model_1", "Model_2", "Model_3"])
    three_steps(folder, source, analysis={n: "Fine" + wording for n in (1, 2, 3)}, heading="## Step {n}", salt="copied")
    return Expected(verdicts(), params_of(source, "Model_3"), GOOD[3][-3:])


def blocks_without_headings(folder: Path) -> Expected:
    """No step headings at all: blocks of Target / Results / Analysis separated by rules, each ending on
    a link to its notebook (`...F1.ipynb`)."""
    source = classic_files(folder, ["Model_1", "Model_2", "Model_3"])
    blocks = []
    for n in (1, 2, 3):
        params = params_of(source, f"Model_{n}")
        blocks.append(f"Target:\n{TARGETS[n]}.\n\nResults:\n{results(params, GOOD[n])}\n\nAnalysis:\nAs hoped.\n"
                      f"https://github.com/someone/era/blob/main/S7F{n}.ipynb\n")
        step_notebook(folder / f"S7F{n}.ipynb", f"from model import Model_{n} as Net", "Net()", GOOD[n], params)
    (folder / "README.md").write_text("# Session 7\n" + "\n-----\n".join(blocks) + "\n" + RF_TABLE)
    return Expected(verdicts(), params_of(source, "Model_3"), GOOD[3][-3:])


def parts_in_code_blocks(folder: Path) -> Expected:
    """`**Target:**` and the others each followed by a fenced block holding the list."""
    source = classic_files(folder, ["Model_1", "Model_2", "Model_3"], rf_comments=True)
    readme = []
    for n in (1, 2, 3):
        params = params_of(source, f"Model_{n}")
        readme.append(f"## Model {n}\n\n**Target:**\n```\n1. {TARGETS[n]}\n```\n\n**Results:**\n```\n"
                      f"{results(params, GOOD[n])}\n```\n**Analysis:**\n```\n1. Steady.\n```\n")
        step_notebook(folder / f"S7_{n}.ipynb", f"from model import Model_{n}", f"Model_{n}()", GOOD[n], params)
    (folder / "README.md").write_text("\n".join(readme))
    return Expected(verdicts(), params_of(source, "Model_3"), GOOD[3][-3:])


def module_lines(folder: Path) -> Expected:
    """Plain `MODULE-1` lines and indented `##TARGET##` labels (no Markdown headings), models numbered from 0."""
    source = classic_files(folder, ["Model0", "Model1", "Model2"], rf_comments=True)
    readme = []
    for k, n in enumerate((1, 2, 3)):
        params = params_of(source, f"Model{k}")
        readme.append(f"MODULE-{n}\n          ##TARGET##\n1) {TARGETS[n]}\n\n        ##RESULTS##\n"
                      f"1) Parameters are {params:,}\n\n      ##ANALYSIS##\n1) It learns.\n")
        step_notebook(folder / f"module{n}.ipynb", f"from model import Model{k} as Net", "Net()", GOOD[n], params)
    (folder / "README.md").write_text("# Modules\n\n" + "\n".join(readme))
    return Expected(verdicts(), params_of(source, "Model2"), GOOD[3][-3:])


LATEX_RF = ("| Layer | $\\mathbf{K}$ | $\\mathbf{J}_{\\text{in}}$ | $\\mathbf{RF}_{\\text{in}}$ | "
            "$\\mathbf{RF}_{\\text{out}}$ |\n|:-:|:-:|:-:|:-:|:-:|\n| **Input** | - | 1 | 1 | 1 |\n"
            "| **Conv1** | 3 | 1 | 1 | $1 + (3 - 1) \\times 1 = 3$ |\n| **Conv2** | 3 | 1 | 3 | $3 + 2 \\times 1 = 5$ |\n"
            "| **Pool** | 2 | 1 | 5 | $5 + 1 \\times 1 = 6$ |\n| **Conv3** | 3 | 2 | 6 | $6 + 2 \\times 2 = 10$ |\n")


def final_only_latex(folder: Path) -> Expected:
    """Only a final architecture written up (named in its heading, one of several model files), a LaTeX
    receptive-field table, the log pasted under a second final heading; no steps, no notebooks."""
    for n, name in ((1, "TryOne"), (2, "TryTwo")):
        classic_files(folder, [name], f"Model{n}.py", {1: WIDTHS[n]})
    source = classic_files(folder, ["SlimNetV9"], "Final_Model.py", {1: WIDTHS[3]})
    tests = GOOD[3]
    (folder / "README.md").write_text(
        "# Under 8k\n\n## The Final Architecture: SlimNetV9\n\nFive 3x3 blocks, one pool, GAP.\n\n" + LATEX_RF
        + "\n## Final Model Training Log (SlimNetV9)\n\n```\n" + log(tests, salt=folder.name) + "```\n")
    return Expected(verdicts(("steps", "texts")), params_of(source, "SlimNetV9"), tests[-3:],
                    says=["Final_Model.py:SlimNetV9"])


CORPUS = {
    "code-headings": code_headings,
    "caps-five": caps_five,
    "iter-nets": iter_nets,
    "bold-class-one-notebook": bold_class_one_notebook,
    "notebook-steps-src": notebook_steps_src,
    "readme-table": readme_table,
    "pictures-only": pictures_only,
    "linked-headings": linked_headings,
    "cloned-package": cloned_package,
    "module-alias": module_alias,
    "one-notebook-redefined": one_notebook_redefined,
    "exploratory-runs": exploratory_runs,
    "stopped-run": stopped_run,
    "scheduler-lines": scheduler_lines,
    "readme-logs": readme_logs,
    "big-first-step": big_first_step,
    "best-is-last": best_is_last,
    "wrong-analysis": wrong_analysis,
    "wrong-rf": wrong_rf,
    "consistent-no-rf": consistent_no_rf,
    "four-steps": four_steps,
    "over-budget-and-long": over_budget_and_long,
    "blocks-without-headings": blocks_without_headings,
    "parts-in-code-blocks": parts_in_code_blocks,
    "module-lines": module_lines,
    "final-only-latex": final_only_latex,
    "copy-ann": lambda folder: copied(folder, "."),
    "copy-ben": lambda folder: copied(folder, ", as planned."),
}
