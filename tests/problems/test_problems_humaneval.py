"""HumanEval: inputs read from ``check`` with ast (never executed), oracle = check script."""

from __future__ import annotations

import ast
import gzip
import json
import statistics

import pytest

from conself.problems import ORACLE_COLUMNS, PROBLEM_COLUMNS, ProblemSourceError, load_problems
from conself.problems.humaneval import default_humaneval_path


@pytest.fixture(scope="module")
def humaneval():
    return load_problems("humaneval")


def test_default_path_is_the_package_file():
    path = default_humaneval_path()
    assert path.name == "HumanEval.jsonl.gz" and path.is_file()


def test_counts_match_the_benchmark(humaneval):
    problems, oracles = humaneval
    assert list(problems.columns) == PROBLEM_COLUMNS
    assert list(oracles.columns) == ORACLE_COLUMNS
    assert len(problems) == 161
    skipped = problems.attrs["skipped_no_inputs"]
    assert skipped == ["HumanEval/32", "HumanEval/38", "HumanEval/50"]
    assert len(problems) + len(skipped) == 164
    sizes = [len(x) for x in problems["test_inputs"]]
    assert statistics.median(sizes) == 6
    assert max(sizes) == 26
    assert problems["problem_id"].tolist() == oracles["problem_id"].tolist()


def test_skipped_problems_are_logged(caplog):
    with caplog.at_level("WARNING", logger="conself.problems"):
        load_problems("humaneval")
    assert "skipped 3 problems with no test inputs" in caplog.text
    assert "HumanEval/32" in caplog.text


def test_humaneval_0_inputs_by_hand(humaneval):
    problems, oracles = humaneval
    row = problems.iloc[0]
    assert row["problem_id"] == "HumanEval/0"
    assert row["kind"] == "call" and row["entry_point"] == "has_close_elements"
    expected = [
        [[1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.3],
        [[1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.05],
        [[1.0, 2.0, 5.9, 4.0, 5.0], 0.95],
        [[1.0, 2.0, 5.9, 4.0, 5.0], 0.8],
        [[1.0, 2.0, 3.0, 4.0, 5.0, 2.0], 0.1],
        [[1.1, 2.2, 3.1, 4.1, 5.1], 1.0],
        [[1.1, 2.2, 3.1, 4.1, 5.1], 0.5],
    ]
    assert [ast.literal_eval(s) for s in row["test_inputs"]] == expected
    with gzip.open(default_humaneval_path(), "rt") as handle:
        first = json.loads(handle.readline())
    assert row["prompt"] == first["prompt"]
    oracle = oracles.iloc[0]
    assert oracle["oracle_kind"] == "script"
    assert oracle["check_script"] == first["test"] + "\ncheck(has_close_elements)\n"
    assert oracle["reference_program"] == first["prompt"] + first["canonical_solution"]


def test_every_input_is_a_literal_argument_list(humaneval):
    problems, _ = humaneval
    for inputs in problems["test_inputs"]:
        assert len(inputs) == len(set(inputs))
        for text in inputs:
            assert isinstance(ast.literal_eval(text), list)


def test_parquet_roundtrip(humaneval, parquet_roundtrip):
    parquet_roundtrip(*humaneval)


CHECK = """
METADATA = {}


def check(cand):
    assert cand([1, 2], 3) == 4
    assert abs(cand([0.5], 1) - 0.5) < 1e-6
    assert cand(-1, (2, 'x')) == {1: None}
    assert not cand([1, 2], 3)
    assert cand(float('inf'), 1) == 0
    assert cand(x, 1) == 0
    assert cand(*[1, 2]) == 0
    assert cand([1], b=2) == 0
    for i in range(3):
        assert cand(i, i) == i
    assert cand(cand(1, 2), 3) == 0
    assert cand({1, 2}, set()) == 1
"""


def _record(task_id: str, test: str) -> dict:
    return {
        "task_id": task_id,
        "prompt": 'def f(a, b):\n    """Add."""\n',
        "entry_point": "f",
        "canonical_solution": "    return a\n",
        "test": test,
    }


def test_ast_reads_only_literal_calls(write_jsonl):
    path = write_jsonl("he.jsonl", [_record("X/0", CHECK)])
    problems, _ = load_problems("humaneval", path=str(path))
    got = [ast.literal_eval(s) for s in problems.iloc[0]["test_inputs"]]
    # nested in abs(...), in a comparison, negated, deduped; non-literals/kwargs/starred skipped
    assert got == [[[1, 2], 3], [[0.5], 1], [-1, (2, "x")], [1, 2], [{1, 2}, set()]]


def test_test_code_is_never_executed(write_jsonl, tmp_path):
    marker = tmp_path / "ran"
    side_effect = f"open({str(marker)!r}, 'w').write('x')\n"
    test = side_effect + "\ndef check(candidate):\n    assert candidate(1)\n"
    path = write_jsonl("he.jsonl", [_record("X/0", test)])
    problems, _ = load_problems("humaneval", path=str(path))
    assert problems.iloc[0]["test_inputs"] == ["[1]"]
    assert not marker.exists()


def test_bad_test_code_names_record_and_field(write_jsonl):
    path = write_jsonl("he.jsonl", [_record("X/0", CHECK), _record("X/1", "def check(:\n")])
    with pytest.raises(ProblemSourceError, match=r"he\.jsonl, record 2 \(id 'X/1'\): field 'test'"):
        load_problems("humaneval", path=str(path))


def test_missing_field_is_an_error(write_jsonl):
    rec = _record("X/0", CHECK)
    del rec["entry_point"]
    path = write_jsonl("he.jsonl", [rec])
    with pytest.raises(ProblemSourceError, match=r"record 1 \(id 'X/0'\): field 'entry_point'"):
        load_problems("humaneval", path=str(path))
