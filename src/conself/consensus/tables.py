"""From the ``samples`` and ``executions`` tables to per-problem behaviours.

Everything here is bookkeeping and validation: the rules themselves live in
``entropy`` and ``scores``. The checks are strict because a lost execution row
would otherwise look exactly like a crash and shift entropy, curriculum and pairs.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from conself.consensus.entropy import Behaviour, semantic_entropy
from conself.consensus.errors import ConsensusError
from conself.consensus.scores import consensus_scores

logger = logging.getLogger(__name__)

OK = "ok"
"""The only outcome that is not a crash; every other class has ``output`` None."""

SAMPLE_COLUMNS = ("problem_id", "sample_id", "program")
EXECUTION_COLUMNS = ("problem_id", "sample_id", "input_index", "outcome", "output")

STATS_COLUMNS = (
    "problem_id",
    "n_samples",
    "n_inputs",
    "n_fully_crashed",
    "n_partially_crashed",
    "crash_rate",
    "semantic_entropy",
    "n_clusters",
    "cluster_sizes",
    "majority_share",
)
CONSENSUS_COLUMNS = (
    "problem_id",
    "sample_id",
    "consensus",
    "fully_crashed",
    "n_crashed_inputs",
    "cluster_id",
)


@dataclass(frozen=True)
class ProblemBehaviours:
    """The extracted programs of one problem, sorted by ``sample_id``."""

    problem_id: str
    sample_ids: tuple[int, ...]
    behaviours: tuple[Behaviour, ...]
    n_inputs: int


def require_columns(table: pd.DataFrame, columns: Iterable[str], name: str) -> None:
    """Raise a ConsensusError naming the table and the missing columns."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ConsensusError(f"table '{name}' lacks column(s) {missing}")


def is_missing(value: object) -> bool:
    """None, NaN or pd.NA (parquet and pandas' string dtype give any of them)."""
    if value is None or value is pd.NA:
        return True
    return isinstance(value, float) and math.isnan(value)


def _as_int(value: object, what: str) -> int:
    """An integer id, or a ConsensusError (a float NaN id means a broken join)."""
    if isinstance(value, bool) or is_missing(value):
        raise ConsensusError(f"{what} is missing or not an integer: {value!r}")
    try:
        as_int = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError) as error:
        raise ConsensusError(f"{what} is not an integer: {value!r}") from error
    if as_int != value:
        raise ConsensusError(f"{what} is not an integer: {value!r}")
    return as_int


def _column(table: pd.DataFrame, name: str) -> list[object]:
    """Plain Python values of a column (fast path: no per-cell pandas boxing)."""
    return table[name].tolist()


def _id_column(table: pd.DataFrame, name: str, what: str) -> list[int]:
    """An integer column as Python ints; per-cell checks only when the dtype is not int."""
    column = table[name]
    if pd.api.types.is_integer_dtype(column.dtype):
        return [int(v) for v in column.tolist()]
    return [_as_int(v, f"{what} {name}") for v in column.tolist()]


def extracted_samples(samples: pd.DataFrame) -> dict[str, list[int]]:
    """Sample ids per problem (first-appearance order of problems), sorted.

    Rows with no program are dropped: a completion without a code fence is not
    a sample (CONSELF.md, step 1), so it must not count in ``n_samples``.
    """
    require_columns(samples, SAMPLE_COLUMNS, "samples")
    by_problem: dict[str, list[int]] = {}
    seen: set[tuple[str, int]] = set()
    n_dropped = 0
    for raw_pid, sid, program in zip(
        _column(samples, "problem_id"),
        _id_column(samples, "sample_id", "samples:"),
        _column(samples, "program"),
        strict=True,
    ):
        if is_missing(raw_pid):
            raise ConsensusError(f"samples: a row has no problem_id (sample_id={sid!r})")
        problem_id = str(raw_pid)
        if (problem_id, sid) in seen:
            raise ConsensusError(f"samples: problem {problem_id!r} has sample_id {sid} twice")
        seen.add((problem_id, sid))
        if is_missing(program):
            n_dropped += 1
            continue
        by_problem.setdefault(problem_id, []).append(sid)
    if n_dropped:
        logger.info("ignored %d sample row(s) without an extracted program", n_dropped)
    return {pid: sorted(ids) for pid, ids in by_problem.items()}


def collect_behaviours(
    samples: pd.DataFrame,
    executions: pd.DataFrame,
    problems: pd.DataFrame | None = None,
) -> list[ProblemBehaviours]:
    """Assemble each problem's behaviour vectors, checking the tables agree.

    The number of inputs of a problem is ``len(test_inputs)`` when ``problems`` is
    given, otherwise the largest ``input_index`` + 1 seen for it; either way every
    sample must have exactly one row for each input ``0..m-1``. Errors name the
    problem, sample and input.
    """
    sample_ids = extracted_samples(samples)
    valid = {(pid, sid) for pid, ids in sample_ids.items() for sid in ids}
    all_rows = set(
        zip(
            (str(p) for p in _column(samples, "problem_id")),
            _id_column(samples, "sample_id", "samples:"),
            strict=True,
        )
    )
    require_columns(executions, EXECUTION_COLUMNS, "executions")

    cells: dict[tuple[str, int], dict[int, str | None]] = {key: {} for key in valid}
    for raw_pid, sid, index, outcome, output in zip(
        _column(executions, "problem_id"),
        _id_column(executions, "sample_id", "executions:"),
        _id_column(executions, "input_index", "executions:"),
        _column(executions, "outcome"),
        _column(executions, "output"),
        strict=True,
    ):
        problem_id = str(raw_pid)
        key = (problem_id, sid)
        if key not in valid:
            if key in all_rows:
                continue  # a sample without a program: not part of any distribution
            raise ConsensusError(
                f"executions: problem {problem_id!r} sample {sid}: no such sample in 'samples'"
            )
        where = f"executions: problem {problem_id!r} sample {sid} input {index}"
        if index < 0:
            raise ConsensusError(f"{where}: negative input_index")
        if index in cells[key]:
            raise ConsensusError(f"{where}: duplicate execution row")
        if outcome == OK:
            if is_missing(output):
                raise ConsensusError(f"{where}: outcome 'ok' but output is missing")
            cells[key][index] = str(output)
        else:
            if is_missing(outcome):
                raise ConsensusError(f"{where}: outcome is missing")
            if not is_missing(output):
                raise ConsensusError(
                    f"{where}: outcome {outcome!r} is a crash but output is not None"
                )
            cells[key][index] = None

    expected_inputs = _inputs_per_problem(problems) if problems is not None else {}
    result = []
    for problem_id, ids in sample_ids.items():
        if problems is not None:
            if problem_id not in expected_inputs:
                raise ConsensusError(f"problem {problem_id!r} has samples but is not in 'problems'")
            n_inputs = expected_inputs[problem_id]
        else:
            n_inputs = 1 + max((i for sid in ids for i in cells[(problem_id, sid)]), default=-1)
        if n_inputs == 0:
            raise ConsensusError(
                f"problem {problem_id!r}: no test inputs / no execution rows for its samples"
            )
        behaviours = []
        for sid in ids:
            row = cells[(problem_id, sid)]
            extra = sorted(i for i in row if i >= n_inputs)
            if extra:
                raise ConsensusError(
                    f"problem {problem_id!r} sample {sid} input {extra[0]}: "
                    f"input_index out of range (problem has {n_inputs} inputs)"
                )
            missing = [i for i in range(n_inputs) if i not in row]
            if missing:
                raise ConsensusError(
                    f"problem {problem_id!r} sample {sid} input {missing[0]}: missing execution "
                    f"row ({len(missing)} of {n_inputs} inputs missing)"
                )
            behaviours.append(tuple(row[i] for i in range(n_inputs)))
        result.append(ProblemBehaviours(problem_id, tuple(ids), tuple(behaviours), n_inputs))
    return result


def _inputs_per_problem(problems: pd.DataFrame) -> dict[str, int]:
    """Number of test inputs per problem, from ``problems.test_inputs``."""
    require_columns(problems, ("problem_id", "test_inputs"), "problems")
    counts: dict[str, int] = {}
    for problem_id, inputs in problems[["problem_id", "test_inputs"]].itertuples(
        index=False, name=None
    ):
        if inputs is None or isinstance(inputs, (str, float)):
            raise ConsensusError(f"problems: problem {problem_id!r} test_inputs is not a list")
        counts[str(problem_id)] = len(inputs)
    return counts


def problem_stats(
    samples: pd.DataFrame,
    executions: pd.DataFrame,
    problems: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per problem with samples: crash rate, semantic entropy, clusters.

    ``semantic_entropy`` is NaN when every program crashed on every input; the
    curriculum skips those. ``majority_share`` is the largest cluster's share of
    the survivors (NaN without survivors), a readable companion of the entropy.
    """
    rows = []
    for problem in collect_behaviours(samples, executions, problems):
        result = semantic_entropy(problem.behaviours)
        partial = sum(
            1
            for b in problem.behaviours
            if any(o is None for o in b) and any(o is not None for o in b)
        )
        rows.append(
            {
                "problem_id": problem.problem_id,
                "n_samples": result.n_samples,
                "n_inputs": problem.n_inputs,
                "n_fully_crashed": result.n_fully_crashed,
                "n_partially_crashed": partial,
                "crash_rate": result.crash_rate,
                "semantic_entropy": result.entropy,
                "n_clusters": result.n_clusters,
                "cluster_sizes": list(result.cluster_sizes),
                "majority_share": (
                    result.cluster_sizes[0] / result.n_survivors if result.n_survivors else math.nan
                ),
            }
        )
    logger.info("semantic entropy computed for %d problem(s)", len(rows))
    table = pd.DataFrame(rows, columns=list(STATS_COLUMNS))
    return table.astype(
        {
            "problem_id": object,
            "n_samples": "int64",
            "n_inputs": "int64",
            "n_fully_crashed": "int64",
            "n_partially_crashed": "int64",
            "crash_rate": "float64",
            "semantic_entropy": "float64",
            "n_clusters": "int64",
            "majority_share": "float64",
        }
    )


def sample_consensus(
    samples: pd.DataFrame,
    executions: pd.DataFrame,
    problems: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per extracted program: its consensus, crash counts and cluster.

    ``cluster_id`` indexes the problem's ``cluster_sizes`` in ``problem_stats``
    (0 = majority behaviour; -1 = fully crashed). Rows follow the problems'
    first appearance in ``samples``, then ``sample_id``.
    """
    rows = []
    for problem in collect_behaviours(samples, executions, problems):
        scores = consensus_scores(problem.behaviours)
        clusters = semantic_entropy(problem.behaviours).cluster_ids
        for sid, behaviour, score, cluster in zip(
            problem.sample_ids, problem.behaviours, scores, clusters, strict=True
        ):
            n_crashed = sum(1 for output in behaviour if output is None)
            rows.append(
                {
                    "problem_id": problem.problem_id,
                    "sample_id": sid,
                    "consensus": score,
                    "fully_crashed": n_crashed == problem.n_inputs,
                    "n_crashed_inputs": n_crashed,
                    "cluster_id": cluster,
                }
            )
    table = pd.DataFrame(rows, columns=list(CONSENSUS_COLUMNS))
    return table.astype(
        {
            "problem_id": object,
            "sample_id": "int64",
            "consensus": "float64",
            "fully_crashed": bool,
            "n_crashed_inputs": "int64",
            "cluster_id": "int64",
        }
    )
