"""evaluate_programs on io and reference oracles from fixture files, with the real sandbox."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from conself.metrics import EVAL_RESULT_COLUMNS, evaluate_programs, resolve_entry_point
from conself.problems import load_problems
from conself.sandbox import Sandbox, SandboxConfig

MakeCandidates = Callable[..., pd.DataFrame]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def taco_record(rid: str, spec: dict, starter: str = "") -> dict:
    return {
        "id": rid,
        "question": f"Problem {rid}.",
        "starter_code": starter,
        "input_output": json.dumps(spec),
        "difficulty": "EASY",
    }


TACO = [
    taco_record("sum", {"inputs": ["1 2\n", "10 -3\n", "0 0\n"], "outputs": ["3\n", "7\n", "0"]}),
    # APPS-style call outputs wrapped in a list: [3] means 3.
    taco_record("add", {"fn_name": "add", "inputs": [[1, 2], [5, 5]], "outputs": [[3], [10]]}),
    taco_record(
        "third", {"fn_name": "third", "inputs": [[1], [2]], "outputs": [0.3333333, 0.6666667]}
    ),
    taco_record(
        "two_sum",
        {
            "fn_name": "twoSum",
            "inputs": [[[2, 7, 11, 15], 9], [[3, 3], 6]],
            "outputs": [[0, 1], [0, 1]],
        },
        starter="class Solution:\n    def twoSum(self, nums, target):\n",
    ),
]

SUM_RIGHT = "a, b = map(int, input().split())\nprint(a + b)\n"
SUM_PADDED = "a, b = map(int, input().split())\nprint(' ', a + b, '   ')\nprint()\n"
SUM_WRONG = "a, b = map(int, input().split())\nprint(a - b)\n"
TWO_SUM = (
    "class Solution:\n"
    "    def twoSum(self, nums: List[int], target: int) -> List[int]:\n"  # List via prelude
    "        seen = {}\n"
    "        for i, x in enumerate(nums):\n"
    "            if target - x in seen:\n"
    "                return (seen[target - x], i)\n"  # a tuple: compared as a list
    "            seen[x] = i\n"
)


@pytest.fixture(scope="module")
def taco(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, pd.DataFrame]:
    path = write_jsonl(tmp_path_factory.mktemp("taco") / "taco.jsonl", TACO)
    return load_problems("taco", path)


def _verdicts(results: pd.DataFrame) -> list[tuple[bool, str | None]]:
    return list(zip(results["passed"], results["first_failure"], strict=True))


def test_taco_stdio_and_call(
    taco: tuple[pd.DataFrame, pd.DataFrame], sandbox: Sandbox, make_candidates: MakeCandidates
) -> None:
    problems, oracles = taco
    rows = [
        ("taco/sum", SUM_RIGHT),
        ("taco/sum", SUM_PADDED),  # leading/trailing spaces and blank lines: accepted (LCB)
        ("taco/sum", SUM_WRONG),
        ("taco/sum", "import sys\nsys.exit(3)\n"),
        ("taco/sum", None),
        ("taco/add", "def add(a, b):\n    return a + b\n"),  # 3 vs expected [3]: accepted
        ("taco/add", "def add(a, b):\n    return [a + b]\n"),
        ("taco/add", "def add(a, b):\n    return a + b + (a == 5)\n"),  # 2nd test wrong
        ("taco/add", "def add(a, b)\n    return a + b\n"),  # syntax error
        ("taco/third", "def thrd(x):\n    return x / 3\n"),  # entry point missing
        ("taco/third", "def third(x):\n    return x / 3\n"),  # float tolerance
        ("taco/third", "def third(x):\n    return round(x / 3, 2)\n"),
        ("taco/two_sum", TWO_SUM),
        ("taco/two_sum", TWO_SUM.replace("return (seen[target - x], i)", "return [i]")),
    ]
    results = evaluate_programs(make_candidates(rows), problems, oracles, sandbox)
    assert list(results.columns) == EVAL_RESULT_COLUMNS
    assert _verdicts(results) == [
        (True, None),
        (True, None),
        (False, "wrong_answer"),
        (False, "nonzero_exit"),
        (False, "no_program"),
        (True, None),
        (True, None),
        (False, "wrong_answer"),
        (False, "compile_error"),
        (False, "runtime_error"),
        (True, None),
        (False, "wrong_answer"),
        (True, None),
        (False, "wrong_answer"),
    ]
    assert results["n_tests"].tolist() == [3] * 5 + [2] * 9
    assert results["n_passed"].tolist() == [3, 3, 1, 0, 0, 2, 2, 1, 0, 0, 2, 0, 2, 0]
    assert results.loc[7, "first_failure_index"] == 1
    assert results.loc[9, "error_type"] == "MissingEntryPoint"
    assert results["sample_index"].tolist()[:5] == [0, 1, 2, 3, 4]


def test_timeout_and_early_stop(
    taco: tuple[pd.DataFrame, pd.DataFrame], sandbox: Sandbox, make_candidates: MakeCandidates
) -> None:
    problems, oracles = taco
    loop = "def add(a, b):\n    while True:\n        pass\n"
    cands = make_candidates([("taco/add", loop), ("taco/sum", SUM_RIGHT)])
    full = evaluate_programs(cands, problems, oracles, sandbox)
    assert _verdicts(full) == [(False, "time_limit"), (True, None)]
    assert full["n_run"].tolist() == [2, 3]
    early = evaluate_programs(cands, problems, oracles, sandbox, stop_at_first_failure=True)
    assert _verdicts(early) == _verdicts(full)
    assert early.loc[1, "n_run"] == 3


def test_identical_programs_share_one_run(
    taco: tuple[pd.DataFrame, pd.DataFrame], sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    problems, oracles = taco
    cands = pd.DataFrame(
        [
            {"problem_id": "taco/sum", "model": m, "sample_index": 0, "program": SUM_RIGHT}
            for m in ("start", "trained")
        ]
    )
    with caplog.at_level("INFO", logger="conself.metrics.evaluate"):
        results = evaluate_programs(cands, problems, oracles, sandbox)
    assert results["passed"].tolist() == [True, True]
    assert results["model"].tolist() == ["start", "trained"]
    assert "1 distinct programs, 3 jobs" in caplog.text


LCB = {
    "question_id": "9001",
    "question_content": "Return the single value.",
    "platform": "leetcode",
    "contest_date": "2024-02-10T00:00:00",
    "starter_code": "class Solution:\n    def single(self, x: List[int]) -> List[int]:\n        ",
    "difficulty": "easy",
    "public_test_cases": json.dumps([{"input": "[5]", "output": "[5]", "testtype": "functional"}]),
    "private_test_cases": "",
    "metadata": json.dumps({"func_name": "single"}),
}


def test_livecodebench_does_not_unwrap(
    tmp_path: Path, sandbox: Sandbox, make_candidates: MakeCandidates
) -> None:
    problems, oracles = load_problems("livecodebench", write_jsonl(tmp_path / "l.jsonl", [LCB]))
    body = "class Solution:\n    def single(self, x: List[int]) -> List[int]:\n        return "
    rows = [("livecodebench/9001", body + "x\n"), ("livecodebench/9001", body + "x[0]\n")]
    results = evaluate_programs(make_candidates(rows), problems, oracles, sandbox)
    assert _verdicts(results) == [(True, None), (False, "wrong_answer")]


def evalplus_record(task_id: str, atol: float, base: list, plus: list, solution: str) -> dict:
    return {
        "task_id": task_id,
        "prompt": f'def area(r):\n    """Area of a circle ({task_id})."""\n',
        "entry_point": "area",
        "canonical_solution": solution,
        "base_input": base,
        "plus_input": plus,
        "atol": atol,
    }


PI_AREA = "    import math\n    return math.pi * r * r\n"


def test_reference_oracle(
    tmp_path: Path,
    sandbox: Sandbox,
    make_candidates: MakeCandidates,
    caplog: pytest.LogCaptureFixture,
) -> None:
    records = [
        evalplus_record("HumanEval/901", 1e-3, [[1.0], [2.5]], [[10.0]], PI_AREA),
        evalplus_record("HumanEval/902", 0.0, [[1.0], [2.5]], [[10.0]], PI_AREA),
        # The reference crashes on r=0: that input has no expected value and is dropped.
        evalplus_record("HumanEval/903", 0.0, [[1.0], [0.0]], [], "    return 1 / r\n"),
    ]
    path = write_jsonl(tmp_path / "plus.jsonl", records)
    problems, oracles = load_problems("humaneval_plus", path)
    assert set(oracles["oracle_kind"]) == {"reference"}
    approx = "def area(r):\n    return 3.1416 * r * r\n"
    exact = "import math\ndef area(r):\n    return r * r * math.pi\n"
    inverse = "def area(r):\n    return 1.0 / r\n"
    rows = [
        ("HumanEval/901", approx),  # within atol 1e-3
        ("HumanEval/901", exact),
        ("HumanEval/902", approx),  # no atol: relative 1e-6 rejects 3.1416
        ("HumanEval/902", exact),  # last-bit differences are accepted
        ("HumanEval/902", "def area(r):\n    return int(r * r * 3)\n"),
        ("HumanEval/903", inverse),
    ]
    with caplog.at_level("WARNING", logger="conself.metrics.evaluate"):
        results = evaluate_programs(make_candidates(rows), problems, oracles, sandbox)
    assert _verdicts(results) == [
        (True, None),
        (True, None),
        (False, "wrong_answer"),
        (True, None),
        (False, "wrong_answer"),
        (True, None),
    ]
    assert results["n_tests"].tolist() == [3, 3, 3, 3, 3, 1]
    assert "reference programs crashed on 1 inputs" in caplog.text


def test_bad_tables(
    taco: tuple[pd.DataFrame, pd.DataFrame], sandbox: Sandbox, make_candidates: MakeCandidates
) -> None:
    problems, oracles = taco
    with pytest.raises(ValueError, match="no row for 1 problems"):
        evaluate_programs(make_candidates([("nope", "x")]), problems, oracles, sandbox)
    with pytest.raises(ValueError, match="lacks columns"):
        evaluate_programs(pd.DataFrame({"problem_id": ["taco/sum"]}), problems, oracles, sandbox)
    dup = make_candidates([("taco/sum", SUM_RIGHT)])
    with pytest.raises(ValueError, match="repeats"):
        evaluate_programs(pd.concat([dup, dup]), problems, oracles, sandbox)
    broken = oracles.copy()
    broken.at[1, "expected_outputs"] = ["not a literal (", "3"]
    with pytest.raises(ValueError, match="'expected_outputs' item 0"):
        evaluate_programs(make_candidates([("taco/add", "x")]), problems, broken, sandbox)
    empty = evaluate_programs(make_candidates([]), problems, oracles, sandbox)
    assert list(empty.columns) == EVAL_RESULT_COLUMNS and empty.empty


def test_resolve_entry_point() -> None:
    assert resolve_entry_point("def f(): pass", "f") == "f"
    assert resolve_entry_point("class Solution:\n    def f(self): pass", "f") == "Solution().f"
    assert resolve_entry_point("class A:\n    def f(self): pass\ndef f(): pass", "f") == "f"
    assert resolve_entry_point("class A:\n    def f(self): pass", "f") == "A().f"
    assert resolve_entry_point("from math import sqrt as f", "f") == "f"
    assert resolve_entry_point("def (", "f") == "f"


def test_opens_its_own_sandbox_from_a_config(
    taco: tuple[pd.DataFrame, pd.DataFrame], make_candidates: MakeCandidates
) -> None:
    problems, oracles = taco
    cands = make_candidates([("taco/sum", SUM_RIGHT), ("taco/sum", SUM_WRONG)])
    results = evaluate_programs(cands, problems, oracles, SandboxConfig(workers=1))
    assert _verdicts(results) == [(True, None), (False, "wrong_answer")]
