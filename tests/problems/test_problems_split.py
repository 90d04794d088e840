"""split_problems: deterministic, disjoint, and stable when the problem set grows."""

from __future__ import annotations

import pandas as pd
import pytest

from conself.problems import load_problems, split_problems


def _frame(n: int) -> pd.DataFrame:
    return pd.DataFrame({"problem_id": [f"taco/{i}" for i in range(n)], "x": range(n)})


def test_deterministic_disjoint_and_complete():
    df = _frame(400)
    train, evaluation = split_problems(df, 0.25, seed=7)
    again_train, again_eval = split_problems(df, 0.25, seed=7)
    pd.testing.assert_frame_equal(train, again_train)
    pd.testing.assert_frame_equal(evaluation, again_eval)
    assert not set(train["problem_id"]) & set(evaluation["problem_id"])
    assert len(train) + len(evaluation) == len(df)
    assert 60 <= len(evaluation) <= 140
    # each side keeps the input order
    assert train["x"].is_monotonic_increasing and evaluation["x"].is_monotonic_increasing


def test_seed_changes_split_and_growth_keeps_assignment():
    small_train, small_eval = split_problems(_frame(100), 0.3, seed=1)
    big_train, big_eval = split_problems(_frame(300), 0.3, seed=1)
    assert set(small_eval["problem_id"]) <= set(big_eval["problem_id"])
    assert set(small_train["problem_id"]) <= set(big_train["problem_id"])
    _, other_eval = split_problems(_frame(100), 0.3, seed=2)
    assert set(other_eval["problem_id"]) != set(small_eval["problem_id"])


def test_edge_fractions_and_errors():
    df = _frame(20)
    train, evaluation = split_problems(df, 0.0, seed=0)
    assert len(train) == 20 and evaluation.empty and list(evaluation.columns) == list(df.columns)
    train, evaluation = split_problems(df, 1.0, seed=0)
    assert train.empty and len(evaluation) == 20
    with pytest.raises(ValueError, match="eval_fraction"):
        split_problems(df, 1.5, seed=0)
    with pytest.raises(ValueError, match="duplicate"):
        split_problems(pd.concat([df, df]), 0.5, seed=0)


def test_humaneval_split_is_reproducible():
    problems, _ = load_problems("humaneval")
    train, evaluation = split_problems(problems, 0.5, seed=0)
    assert len(train) + len(evaluation) == 161
    assert not set(train["problem_id"]) & set(evaluation["problem_id"])
    assert list(train.columns) == list(problems.columns)
