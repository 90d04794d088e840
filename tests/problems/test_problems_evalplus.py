"""EvalPlus HumanEval+/MBPP+: base(+plus) inputs; oracle = canonical solution with atol."""

from __future__ import annotations

import ast
import json

import pytest

from conself.problems import ProblemSourceError, load_problems

HE_PLUS = {
    "task_id": "HumanEval/2",
    "prompt": 'def truncate_number(number: float) -> float:\n    """Decimal part."""\n',
    "entry_point": "truncate_number",
    "canonical_solution": "    return number % 1.0\n",
    "base_input": [[3.5], [1.33], [3.5]],
    "plus_input": [[1e-3], [float("inf")], [7.25]],
    "atol": 1e-6,
}
MBPP_PLUS = {
    "task_id": "Mbpp/2",
    "prompt": '"""\nWrite a function to find the shared elements from the given two lists.\n'
    'assert set(similar_elements((3, 4, 5, 6),(5, 7, 4, 10))) == set((88884, 99995))\n"""\n',
    "entry_point": "similar_elements",
    "canonical_solution": "def similar_elements(a, b):\n    return tuple(set(a) & set(b))\n",
    "base_input": [[[3, 4, 5, 6], [5, 7, 4, 10]]],
    "plus_input": [[[1], [1]]],
    "atol": 0,
    "assertion": "assert set(similar_elements((3, 4, 5, 6),(5, 7, 4, 10))) == set((88884, 99995))",
}


def _load(write_jsonl, source, records, **options):
    path = write_jsonl(f"{source}.jsonl", [json.dumps(r) for r in records])
    return load_problems(source, path=str(path), **options)


def test_humaneval_plus(write_jsonl, parquet_roundtrip):
    problems, oracles = _load(write_jsonl, "humaneval_plus", [HE_PLUS])
    row = problems.iloc[0]
    assert row["problem_id"] == "HumanEval/2" and row["source"] == "humaneval_plus"
    assert row["prompt"] == HE_PLUS["prompt"] and row["starter_code"] == HE_PLUS["prompt"]
    assert row["test_inputs"] == ["[3.5]", "[1.33]"]  # base only by default, deduped
    oracle = oracles.iloc[0]
    assert oracle["oracle_kind"] == "reference"
    assert oracle["reference_program"] == HE_PLUS["prompt"] + HE_PLUS["canonical_solution"]
    assert oracle["atol"] == pytest.approx(1e-6)
    assert oracle["inputs"] == ["[3.5]", "[1.33]", "[0.001]", "[7.25]"]  # inf has no literal
    parquet_roundtrip(problems, oracles)


def test_plus_inputs_option(write_jsonl):
    problems, _ = _load(write_jsonl, "humaneval_plus", [HE_PLUS], plus_inputs=True)
    assert [ast.literal_eval(s) for s in problems.iloc[0]["test_inputs"]] == [
        [3.5],
        [1.33],
        [0.001],
        [7.25],
    ]
    rec = {k: v for k, v in HE_PLUS.items() if k != "plus_input"}
    with pytest.raises(ProblemSourceError, match=r"field 'plus_input': missing required"):
        _load(write_jsonl, "humaneval_plus", [rec], plus_inputs=True)


def test_mbpp_plus_prompt_hides_the_assert(write_jsonl, table_text):
    problems, oracles = _load(write_jsonl, "mbpp_plus", [MBPP_PLUS])
    row = problems.iloc[0]
    assert row["problem_id"] == "Mbpp/2"
    assert "88884" not in table_text(problems) and "assert" not in row["prompt"]
    assert row["prompt"].startswith("Write a function to find the shared elements")
    assert "similar_elements(arg1, arg2)" in row["prompt"]
    assert oracles.iloc[0]["atol"] == 0.0
    kept, _ = _load(write_jsonl, "mbpp_plus", [MBPP_PLUS], keep_prompt_asserts=True)
    assert kept.iloc[0]["prompt"] == MBPP_PLUS["prompt"]


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        ({"base_input": "[[1]]"}, r"field 'base_input': expected a list of argument lists"),
        ({"base_input": [3]}, r"field 'base_input': item 0 must be a list of arguments"),
        ({"atol": "small"}, r"field 'atol': expected a number"),
        ({"canonical_solution": None}, r"field 'canonical_solution': missing required"),
    ],
)
def test_bad_records(write_jsonl, change, pattern):
    with pytest.raises(
        ProblemSourceError, match=r"humaneval_plus\.jsonl, record 1 \(id 'HumanEval/2'\)"
    ):
        _load(write_jsonl, "humaneval_plus", [dict(HE_PLUS, **change)])
    with pytest.raises(ProblemSourceError, match=pattern):
        _load(write_jsonl, "humaneval_plus", [dict(HE_PLUS, **change)])


def test_unknown_option_is_rejected(write_jsonl):
    with pytest.raises(ProblemSourceError, match=r"unknown option\(s\) \['plus'\]"):
        _load(write_jsonl, "humaneval_plus", [HE_PLUS], plus=True)
