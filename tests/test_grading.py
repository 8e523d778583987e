"""`tinycnn check` on submissions as handed in (README, notebooks with their logs, model.py): one that
passes every rule, one broken on purpose per rule, another edition, Gradescope's file, a class at
once, and bad input in one line. The student's model.py runs only in a sandboxed child."""

import csv
import json
import zipfile

import pytest
from conftest import ROOT, call_cli, one_line_error, run_cli
from grading_fixtures import (
    BIG,
    FOURTH,
    LOGS,
    MODEL_PY,
    SMALL_FIELD,
    log_text,
    params_of,
    unchanged,
    write_runnable,
    write_submission,
)

from tinycnn.evidence.grading.logs import read_log
from tinycnn.evidence.grading.writeup import claims_in, steps_in

RULES = ["steps", "texts", "budget", "epochs", "holds", "runs", "figures", "summary", "rf"]


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
    assert f"Model1 {params_of(MODEL_PY, 'Model1'):,}" in rules["budget"]["evidence"]
    assert "last 3 logged test accuracies 99.45% / 99.45% / 99.45%" in rules["holds"]["evidence"]
    assert "9 claimed figures, each as the code and logs give" in rules["figures"]["evidence"]
    assert unchanged(folder) == before  # the child worked on a copy


LAST = LOGS[3][:-1] + [(97.8, 99.35)]
BROKEN = {  # rule: (how, what its one line says)
    "steps": (dict(steps=2, logs={2: LOGS[3]}), "2 steps, not the 3 asked for"),
    "texts": (dict(words={1: {"target": "Get the skeleton right."}}), "step 1: the Target does not say why"),
    "budget": (
        dict(model_py=MODEL_PY + BIG),
        f"Model2 has {params_of(MODEL_PY + BIG, 'Model2'):,} parameters, not fewer than 8,000",
    ),
    "epochs": (dict(logs={2: LOGS[2] + LOGS[2][-5:]}), "step 2: 20 epochs logged, more than 15"),
    "holds": (dict(logs={3: LAST}), "99.45% / 99.45% / 99.35%, not each >= 99.40%"),
    "runs": (
        dict(words={3: {"analysis": "It stays consistently above 99.4% at the end."}}),
        "step 3 says 'consistently' from one logged run",
    ),
    "figures": (
        dict(words={1: {"result": "Parameters: 1,234\n- Best test accuracy: 99.50%"}}),
        "step 1: claims 'Parameters: 1,234', the code has",
    ),
    "summary": (dict(summary_params={2: 6_000}), "step 2: its summary table says 6,000 parameters"),
    "rf": (dict(model_py=MODEL_PY + SMALL_FIELD), "Model1's receptive field is 25 px"),
}


@pytest.mark.parametrize("rule", list(BROKEN))
def test_a_submission_broken_on_purpose_fails_that_rule_alone_saying_why(rule, tmp_path, capsys):
    how, says = BROKEN[rule]
    code, rules = checked(capsys, write_submission(tmp_path / rule, **how))
    failed = [name for name, r in rules.items() if not r["passed"]]
    assert code == 1 and failed == [rule], {n: rules[n]["evidence"] for n in failed}
    assert says in rules[rule]["evidence"], rules[rule]["evidence"]


def test_another_edition_four_steps_and_a_larger_budget(tmp_path, capsys):
    folder = write_submission(tmp_path / "four", steps=4, model_py=MODEL_PY + FOURTH)
    code, rules = checked(capsys, folder)
    assert code == 1 and not rules["steps"]["passed"] and not rules["budget"]["passed"]
    code, rules = checked(capsys, folder, "--steps", "4", "--budget", "10000")
    assert code == 0, {n: r["evidence"] for n, r in rules.items() if not r["passed"]}


def test_the_gradescope_file_has_a_test_per_rule_and_a_leaderboard(tmp_path, capsys):
    folder = write_submission(tmp_path / "bob", words={3: {"analysis": "Consistent: it always stays above."}})
    result = call_cli(capsys, "check", folder, "--gradescope", tmp_path / "results.json")
    assert result.returncode == 1 and "FAIL  runs" in result.stdout
    graded = json.loads((tmp_path / "results.json").read_text())
    assert [t["name"] for t in graded["tests"]] == RULES and graded["score"] == 8
    for test in graded["tests"]:
        assert set(test) == {"name", "score", "max_score", "status", "output", "visibility"}
        assert test["max_score"] == 1 and test["visibility"] == "visible"
        assert (test["status"], test["score"]) == (("failed", 0) if test["name"] == "runs" else ("passed", 1))
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
    assert "no steps found" in one_line_error(call_cli(capsys, "check", tmp_path / "bare"))
    damaged = write_submission(tmp_path / "damaged")
    (damaged / "step2.ipynb").write_text('{"cells": [')
    assert "step2.ipynb: not a readable notebook" in one_line_error(call_cli(capsys, "check", damaged), code=1)
    (tmp_path / "x.zip").write_text("no")
    assert "neither a folder nor a .zip file" in one_line_error(call_cli(capsys, "check", tmp_path / "x.zip"))


def test_a_model_file_that_fails_or_lacks_a_model_fails_budget_with_its_error(tmp_path, capsys):
    broken = write_submission(tmp_path / "broken", model_py=MODEL_PY + "\nimport no_such_module\n", counted=MODEL_PY)
    code, rules = checked(capsys, broken)
    assert code == 1 and "No module named 'no_such_module'" in rules["budget"]["evidence"]
    (tmp_path / "outputs").mkdir()
    silent = write_submission(tmp_path / "outputs" / "silent", logs={2: []})
    code, rules = checked(capsys, silent)
    assert "step 2: no log found in step2.ipynb" in rules["epochs"]["evidence"]


def test_steps_parts_and_claims_are_read_in_the_spellings_people_use():
    text = (
        "# Model 3 - [Notebook](x.ipynb)\n\n**Target:** fewer weights, because 7k is too many\n\n"
        "### Results\n- Parameters : 7.4k\n- Best Train Accuracy: 99.1234\n- Best Test Accuracy: 0.9952\n"
        "\n## Analysis\nFrom the 12th epoch on it holds.\n\n## Final model\n\n__Target__ - none\n"
    )
    first, final = steps_in(text, "README.md")
    assert (first.number, final.number) == (3, None) and set(first.parts) == {"target", "result", "analysis"}
    claims = first.claims
    assert (claims.params, claims.params_tolerance, claims.best_train, claims.best_test, claims.reached_epoch) == (
        7400,
        50,
        99.1234,
        99.52,
        12,
    )
    assert claims_in("Total params: 1622").params == 1622 and claims_in("6.3M params").params == 6_300_000
    assert claims_in("7,712 parameters, consistently").consistent == "consistently"


def test_logs_are_read_from_pytorch_keras_and_a_pattern_of_your_own():
    log = read_log(
        "EPOCH: 1\nLoss=0.2 Accuracy=91.50: 100%\nTest set: Average loss: 0.05, Accuracy: 9871/10000 (98.71%)\n"
        "Epoch 2/15\nTest set: Average loss: 0.04, Accuracy: 9902/10000 (99.02%)\nTotal params: 7,712\n"
    )
    assert (log.test, log.train, log.total_params) == ([98.71, 99.02], [91.5], 7712)
    assert read_log("1/1 - loss: 0.1 - accuracy: 0.97 - val_accuracy: 0.9912").test == [99.12]
    assert read_log("ep 1 top1 98.5\nep 2 top1 99.5", r"top1 (?P<acc>[\d.]+)").test == [98.5, 99.5]


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
    assert whole_class.returncode == 1 and "| carl | FAIL | 8/9 |" in (tmp_path / "grades.md").read_text()
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
    code, rules = checked(capsys, folder, "--rerun", "2")
    rerun = rules["rerun"]
    assert code == 1 and not rerun["passed"] and "step3.ipynb as written, 2 seeds: 0/2 hold" in rerun["evidence"]
    runs = rerun["details"]
    assert [r["seed"] for r in runs] == [0, 1] and all(len(r["test"]) == 2 and not r["error"] for r in runs), runs
    assert runs[0]["test"] != runs[1]["test"]  # the forced seed won over the notebook's constant
    assert unchanged(folder) == before  # its data and outputs went to the copy


def test_rerun_with_one_recipe_trains_the_final_model_class_on_seeds(tmp_path, capsys):
    folder = write_submission(tmp_path / "fay")
    recipe = tmp_path / "recipe.toml"
    recipe.write_text("[train]\nepochs = 3\ntrain_subset = 640\ntest_subset = 500\nema = 0.9\n")
    code, rules = checked(capsys, folder, "--rerun", "2", "--recipe", recipe)
    runs = rules["rerun"]["details"]
    assert "recipe recipe.toml, 2 seeds:" in rules["rerun"]["evidence"]
    assert [len(r["test"]) for r in runs] == [3, 3] and runs[0]["test"] != runs[1]["test"], runs
    recipe.write_text('[train]\nmodel = "Model_3"\n')
    assert "a recipe sets training settings only" in one_line_error(
        call_cli(capsys, "check", folder, "--rerun", "1", "--recipe", recipe)
    )


def test_a_submissions_code_runs_only_in_the_child_on_a_copy(tmp_path, capsys, monkeypatch):
    """A model.py that writes a file when imported: the file appears neither in the submission nor
    where tinycnn runs (the child imports it, in its copy, which is thrown away)."""
    monkeypatch.chdir(tmp_path)
    folder = write_submission(
        tmp_path / "gil", model_py=MODEL_PY + "\nopen('imported-here', 'w').write('x')\n", counted=MODEL_PY
    )
    code, rules = checked(capsys, folder)
    assert rules["budget"]["passed"] and "Model1 7,578" in rules["budget"]["evidence"]
    assert not list(tmp_path.rglob("imported-here"))
