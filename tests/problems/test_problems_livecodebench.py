"""LiveCodeBench: public inputs to problems, all outputs to oracles, compressed private tests."""

from __future__ import annotations

import ast
import base64
import json
import pickle
import zlib

import pytest

from conself.problems import ProblemSourceError, load_problems


def _compress(cases: list[dict]) -> str:
    return base64.b64encode(zlib.compress(pickle.dumps(json.dumps(cases)))).decode()


STDIN = {
    "question_id": "abc301_a",
    "question_title": "Overall Winner",
    "question_content": "Print the winner of N games.",
    "platform": "atcoder",
    "contest_date": "2023-07-01T00:00:00",
    "starter_code": "",
    "difficulty": "easy",
    "public_test_cases": json.dumps(
        [{"input": "5\nTTAAT\n", "output": "OUT_T_WINS\n", "testtype": "stdin"}]
    ),
    "private_test_cases": _compress(
        [{"input": "1\nA\n", "output": "OUT_A_WINS\n", "testtype": "stdin"}]
    ),
    "metadata": "{}",
}
FUNCTIONAL = {
    "question_id": "2847",
    "question_title": "Max pairs",
    "question_content": "Return the maximum number of pairs.",
    "platform": "leetcode",
    "contest_date": "2024-02-10T00:00:00",
    "starter_code": (
        "class Solution:\n"
        "    def maximumNumberOfStringPairs(self, words: List[str]) -> int:\n        "
    ),
    "difficulty": "medium",
    "public_test_cases": json.dumps(
        [
            {"input": '["cd","ac"]\n3', "output": "424242", "testtype": "functional"},
            {"input": '["ab"]\n0', "output": "[5151, true]", "testtype": "functional"},
        ]
    ),
    "private_test_cases": json.dumps(
        [{"input": '["zz"]\n1', "output": "636363", "testtype": "functional"}]
    ),
    "metadata": json.dumps({"func_name": "maximumNumberOfStringPairs"}),
}


def _load(write_jsonl, records, name="lcb.jsonl", **options):
    path = write_jsonl(name, [json.dumps(r) for r in records])
    return load_problems("livecodebench", path=str(path), **options)


def test_stdin_and_functional(write_jsonl, parquet_roundtrip, table_text):
    problems, oracles = _load(write_jsonl, [STDIN, FUNCTIONAL])
    assert problems["problem_id"].tolist() == ["livecodebench/abc301_a", "livecodebench/2847"]
    stdin, func = problems.iloc[0], problems.iloc[1]
    assert stdin["kind"] == "stdio" and stdin["test_inputs"] == ["5\nTTAAT\n"]
    assert stdin["difficulty"] == "easy"
    assert func["kind"] == "call" and func["entry_point"] == "maximumNumberOfStringPairs"
    assert [ast.literal_eval(s) for s in func["test_inputs"]] == [[["cd", "ac"], 3], [["ab"], 0]]
    assert "class Solution" in func["prompt"]
    assert oracles.iloc[0]["inputs"] == ["5\nTTAAT\n", "1\nA\n"]
    assert oracles.iloc[0]["expected_outputs"] == ["OUT_T_WINS\n", "OUT_A_WINS\n"]
    assert oracles.iloc[1]["expected_outputs"] == ["424242", "[5151, True]", "636363"]
    text = table_text(problems)
    for marker in ("OUT_T_WINS", "OUT_A_WINS", "424242", "5151", "636363", "1\nA\n", "zz"):
        assert marker not in text
    parquet_roundtrip(problems, oracles)


def test_private_inputs_option(write_jsonl):
    problems, _ = _load(write_jsonl, [STDIN], private_inputs=True)
    assert problems.iloc[0]["test_inputs"] == ["5\nTTAAT\n", "1\nA\n"]


def test_date_window(write_jsonl):
    problems, _ = _load(write_jsonl, [STDIN, FUNCTIONAL], start_date="2024-01-01")
    assert problems["problem_id"].tolist() == ["livecodebench/2847"]
    problems, _ = _load(write_jsonl, [STDIN, FUNCTIONAL], end_date="2023-07-01")
    assert problems["problem_id"].tolist() == ["livecodebench/abc301_a"]
    assert problems.attrs["filtered"] == 1
    with pytest.raises(ProblemSourceError, match="option 'start_date': not a date"):
        _load(write_jsonl, [STDIN], start_date="soon")


def test_release_version_selects_files(write_jsonl, tmp_path):
    write_jsonl("lcb/test.jsonl", [STDIN])
    write_jsonl("lcb/test2.jsonl", [FUNCTIONAL])
    folder = str(tmp_path / "lcb")
    v1, _ = load_problems("livecodebench", path=folder, release_version="release_v1")
    assert len(v1) == 1
    v2, _ = load_problems("livecodebench", path=folder, release_version="release_v2")
    assert len(v2) == 2
    only2, _ = load_problems("livecodebench", path=folder, release_version="v2")
    assert only2["problem_id"].tolist() == ["livecodebench/2847"]
    with pytest.raises(ProblemSourceError, match="missing data files"):
        load_problems("livecodebench", path=folder, release_version="release_v3")
    with pytest.raises(ProblemSourceError, match="unknown release_version"):
        load_problems("livecodebench", path=folder, release_version="v9")


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_compressed_pickle_cannot_load_classes(write_jsonl):
    evil = base64.b64encode(zlib.compress(pickle.dumps(_Evil()))).decode()
    with pytest.raises(ProblemSourceError, match=r"field 'private_test_cases': neither JSON"):
        _load(write_jsonl, [dict(STDIN, private_test_cases=evil)])


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        ({"public_test_cases": "[{"}, r"field 'public_test_cases': neither JSON"),
        ({"public_test_cases": None}, r"field 'public_test_cases': missing required"),
        ({"public_test_cases": '[{"input": 1, "output": "x"}]'}, r"'input' must be a string"),
        ({"metadata": "{}"}, r"field 'metadata': functional test cases need a string 'func_name'"),
        ({"contest_date": None}, None),
        (
            {
                "public_test_cases": json.dumps(
                    [{"input": "[1", "output": "1", "testtype": "functional"}]
                )
            },
            r"test case 0: input line 1 is not JSON",
        ),
        (
            {
                "public_test_cases": json.dumps(
                    [
                        {"input": "[1]", "output": "1", "testtype": "functional"},
                        {"input": "1", "output": "1", "testtype": "stdin"},
                    ]
                )
            },
            "mixes 'stdin' and 'functional'",
        ),
    ],
)
def test_bad_records(write_jsonl, change, pattern):
    record = dict(FUNCTIONAL, **change)
    if pattern is None:  # contest_date only matters with a date window
        _load(write_jsonl, [record])
        with pytest.raises(ProblemSourceError, match=r"id '2847'\): field 'contest_date'"):
            _load(write_jsonl, [record], end_date="2024-01-01")
        return
    with pytest.raises(ProblemSourceError, match=r"lcb\.jsonl, record 1 \(id '2847'\)"):
        _load(write_jsonl, [record])
    with pytest.raises(ProblemSourceError, match=pattern):
        _load(write_jsonl, [record])


def test_no_public_tests_is_skipped(write_jsonl):
    record = dict(STDIN, public_test_cases="[]")
    problems, oracles = _load(write_jsonl, [record, FUNCTIONAL])
    assert problems.attrs["skipped_no_inputs"] == ["livecodebench/abc301_a"]
    assert oracles["problem_id"].tolist() == ["livecodebench/2847"]
