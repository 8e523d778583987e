"""The corpus of submissions in the shapes real ones have (grading_corpus.py), each graded by
`tinycnn check` against the hand grading written down before the tool ran, alone and as one class."""

import csv
import json

import pytest
from conftest import call_cli
from grading_corpus import CORPUS


@pytest.mark.parametrize("name", list(CORPUS))
def test_each_corpus_submission_gets_the_hand_grading(name, tmp_path, capsys):
    """Every rule's verdict, the final model's parameters and last three epochs, as written down
    before the tool ran (grading_corpus.py), and the words its evidence must hold."""
    expected = CORPUS[name](tmp_path / name)
    rubric = ["--rubric", expected.rubric] if expected.rubric else []
    result = call_cli(capsys, "check", tmp_path / name, "--json", *rubric)
    report = json.loads(result.stdout)
    got = {rule["name"]: rule["passed"] for rule in report["rules"]}
    assert got == expected.rules, {r["name"]: r["evidence"] for r in report["rules"] if got[r["name"]] != expected.rules[r["name"]]}
    assert result.returncode == (0 if expected.passed else 1)
    assert report["figures"]["params"] == expected.params
    assert [round(a, 2) for a in report["figures"]["last_3"]] == [round(a, 2) for a in expected.last_3]
    said = json.dumps(report)
    assert all(words in said for words in expected.says), [w for w in expected.says if w not in said]


def test_the_whole_corpus_as_one_class_with_its_copied_pair_flagged(tmp_path, capsys):
    rubrics = {name: CORPUS[name](tmp_path / "class" / name).rubric for name in CORPUS}
    plain = [tmp_path / "class" / name for name, rubric in rubrics.items() if rubric is None]
    result = call_cli(capsys, "check", *plain, "--table", tmp_path / "grades")
    rows = {r["submission"]: r for r in csv.DictReader((tmp_path / "grades.csv").open())}
    assert result.returncode == 1 and set(rows) == {p.name for p in plain}
    for name, row in rows.items():
        expected = CORPUS[name](tmp_path / "again" / name)
        assert row["verdict"] == ("PASS" if expected.passed else "FAIL"), (name, row)
        assert row["failing rules"] == ", ".join(r for r, ok in expected.rules.items() if not ok), (name, row)
    assert "same training log as copy-ben" in rows["copy-ann"]["similar to"]
    assert "same training log as copy-ann" in rows["copy-ben"]["similar to"]
    logs_alike = [n for n, r in rows.items() if "same training log" in r["similar to"]]
    assert sorted(logs_alike) == ["copy-ann", "copy-ben"], logs_alike
