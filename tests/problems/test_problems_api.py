"""Shared contract: column order, dtypes, argument checks, empty results."""

from __future__ import annotations

import json

import pytest

from conself.problems import (
    ORACLE_COLUMNS,
    PROBLEM_COLUMNS,
    SOURCES,
    ProblemSourceError,
    decode_args,
    encode_args,
    load_problems,
    make_oracles_frame,
    make_problems_frame,
)
from conself.problems.literals import encode_literal

STDIO = {
    "question": "Q",
    "starter_code": "",
    "input_output": json.dumps({"inputs": ["1\n"], "outputs": ["1\n"]}),
}


def test_sources_and_columns():
    assert set(SOURCES) == {
        "humaneval",
        "taco",
        "apps",
        "mbpp",
        "humaneval_plus",
        "mbpp_plus",
        "livecodebench",
    }
    assert PROBLEM_COLUMNS[0] == ORACLE_COLUMNS[0] == "problem_id"


def test_empty_frames_have_the_schema(parquet_roundtrip):
    problems, oracles = make_problems_frame([]), make_oracles_frame([])
    assert list(problems.columns) == PROBLEM_COLUMNS and problems.empty
    assert list(oracles.columns) == ORACLE_COLUMNS and oracles.empty
    assert str(oracles["atol"].dtype) == "float64"
    parquet_roundtrip(problems, oracles)


def test_all_skipped_gives_empty_tables(write_jsonl):
    rec = dict(STDIO, input_output=json.dumps({"inputs": [], "outputs": []}))
    problems, oracles = load_problems("taco", path=str(write_jsonl("t.jsonl", [rec])))
    assert problems.empty and oracles.empty
    assert list(problems.columns) == PROBLEM_COLUMNS


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"source": "codeforces"}, "unknown problem source 'codeforces'"),
        ({"source": "taco", "limit": 0}, "limit must be a positive integer"),
        ({"source": "taco", "errors": "ignore"}, "option 'errors'"),
        ({"source": "taco", "plus_inputs": True}, r"unknown option\(s\) \['plus_inputs'\]"),
        ({"source": "taco", "release_version": "v1"}, "unknown option"),
    ],
)
def test_bad_arguments(write_jsonl, kwargs, pattern):
    path = str(write_jsonl("t.jsonl", [STDIO]))
    with pytest.raises(ProblemSourceError, match=pattern):
        load_problems(path=path, **kwargs)


def test_livecodebench_release_needs_a_directory(write_jsonl):
    path = str(write_jsonl("t.jsonl", [STDIO]))
    with pytest.raises(ProblemSourceError, match="needs a directory"):
        load_problems("livecodebench", path=path, release_version="release_v1")


def test_error_is_a_value_error():
    assert issubclass(ProblemSourceError, ValueError)


@pytest.mark.parametrize(
    "args",
    [[1, -2.5, "s\n'\""], [[1, 2], (3, 4)], [{"a": [1]}, {1, 2}, set(), None, True], [], [10**30]],
)
def test_encode_roundtrip(args):
    text = encode_args(args)
    assert text is not None and decode_args(text) == args


def test_encode_rejects_non_literals():
    assert encode_args([float("inf")]) is None
    assert encode_args([{"x": float("nan")}]) is None
    assert encode_args([object()]) is None
    assert encode_literal(float("-inf")) is None
    with pytest.raises(ValueError, match="not a literal argument list"):
        decode_args("3")
