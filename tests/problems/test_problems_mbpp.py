"""MBPP: entry point and inputs from the asserts (ast); asserts only in the oracle."""

from __future__ import annotations

import ast

import pytest

from conself.problems import ProblemSourceError, load_problems

SIMILAR = {
    "task_id": 2,
    "text": "Write a function to find the similar elements from the given two tuple lists.",
    "code": "def similar_elements(t1, t2):\r\n  return tuple(set(t1) & set(t2))",
    "test_list": [
        "assert set(similar_elements((3, 4, 5, 6), (5, 7, 4, 10))) == set((40004, 50005))",
        "assert similar_elements((1, 2), (2, 9)) == (20002,)",
        "assert similar_elements((1, 2), (2, 9)) == (20002,)",
    ],
    "test_setup_code": "",
    "challenge_test_list": [],
}
AREA = {
    "task_id": 7,
    "text": "Write a function to compute the area of a circle.",
    "code": "import math\ndef area(r):\n  return math.pi * r * r",
    "test_list": [
        "assert math.isclose(area(2), 12.5663, rel_tol=0.001)",
        "assert math.isclose(area(r), 3.1415, rel_tol=0.001)",
    ],
    "test_setup_code": "import math",
}
SANITIZED = {
    "task_id": 11,
    "prompt": "Write a python function to remove first and last occurrence of a given char.",
    "code": "def remove_Occ(s, ch):\n    return s",
    "test_imports": [],
    "test_list": ['assert remove_Occ("hello", "l") == "EXPECTED_HEO"'],
}


def _load(write_jsonl, records, **options):
    return load_problems("mbpp", path=str(write_jsonl("mbpp.jsonl", records)), **options)


def test_entry_point_inputs_and_prompt(write_jsonl, parquet_roundtrip):
    problems, oracles = _load(write_jsonl, [SIMILAR, AREA, SANITIZED])
    assert problems["problem_id"].tolist() == ["mbpp/2", "mbpp/7", "mbpp/11"]
    assert problems["entry_point"].tolist() == ["similar_elements", "area", "remove_Occ"]
    assert set(problems["kind"]) == {"call"}
    first = problems.iloc[0]
    assert [ast.literal_eval(s) for s in first["test_inputs"]] == [
        [(3, 4, 5, 6), (5, 7, 4, 10)],
        [(1, 2), (2, 9)],
    ]
    assert first["prompt"].startswith(SIMILAR["text"])
    assert "similar_elements(arg1, arg2)" in first["prompt"]
    assert problems.iloc[1]["test_inputs"] == ["[2]"]  # area(r) is not a literal call
    assert "area(arg1)" in problems.iloc[1]["prompt"]
    oracle = oracles.iloc[1]
    assert oracle["oracle_kind"] == "script"
    assert oracle["check_script"].startswith("import math\n")
    assert AREA["test_list"][0] in oracle["check_script"]
    assert oracle["reference_program"] == AREA["code"]
    assert oracles.iloc[2]["check_script"] == SANITIZED["test_list"][0] + "\n"
    parquet_roundtrip(problems, oracles)


def test_asserts_never_reach_the_problems_table(write_jsonl, table_text):
    problems, _ = _load(write_jsonl, [SIMILAR, AREA, SANITIZED])
    text = table_text(problems)
    for marker in ("40004", "20002", "12.5663", "EXPECTED_HEO", "assert", "rel_tol", "math.pi"):
        assert marker not in text


def test_entry_point_without_reference_code(write_jsonl):
    rec = {k: v for k, v in SIMILAR.items() if k != "code"}
    problems, oracles = _load(write_jsonl, [rec])
    assert problems.iloc[0]["entry_point"] == "similar_elements"
    assert oracles.iloc[0]["reference_program"] == ""


def test_no_literal_calls_is_skipped(write_jsonl):
    rec = dict(AREA, task_id=8, test_list=["assert area(r) == 1"])
    problems, _ = _load(write_jsonl, [SIMILAR, rec])
    assert problems.attrs["skipped_no_inputs"] == ["mbpp/8"]


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        ({"test_list": ["assert f(1 =="]}, r"record 1 \(id '2'\): field 'test_list': item 0"),
        (
            {"test_list": "assert f(1) == 2"},
            r"field 'test_list': expected a list of strings, got str",
        ),
        ({"test_list": ["assert 1 == 1"]}, r"field 'test_list': no call to the function"),
        ({"text": None}, r"field 'text': missing required field"),
        ({"task_id": [2]}, r"record 1: field 'task_id': expected a string or integer id"),
    ],
)
def test_bad_records(write_jsonl, change, pattern):
    with pytest.raises(ProblemSourceError, match=pattern):
        _load(write_jsonl, [dict(SIMILAR, **change)])
