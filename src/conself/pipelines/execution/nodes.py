"""Nodes of the execution stage: every sampled program on every test input, in the sandbox."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pandas as pd

from conself.sandbox import Job, Sandbox, SandboxConfig

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
    samples: pd.DataFrame, problems: pd.DataFrame, params: dict[str, Any]
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Run each (program, input) in its own isolated process; one row per run."""
    keyed = list(_jobs(samples, problems))
    rows = []
    with Sandbox(sandbox_config(params.get("sandbox") or {})) as sandbox:
        for (key, _), record in zip(keyed, sandbox.run(job for _, job in keyed), strict=True):
            rows.append(
                (
                    *key,
                    str(record.outcome),
                    record.error_type,
                    record.output,
                    record.wall_time_s,
                    record.cpu_time_s,
                    record.peak_memory_kb,
                )
            )
    executions = pd.DataFrame(rows, columns=EXECUTION_COLUMNS).astype(
        {"sample_id": "int64", "input_index": "int64", "peak_memory_kb": "int64"}
    )
    outcome_share = executions["outcome"].value_counts(normalize=True) if rows else pd.Series()
    logger.info("executed %d runs; outcomes: %s", len(rows), outcome_share.round(3).to_dict())
    metrics = {"execution.n_runs": float(len(rows))}
    metrics |= {f"execution.share_{k}": float(v) for k, v in outcome_share.items()}
    return executions, {k: {"value": v, "step": 0} for k, v in metrics.items()}
