"""Deterministic train/eval split so self-improvement and evaluation problems stay disjoint."""

from __future__ import annotations

import hashlib

import pandas as pd


def split_key(problem_id: str, seed: int) -> float:
    """A stable number in [0, 1) per (seed, problem id), independent of the other rows."""
    digest = hashlib.sha256(f"{seed}:{problem_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_problems(
    problems_df: pd.DataFrame, eval_fraction: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split into ``(train_df, eval_df)`` by a stable hash of ``problem_id``.

    A problem's side depends only on its id and the seed (not on which other problems
    were loaded), so loading more or fewer problems never moves one across the split.
    Each side keeps the input order; the eval share is ``eval_fraction`` in expectation.
    """
    if not 0.0 <= float(eval_fraction) <= 1.0:
        raise ValueError(f"eval_fraction must be in [0, 1], got {eval_fraction!r}")
    if "problem_id" not in problems_df.columns:
        raise ValueError("split_problems needs a 'problem_id' column")
    ids = problems_df["problem_id"].astype(str)
    if ids.duplicated().any():
        raise ValueError(f"duplicate problem ids: {sorted(set(ids[ids.duplicated()]))[:5]}")
    is_eval = ids.map(lambda pid: split_key(pid, seed) < eval_fraction).astype(bool)
    train = problems_df.loc[~is_eval.to_numpy()].reset_index(drop=True)
    evaluation = problems_df.loc[is_eval.to_numpy()].reset_index(drop=True)
    return train, evaluation
