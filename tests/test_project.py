"""Your own three steps: `tinycnn init` (the starter), a project trained briefly, `tinycnn report DIR`,
`tinycnn check` on this repository (it passes), on the fresh project (it fails, and says why) and
on projects broken on purpose, one rule each; docs/challenge-yourself.md as written."""
import json
import re
import shutil
from pathlib import Path

import pytest
from conftest import ROOT, call_cli, one_line_error, run_cli
from test_model_file import doc_block

SHORTER = {"train_subset = 0": "train_subset = 2000", "test_subset = 0": "test_subset = 1000",
           "seeds = [0, 1, 2]": "seeds = [0, 1]"}
WRITTEN = {  # a Target with a why and an Analysis with placeholders, for every step
    "target": 'target = """Hold the target with {params} parameters, because the steps before showed the way."""\n',
    "analysis": 'analysis = """{passing} seeds hold; the last-3 mean is {last3_mean}."""\n',
}


def shorten(project, epochs: int, texts: bool = False):
    """The "edit" step of docs/challenge-yourself.md: runs of `epochs` epochs on 2,000 images, two seeds (and, when
    asked, the Target and Analysis written)."""
    for path in (project / "experiments").glob("step*.toml"):
        text = path.read_text()
        for old, new in {**SHORTER, "epochs = 15": f"epochs = {epochs}"}.items():
            text = text.replace(old, new)
        if texts:
            text = re.sub(r'target = """.*?"""\n', WRITTEN["target"], text, flags=re.S)
            text = re.sub(r'analysis = """.*?"""\n', WRITTEN["analysis"], text, flags=re.S)
        path.write_text(text)


def checklist(capsys, project, *options) -> tuple[int, dict]:
    """`tinycnn check --json`, called in this process (the command as typed: the run-as-written tests)."""
    result = call_cli(capsys, "check", project, "--json", *options)
    return result.returncode, {rule["name"]: rule for rule in json.loads(result.stdout)["rules"]}


@pytest.fixture(scope="module")
def readme_run(tmp_path_factory) -> tuple[Path, dict]:
    """docs/challenge-yourself.md's commands, each as written, in a temporary folder;
    between `init` and the runs, the "edit" the page asks for is this test's: runs of three
    epochs (the challenge scores three) on 2,000 images, two seeds. Returns the project and each
    command's result."""
    commands = [line.split("#")[0].strip() for line in doc_block("challenge-yourself.md", "bash").splitlines()]
    assert commands[0] == "tinycnn init my-challenge" and commands[1] == "cd my-challenge", commands
    tmp = tmp_path_factory.mktemp("readme")
    results = {commands[0]: run_cli(*commands[0].split()[1:], cwd=tmp)}
    project = tmp / "my-challenge"
    shorten(project, epochs=3)
    for command in commands[2:]:
        results[command] = run_cli(*command.split()[1:], cwd=project)
    return project, results


@pytest.fixture(scope="module")
def trained(readme_run, tmp_path_factory) -> Path:
    """That project with its Target and Analysis texts written (texts are not settings: the runs stand)."""
    project = tmp_path_factory.mktemp("written") / "mine"
    shutil.copytree(readme_run[0], project)
    shorten(project, epochs=3, texts=True)
    assert run_cli("report", project).returncode == 0
    return project


def test_init_writes_a_project_in_plain_pytorch_and_never_overwrites(tmp_path, capsys, monkeypatch):
    project = tmp_path / "new"
    result = call_cli(capsys, "init", project)
    assert result.returncode == 0, result.stderr
    assert sorted(p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file()) == [
        ".gitignore", "README.md", "experiments/step1.toml", "experiments/step2.toml", "experiments/step3.toml",
        "model.py"]
    assert "tinycnn" not in (project / "model.py").read_text().split('"""', 2)[2]  # plain PyTorch, no tinycnn imports
    monkeypatch.chdir(project)
    for step in (1, 2, 3):
        summary = call_cli(capsys, "summary", f"model.py:Model_{step}")
        assert summary.returncode == 0 and "covers the whole 28x28 input" in summary.stdout, summary.stderr
        assert f'model = "../model.py:Model_{step}"' in (project / "experiments" / f"step{step}.toml").read_text()
    line = one_line_error(call_cli(capsys, "init", project))
    assert "not an empty folder" in line and "never overwrites" in line
    assert "not an empty folder" in one_line_error(call_cli(capsys, "init", project / "model.py"))


def test_this_repository_passes_its_own_check(capsys):
    result = call_cli(capsys, "check", ROOT)
    assert result.returncode == 0, result.stdout
    assert result.stdout.count("PASS") == 8 and "all rules pass" in result.stdout
    assert "step3: 20/20 seeds hold 99.40% on each of epochs 12-14" in result.stdout


def test_the_trained_project_passes_where_the_edition_allows(trained, capsys):
    """With a target a brief run reaches, every rule passes: the rules check what they say."""
    code, rules = checklist(capsys, trained, "--target", "5")
    assert code == 0, {n: r["evidence"] for n, r in rules.items() if not r["passed"]}
    assert "| [Step 3](experiments/step3.toml) | `model.py:Model_3` | 6,226 |" in (trained / "README.md").read_text()


def broken(trained, tmp_path, name):
    copy = tmp_path / name
    shutil.copytree(trained, copy)
    return copy


@pytest.mark.parametrize("rule, options, says", [
    ("budget", ["--budget", "6200"], "over: step2, step3"),
    ("holds", [], "failing: seeds 0, 1"),
    ("steps", ["--steps", "4"], "expected step1, step2, step3, step4"),
])
def test_each_option_of_the_edition_is_a_rule(trained, rule, options, says, capsys):
    code, rules = checklist(capsys, trained, "--target", "5", *options) if rule != "holds" else checklist(capsys, trained)
    assert code == 1 and not rules[rule]["passed"] and says in rules[rule]["evidence"], rules[rule]


@pytest.mark.parametrize("rule, breaks, says", [
    ("steps", lambda p: (p / "experiments" / "step3.toml").unlink(), "found step1, step2, expected step1, step2, step3"),
    ("epochs", lambda p: edit(p / "experiments" / "step2.toml", "epochs = 3", "epochs = 16"), "step2 16"),
    ("texts", lambda p: edit(p / "experiments" / "step1.toml", "because", "and"), "step1: the Target does not say why"),
    ("figures", lambda p: edit(p / "experiments" / "step2.toml", "{last3_mean}.", "{last3_mean}, best 97.31%."),
     "step2 analysis: 97.31% is not in the metrics (nearest:"),
    ("provenance", lambda p: edit(p / "model.py", "import torch.nn as nn", "import torch.nn as nn  # edited"),
     "step1: its metrics were made with"),
])
def test_a_project_broken_on_purpose_fails_that_rule(trained, tmp_path, rule, breaks, says, capsys):
    project = broken(trained, tmp_path, rule)
    breaks(project)
    code, rules = checklist(capsys, project, "--target", "5")
    assert code == 1 and not rules[rule]["passed"] and says in rules[rule]["evidence"], rules[rule]


SMALL_FIELD = """

class Model_1(nn.Module):  # redefined: a strided convolution that never sees the last 3 rows and columns
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 10, 5, stride=5)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x):
        return self.head(self.conv(x))
"""


def test_a_model_that_cannot_see_the_whole_digit_fails_rf(trained, tmp_path, capsys):
    project = broken(trained, tmp_path, "rf")
    (project / "model.py").write_text((project / "model.py").read_text() + SMALL_FIELD)
    code, rules = checklist(capsys, project, "--target", "5")
    assert code == 1 and not rules["rf"]["passed"], rules["rf"]
    assert "Model_1 25 px" in rules["rf"]["evidence"] and "short of the 28-pixel input: Model_1" in rules["rf"]["evidence"]


def edit(path, old, new):
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new))


def test_the_readme_commands_for_your_own_three_steps_work_as_written(readme_run):
    project, results = readme_run
    for command, result in results.items():
        if command == "tinycnn check .":  # the starter does not hold yet, and its texts are to be written
            assert result.returncode == 1 and "FAIL  texts" in result.stdout and "FAIL  holds" in result.stdout
        else:
            assert result.returncode == 0, (command, result.stderr)
    assert (project / "reports" / "step3.md").is_file()
    assert "| [Step 1](experiments/step1.toml) | `model.py:Model_1` |" in (project / "README.md").read_text()


def test_a_fresh_project_fails_its_check_where_it_should_and_says_why(readme_run, capsys):
    code, rules = checklist(capsys, readme_run[0])
    assert code == 1
    assert not rules["texts"]["passed"] and "step1: the Target is not written yet" in rules["texts"]["evidence"]
    assert not rules["holds"]["passed"] and "0/2 seeds hold 99.40% on each of epochs 1-3" in rules["holds"]["evidence"]
    assert all(rules[name]["passed"] for name in ("steps", "budget", "epochs", "figures", "rf", "provenance")), rules


def test_check_and_report_of_a_folder_that_is_no_project_are_one_line(tmp_path, capsys):
    """A folder without experiments/ is a submission as handed in (test_grading.py): an empty one says so."""
    assert "an empty folder (nothing handed in)" in one_line_error(call_cli(capsys, "check", tmp_path))
    assert "no such folder or file" in one_line_error(call_cli(capsys, "check", tmp_path / "absent"))
    assert "no such project folder" in one_line_error(call_cli(capsys, "report", tmp_path / "absent"))


def test_a_projects_model_file_is_imported_only_in_a_child(trained, tmp_path, capsys, monkeypatch):
    """`tinycnn check` on a tinycnn project builds its model.py only in the sandbox, as for a submission."""
    project = tmp_path / "marked"
    shutil.copytree(trained, project)
    (project / "model.py").write_text((project / "model.py").read_text() + "\nopen('imported-here', 'w').write('x')\n")
    monkeypatch.chdir(tmp_path)
    code, rules = checklist(capsys, project, "--target", "5")
    assert rules["budget"]["passed"] and not rules["provenance"]["passed"]  # built, measured; the file changed
    assert not list(tmp_path.rglob("imported-here"))
