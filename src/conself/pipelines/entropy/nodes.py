"""Nodes of the entropy stage: code semantic entropy per problem, consensus per program."""

from __future__ import annotations

import pandas as pd

from conself.consensus import problem_stats, sample_consensus


def compute_problem_stats(
    samples: pd.DataFrame, executions: pd.DataFrame, problems: pd.DataFrame
) -> pd.DataFrame:
    """SE, crash rate and behaviour clusters of every sampled problem."""
    return problem_stats(samples, executions, problems)


def compute_sample_consensus(
    samples: pd.DataFrame, executions: pd.DataFrame, problems: pd.DataFrame
) -> pd.DataFrame:
    """Behavioural consensus of every program with the others of its problem."""
    return sample_consensus(samples, executions, problems)
