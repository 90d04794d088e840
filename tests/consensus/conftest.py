"""Builders for the ``samples`` / ``executions`` tables the consensus engine reads."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import pandas as pd
import pytest

# One program: (program text, outputs over the inputs with None = crash).
Program = tuple[str, Sequence[str | None]]
Spec = Mapping[str, Sequence[Program]]


def make_tables(spec: Spec) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``samples`` and ``executions`` with sample ids 0..n-1 in the order given.

    The completion is the program wrapped in a fence, so it differs from the
    program text, as it does in the real tables.
    """
    samples, executions = [], []
    for problem_id, programs in spec.items():
        for sample_id, (program, outputs) in enumerate(programs):
            samples.append(
                {
                    "problem_id": problem_id,
                    "sample_id": sample_id,
                    "program": program,
                    "completion": f"```python\n{program}\n```",
                    "observation_index": 0,
                }
            )
            for input_index, output in enumerate(outputs):
                executions.append(
                    {
                        "problem_id": problem_id,
                        "sample_id": sample_id,
                        "input_index": input_index,
                        "outcome": "ok" if output is not None else "runtime_error",
                        "output": output,
                    }
                )
    return pd.DataFrame(samples), pd.DataFrame(executions)


@pytest.fixture
def tables() -> Callable[[Spec], tuple[pd.DataFrame, pd.DataFrame]]:
    """The table builder, as a fixture so test modules need not import conftest."""
    return make_tables
