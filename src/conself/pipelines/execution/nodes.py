"""Nodes of the execution stage: every sampled program on every test input, in the sandbox."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from conself.sandbox import Job, Outcome, Sandbox, SandboxConfig
from conself.shards import ShardStore, content_key, group_shards, run_sharded

logger = logging.getLogger(__name__)

EXECUTION_COLUMNS = [
    "problem_id",
    "sample_id",
    "input_index",
    "outcome",
    "error_type",
    "output",
    "wall_time_s",
    "cpu_time_s",
    "peak_memory_kb",
]


def sandbox_config(params: dict[str, Any]) -> SandboxConfig:
    """Sandbox limits from the ``execution`` parameters (unknown keys are an error)."""
    keys = SandboxConfig.__dataclass_fields__
    unknown = sorted(set(params) - set(keys))
    if unknown:
        raise ValueError(f"parameters 'execution.sandbox': unknown keys {unknown}")
    return SandboxConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in params.items()})


def _jobs(samples: pd.DataFrame, problems: pd.DataFrame) -> Iterator[tuple[tuple, Job]]:
    by_id = problems.set_index("problem_id")
    for row in samples.itertuples(index=False):
        problem = by_id.loc[row.problem_id]
        for i, test_input in enumerate(problem["test_inputs"]):
            yield (
                (row.problem_id, row.sample_id, i),
                Job(row.program, problem["kind"], problem["entry_point"], test_input),
            )


def execute_samples(
    samples: pd.DataFrame,
    problems: pd.DataFrame,
    params: dict[str, Any],
    resume: dict[str, Any],
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Run each (program, input) in its own isolated process; one row per run.

    Runs are grouped in shards of problems (``execution.shard_size``) stored as they
    finish, so a rerun after a crash executes only the unfinished shards.
    """
    config = sandbox_config(params.get("sandbox") or {})
    by_problem = {pid: group for pid, group in samples.groupby("problem_id", sort=False)}
    store = ShardStore(
        Path(resume["shards_dir"]),
        "executions",
        content_key("executions", dataclasses.asdict(config), samples, problems),
    )
    inputs = problems.set_index("problem_id")["test_inputs"]
    shards = []
    for ids in group_shards(list(by_problem), int(params.get("shard_size", 8))):
        part = pd.concat([by_problem[pid] for pid in ids])
        n_runs = sum(len(inputs[pid]) * len(by_problem[pid]) for pid in ids)
        shards.append((content_key(part), part, n_runs))
    with contextlib.ExitStack() as stack:
        sandboxes: list[Sandbox] = []

        def compute(part: pd.DataFrame) -> pd.DataFrame:
            if not sandboxes:  # started on first use: a fully resumed stage starts none
                sandboxes.append(stack.enter_context(Sandbox(config)))
            return _execute(sandboxes[0], part, problems)

        executions = run_sharded(store, shards, compute, unit="runs", columns=EXECUTION_COLUMNS)
    executions = executions.astype(
        {"sample_id": "int64", "input_index": "int64", "peak_memory_kb": "int64"}
    )
    outcome_share = executions["outcome"].value_counts(normalize=True) if len(executions) else {}
    logger.info(
        "executed %d runs; outcomes: %s",
        len(executions),
        {k: round(float(v), 3) for k, v in dict(outcome_share).items()},
    )
    metrics = {"execution.n_runs": float(len(executions))}
    shares = dict(outcome_share)  # every outcome class, so that rounds share metric keys
    metrics |= {f"execution.share_{o.value}": float(shares.get(o.value, 0.0)) for o in Outcome}
    return executions, {k: {"value": v, "step": 0} for k, v in metrics.items()}


def _execute(sandbox: Sandbox, samples: pd.DataFrame, problems: pd.DataFrame) -> pd.DataFrame:
    keyed = list(_jobs(samples, problems))
    rows = [
        (
            *key,
            str(record.outcome),
            record.error_type,
            record.output,
            record.wall_time_s,
            record.cpu_time_s,
            record.peak_memory_kb,
        )
        for (key, _), record in zip(keyed, sandbox.run(job for _, job in keyed), strict=True)
    ]
    return pd.DataFrame(rows, columns=EXECUTION_COLUMNS).astype(
        {"sample_id": "int64", "input_index": "int64", "peak_memory_kb": "int64"}
    )
