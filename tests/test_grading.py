"""`tinycnn check` on submissions as handed in (README, notebooks with their logs, model.py): one that
passes every rule, one broken on purpose per rule, another edition, Gradescope's file, a class at
once, and bad input in one line. The student's model.py runs only in a sandboxed child."""

import csv
import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT, call_cli, one_line_error, run_cli
from grading_corpus import CORPUS
from grading_fixtures import (
    BIG,
    FOURTH,
    LOGS,
    MODEL_PY,
    log_text,
    params_of,
    unchanged,
    write_runnable,
    write_submission,
)

from tinycnn.evidence.grading.claims import claims_in
from tinycnn.evidence.grading.logs import runs_in
from tinycnn.evidence.grading.writeup import steps_in
from tinycnn.evidence.parallel import default_workers

RULES = ["steps", "texts", "budget", "epochs", "holds", "figures", "rf"]


def checked(capsys, *args) -> tuple[int, dict]:
    result = call_cli(capsys, "check", *map(str, args), "--json")
    assert result.stderr == "", result.stderr
    report = json.loads(result.stdout)
    return result.returncode, {rule["name"]: rule for rule in report["rules"]}


def test_a_submission_that_keeps_every_rule_passes_and_its_folder_is_left_alone(tmp_path, capsys):
    folder = write_submission(tmp_path / "alice")
    before = unchanged(folder)
    code, rules = checked(capsys, folder)
    assert code == 0 and list(rules) == RULES and all(r["passed"] for r in rules.values()), rules
    assert f"model.py:Model1 {params_of(MODEL_PY, 'Model1'):,}" in rules["budget"]["evidence"]
    assert "last 3 logged test accuracies 99.45% / 99.45% / 99.45%" in rules["holds"]["evidence"]
    assert "12 claimed figures, each as the code and logs give" in rules["figures"]["evidence"]
    assert unchanged(folder) == before  # the child worked on a copy


LAST = LOGS[3][:-1] + [(97.8, 99.35)]
BIG_FINAL = BIG.replace("class Model2(Model1):", "class Model3(Model1):")
BROKEN = {  # rule: (how, what its one line says)
    "steps": (dict(steps=2, logs={2: LOGS[3]}), "2 steps, not the 3 steps asked for"),
    "texts": (dict(words={1: {"target": "Skeleton."}}), "step 1: the Target does not say why"),
    "budget": (
        dict(model_py=MODEL_PY + BIG_FINAL),
        f"Model3 has {params_of(MODEL_PY + BIG_FINAL, 'Model3'):,} parameters, not fewer than 8,000",
    ),
    "epochs": (dict(logs={3: LOGS[3] + LOGS[3][-5:]}), "step 3: 20 epochs logged in step3.ipynb cell 2, more than 15"),
    "holds": (dict(logs={3: LAST}), "99.45% / 99.45% / 99.35%, not each >= 99.40%"),
    "figures": (
        dict(words={1: {"result": "Parameters: 1,234\n- Best test accuracy: 99.50%"}}),
        "step 1: claims 'Parameters: 1,234', the code has",
    ),
    "rf": (dict(rf_table="| conv1 | 4 |"), "receptive fields written that no layer of model.py:Model3 has: 4"),
}
SUMMARY = (dict(summary_params={2: 6_000}), "step 2: its summary table says 6,000 parameters")


@pytest.mark.parametrize("rule", list(BROKEN))
def test_a_submission_broken_on_purpose_fails_that_rule_alone_saying_why(rule, tmp_path, capsys):
    how, says = BROKEN[rule]
    code, rules = checked(capsys, write_submission(tmp_path / rule, **how))
    failed = [name for name, r in rules.items() if not r["passed"]]
    assert code == 1 and failed == [rule], {n: rules[n]["evidence"] for n in failed}
    assert says in rules[rule]["evidence"], rules[rule]["evidence"]


def test_a_summary_table_of_another_model_fails_figures(tmp_path, capsys):
    how, says = SUMMARY
    code, rules = checked(capsys, write_submission(tmp_path / "other", **how))
    assert code == 1 and [n for n, r in rules.items() if not r["passed"]] == ["figures"]
    assert says in rules["figures"]["evidence"]


def test_consistently_said_of_a_holding_run_passes_and_is_noted(tmp_path, capsys):
    folder = write_submission(tmp_path / "con", words={3: {"analysis": "It stays consistently above 99.4% at the end."}})
    result = call_cli(capsys, "check", folder, "--json")
    report = json.loads(result.stdout)
    assert result.returncode == 0 and report["passed"], report["rules"]
    assert any("step 3 says 'consistently'" in note and "--rerun K" in note for note in report["notes"]), report["notes"]


def test_another_edition_four_steps_and_a_larger_budget(tmp_path, capsys):
    folder = write_submission(tmp_path / "four", steps=4, model_py=MODEL_PY + FOURTH)
    code, rules = checked(capsys, folder)
    assert code == 1 and not rules["steps"]["passed"] and not rules["budget"]["passed"]
    code, rules = checked(capsys, folder, "--steps", "4", "--budget", "10000")
    assert code == 0, {n: r["evidence"] for n, r in rules.items() if not r["passed"]}
    code, rules = checked(capsys, folder, "--rubric", "four-steps")
    assert code == 0, {n: r["evidence"] for n, r in rules.items() if not r["passed"]}


def test_the_gradescope_file_has_a_test_per_rule_and_a_leaderboard(tmp_path, capsys):
    folder = write_submission(tmp_path / "bob", logs={3: LAST})
    result = call_cli(capsys, "check", folder, "--gradescope", tmp_path / "results.json")
    assert result.returncode == 1 and "FAIL  holds" in result.stdout and "NOTE  tied: step 1" in result.stdout
    graded = json.loads((tmp_path / "results.json").read_text())
    assert [t["name"] for t in graded["tests"]] == [*RULES, "notes"] and graded["score"] == 6
    for test in graded["tests"][:-1]:
        assert set(test) == {"name", "score", "max_score", "status", "output", "visibility"}
        assert test["max_score"] == 1 and test["visibility"] == "visible"
        assert (test["status"], test["score"]) == (("failed", 0) if test["name"] == "holds" else ("passed", 1))
    assert graded["tests"][-1]["max_score"] == 0 and "one logged run per step" in graded["tests"][-1]["output"]
    assert graded["leaderboard"][0] == {"name": "parameters", "value": params_of(MODEL_PY, "Model3"), "order": "asc"}


def test_a_class_at_once_one_table_and_one_broken_submission_stops_nothing(tmp_path, capsys):
    write_submission(tmp_path / "class" / "ann")
    write_submission(tmp_path / "carl", logs={3: LAST})
    with zipfile.ZipFile(tmp_path / "class" / "carl.zip", "w") as archive:
        for path in (tmp_path / "carl").rglob("*"):
            archive.write(path, f"carl/{path.relative_to(tmp_path / 'carl')}")
    (tmp_path / "class" / "dora.zip").write_bytes(b"not a zip at all")
    result = call_cli(capsys, "check", *sorted((tmp_path / "class").iterdir()), "--table", tmp_path / "grades")
    assert result.returncode == 1
    rows = list(csv.DictReader((tmp_path / "grades.csv").open()))
    assert [(r["submission"], r["verdict"]) for r in rows] == [
        ("ann", "PASS"),
        ("carl.zip", "FAIL"),
        ("dora.zip", "ERROR"),
    ]
    assert rows[1]["failing rules"] == "holds" and "neither a folder nor a .zip file" in rows[2]["failing rules"]
    assert rows[0]["similar to"] == "same model code as carl.zip"  # the logs differ; the model code is one
    assert (
        rows[0]["parameters"] == str(params_of(MODEL_PY, "Model3"))
        and rows[0]["last 3 epochs"] == "99.45 / 99.45 / 99.45"
    )
    assert (tmp_path / "grades.md").read_text().startswith("| submission | verdict |")


def test_bad_input_is_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert "an empty folder" in one_line_error(call_cli(capsys, "check", tmp_path / "empty"))
    (tmp_path / "bare").mkdir()
    (tmp_path / "bare" / "model.py").write_text(MODEL_PY)
    assert "no write-up" in one_line_error(call_cli(capsys, "check", tmp_path / "bare"))
    (tmp_path / "bare" / "README.md").write_text("# My network\n\nIt works.\n")
    graded = call_cli(capsys, "check", tmp_path / "bare")  # never "no steps found": graded, saying what is missing
    assert graded.returncode == 1 and "FAIL  steps       no step is written up" in graded.stdout, graded.stdout
    damaged = write_submission(tmp_path / "damaged")
    (damaged / "step2.ipynb").write_text('{"cells": [')
    assert "step2.ipynb: not a readable notebook" in one_line_error(call_cli(capsys, "check", damaged), code=1)
    (tmp_path / "x.zip").write_text("no")
    assert "neither a folder nor a .zip file" in one_line_error(call_cli(capsys, "check", tmp_path / "x.zip"))


def test_a_model_file_that_fails_or_lacks_a_model_fails_budget_with_its_error(tmp_path, capsys):
    broken = write_submission(tmp_path / "broken", model_py=MODEL_PY + "\nraise RuntimeError('half-written')\n",
                              counted=MODEL_PY)
    code, rules = checked(capsys, broken)
    assert code == 1 and "RuntimeError: half-written" in rules["budget"]["evidence"], rules["budget"]
    (tmp_path / "outputs").mkdir()
    silent = write_submission(tmp_path / "outputs" / "silent", logs={3: []})
    code, rules = checked(capsys, silent)
    assert "step 3: no training log found" in rules["epochs"]["evidence"], rules["epochs"]


def test_steps_parts_and_claims_are_read_in_the_spellings_people_use():
    text = (
        "# Model 3 - [Notebook](x.ipynb)\n\n**Target:** fewer weights, because 7k is too many\n\n"
        "### Results\n- Parameters : 7.4k\n- Best Train Accuracy: 99.1234\n- Best Test Accuracy: 0.9952\n"
        "\n## Analysis\nFrom the 12th epoch on it holds.\n\n## Final model\n\n__Target__ - none\n"
    )
    first, final = steps_in(text, "README.md")
    assert (first.number, final.number) == (3, None) and set(first.parts) == {"target", "result", "analysis"}
    claims = claims_in(first.parts["result"] + "\n" + first.parts["analysis"])
    assert (claims.params.value, claims.params.low, claims.params.high) == (7400, 7350, 7500)
    assert (claims.best_train.value, claims.best_test.value, claims.reached_epoch) == (99.1234, 99.52, 12)
    assert claims_in("Total params: 1622").params.value == 1622
    six = claims_in("6.3M params").params  # 6,379,786 written 6.3M: cut off, not rounded, and not false
    assert six.value == 6_300_000 and six.low <= 6_379_786 < six.high
    headings = ["Code-1 - [link](x.ipynb)", "CODE 5", "iter 3", "Attempt 2", "**class Model1()**", "Second model",
                "🚀 Step 4: wider (Model 4)", "Experiment 6", "1. Model 7"]
    found = [s.number for h in headings for s in steps_in((h if h.startswith("**") else f"## {h}") + "\n\nTarget: x\n",
                                                          "README.md")]
    assert found == [1, 5, 3, 2, 1, 2, 4, 6, 7], found
    assert steps_in("## Model Architecture\n\nTarget: x\n## Three-Step Process\n", "README.md")[0].named is False
    assert claims_in("7,712 parameters, consistently").consistent == "consistently"


def test_logs_are_read_as_printed_and_with_a_pattern_of_your_own():
    (log,) = runs_in(
        "Total params: 7,712\nEPOCH: 0\nLoss=0.2 Accuracy=91.50: 100%\nTest set: Average loss: 0.05, "
        "Accuracy: 9871/10000 (99%)\nEPOCH - 1\nEpoch 00011: reducing learning rate of group 0 to 1.0000e-03.\n"
        "Adjusting learning rate of group 0 to 1.0000e-02.\nTrain set: Average loss: 0.1, Accuracy: 59000/60000 "
        "(98.33%)\nTest set: Average loss: 0.04, accuracy: 9945/10000 (99.45000%)\n",
        "pasted",
    )
    assert (log.test, log.train, log.total_params) == ([98.71, 99.45], [91.5, 98.333333], 7712)
    again = runs_in("epoch num ==== 1\nEpoch 1/15 Train Acc: 93.2 | Test Acc: 99.1\nEpoch: 2 Test Accuracy: 99.30%\n"
                    "Epoch 1/15 Train Acc: 90.0 | Test Acc: 98.0\n", "pasted")
    assert [r.test for r in again] == [[99.1, 99.3], [98.0]]  # the labels start again: a second run
    assert runs_in("1/1 - loss: 0.1 - accuracy: 0.97 - val_accuracy: 0.9912", "x")[0].test == [99.12]
    (spaced,) = runs_in("Epoch 13: train accuracy 99.10%, test accuracy 99.44%\nEpoch 14: test accuracy 99.46 %\n"
                        "Epoch 15: test accuracy 99.45 after 15 epochs\n", "x")  # no separator: only with a % sign
    assert (spaced.test, spaced.train) == ([99.44, 99.46], [99.1])
    assert runs_in("ep 1 top1 98.5\nep 2 top1 99.5", "x", r"top1 (?P<acc>[\d.]+)")[0].test == [98.5, 99.5]


def test_the_readme_for_teachers_runs_as_written(tmp_path):
    """The README's "For teachers" commands, each as a teacher types it, on a submission and a class."""
    section = (ROOT / "README.md").read_text().split("### For teachers\n")[1].split("\n### ")[0]
    commands = [line.split("#")[0].split() for line in section.split("```bash\n")[1].split("```")[0].splitlines()]
    write_submission(tmp_path / "submission")
    write_submission(tmp_path / "submissions" / "ann")
    write_submission(tmp_path / "submissions" / "carl", logs={3: LAST})
    assert all(command[0] == "tinycnn" for command in commands), commands
    results = [run_cli(*expand(command[1:], tmp_path), cwd=tmp_path) for command in commands]
    single, gradescope, whole_class = results
    assert single.returncode == 0 and single.stdout.rstrip().endswith("all rules pass"), single.stdout
    assert gradescope.returncode == 0 and json.loads((tmp_path / "results.json").read_text())["score"] == len(RULES)
    assert whole_class.returncode == 1 and "| carl | FAIL | 6/7 |" in (tmp_path / "grades.md").read_text()
    assert (tmp_path / "grades.csv").is_file()


def expand(args: list[str], folder) -> list[str]:
    """What a shell passes for `submissions/*`: each match, relative to the folder the command runs in."""
    return [
        str(p.relative_to(folder)) if "*" in a else a
        for a in args
        for p in (sorted(folder.glob(a)) if "*" in a else [a])
    ]


def test_rerun_executes_the_final_notebook_as_written_on_forced_seeds(tmp_path, capsys):
    """Two seeds of a real notebook (two short epochs): each forced over the notebook's own
    torch.manual_seed(1), so the two logs differ; MNIST is where the notebook looks for it."""
    folder = write_submission(tmp_path / "eve")
    write_runnable(folder / "step3.ipynb", log_text(LOGS[3], params_of(MODEL_PY, "Model3")))
    before = unchanged(folder)
    code, rules = checked(capsys, folder, "--rerun", "2", "--python", sys.executable)  # it needs no torchvision
    rerun = rules["rerun"]
    assert code == 1 and not rerun["passed"] and "step3.ipynb as written, 2 seeds: 0/2 hold" in rerun["evidence"]
    runs = rerun["details"]
    assert [r["seed"] for r in runs] == [0, 1] and all(len(r["test"]) == 2 and not r["error"] for r in runs), runs
    assert runs[0]["test"] != runs[1]["test"]  # the forced seed won over the notebook's constant
    assert unchanged(folder) == before  # its data and outputs went to the copy


def test_rerun_with_one_recipe_trains_the_final_model_class_on_seeds(tmp_path, capsys):
    folder = write_submission(tmp_path / "fay")
    recipe = tmp_path / "recipe.toml"
    recipe.write_text("[train]\nepochs = 3\ntrain_subset = 640\ntest_subset = 500\nema = 0.9\nprocesses = 1\n")
    code, rules = checked(capsys, folder, "--rerun", "2", "--recipe", recipe)
    runs = rules["rerun"]["details"]
    at_once = " (2 seeds at a time)" if default_workers() >= 2 else ""  # one process of one thread a seed
    assert f"recipe recipe.toml{at_once}, 2 seeds:" in rules["rerun"]["evidence"]
    assert [len(r["test"]) for r in runs] == [3, 3] and runs[0]["test"] != runs[1]["test"], runs
    recipe.write_text('[train]\nmodel = "Model_3"\n')
    assert "a recipe sets training settings only" in one_line_error(
        call_cli(capsys, "check", folder, "--rerun", "1", "--recipe", recipe)
    )


def seed_children(marker: str) -> list[int]:
    """The processes whose command line holds `marker` (a recipe setting no other run uses)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and marker in (proc / "cmdline").read_bytes().decode(errors="replace"):
                found.append(int(proc.name))
        except OSError:  # gone meanwhile
            pass
    return found


def test_a_class_rerun_stopped_with_kill_leaves_no_seed_running(tmp_path):
    """`kill PID` while a recipe's seeds run side by side: each worker kills its seed's child (which
    has a session of its own) on the way out."""
    folder = write_submission(tmp_path / "ida")
    marker = "0.0123457"  # the learning rate: it is in each seed's command line and nowhere else
    # long (it is stopped), one process a seed (so the seeds run side by side, not one after the other)
    (tmp_path / "recipe.toml").write_text(f"[train]\nepochs = 15\nlr = {marker}\nprocesses = 1\n")
    check = subprocess.Popen([sys.executable, "-m", "tinycnn.cli", "check", folder, "--rerun", "2", "--recipe",
                              tmp_path / "recipe.toml"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while len(seed_children(marker)) < min(2, default_workers()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(seed_children(marker)) == min(2, default_workers()), "the seeds never started side by side"
    check.terminate()
    check.communicate(timeout=60)
    assert check.returncode != 0
    deadline = time.monotonic() + 10  # a killed child may take a moment to leave the process table
    while seed_children(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert seed_children(marker) == []


def test_a_submissions_code_runs_only_in_the_child_on_a_copy(tmp_path, capsys, monkeypatch):
    """A model.py that writes a file when imported: the file appears neither in the submission nor
    where tinycnn runs (the child imports it, in its copy, which is thrown away)."""
    monkeypatch.chdir(tmp_path)
    folder = write_submission(
        tmp_path / "gil", model_py=MODEL_PY + "\nopen('imported-here', 'w').write('x')\n", counted=MODEL_PY
    )
    code, rules = checked(capsys, folder)
    assert rules["budget"]["passed"] and "model.py:Model1 7,578" in rules["budget"]["evidence"]
    assert not list(tmp_path.rglob("imported-here"))


def test_a_rubric_file_requires_files_and_weighs_the_rules(tmp_path, capsys):
    CORPUS["iter-nets"](tmp_path / "iter")
    rubric = tmp_path / "s7.toml"
    rubric.write_text('name = "S7"\nrequired_files = ["model.py"]\nrequired_classes = ["Model_1", "Model_2", '
                      '"Model_3"]\n[points]\nholds = 4\nfiles = 2\n')
    result = call_cli(capsys, "check", tmp_path / "iter", "--rubric", rubric, "--gradescope", tmp_path / "r.json")
    assert result.returncode == 1 and "FAIL  files       no model.py; Model_1, Model_2, Model_3 not defined" in result.stdout
    graded = json.loads((tmp_path / "r.json").read_text())
    points = {t["name"]: (t["score"], t["max_score"]) for t in graded["tests"]}
    assert points["holds"] == (4, 4) and points["files"] == (0, 2) and graded["score"] == 10
    for text, says in (("steps = 0\n", "steps = 0 must be at least 1"), ("limits = \"some\"\n", '"final" or "all"'),
                       ("[points]\nspeed = 1\n", "points for unknown rule(s) speed"), ("budget = \"8k\"\n", "is not a int")):
        rubric.write_text(text)
        assert says in one_line_error(call_cli(capsys, "check", tmp_path / "iter", "--rubric", rubric))
    assert "neither a built-in edition" in one_line_error(call_cli(capsys, "check", tmp_path / "iter", "--rubric", "s9"))
