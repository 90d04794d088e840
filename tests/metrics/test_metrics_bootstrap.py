"""Paired bootstrap: reproducible, sensible intervals, and the model comparison."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conself.metrics import compare_models, paired_bootstrap_ci


def test_seeded_is_reproducible() -> None:
    rng = np.random.default_rng(1)
    a = rng.random(50)  # continuous scores: different seeds give different quantiles
    b = rng.random(50) + 0.1
    first = paired_bootstrap_ci(a, b, n_resamples=2000, seed=7)
    assert paired_bootstrap_ci(a, b, n_resamples=2000, seed=7) == first
    assert paired_bootstrap_ci(list(a), list(b), n_resamples=2000, seed=7) == first
    other = paired_bootstrap_ci(a, b, n_resamples=2000, seed=8)
    assert other[0] == first[0] and other[1:] != first[1:]
    diff, low, high = first
    assert diff == pytest.approx(b.mean() - a.mean())
    assert low <= diff <= high


def test_strict_domination_is_above_zero() -> None:
    a = [0.0, 0.2, 0.4, 0.1, 0.0, 0.3]
    b = [0.5, 0.3, 0.9, 0.2, 0.1, 0.6]
    diff, low, high = paired_bootstrap_ci(a, b)
    assert 0 < low <= diff <= high


def test_weak_domination_with_many_problems_is_above_zero() -> None:
    a = [False] * 100
    b = [True] * 30 + [False] * 70
    diff, low, high = paired_bootstrap_ci(a, b)
    assert diff == pytest.approx(0.3)
    assert 0 < low < diff < high


def test_identical_is_zero() -> None:
    a = [True, False, True, True, False]
    assert paired_bootstrap_ci(a, a) == (0.0, 0.0, 0.0)


def test_confidence_widens_interval() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.random(40) < 0.5, rng.random(40) < 0.5
    _, low90, high90 = paired_bootstrap_ci(a, b, confidence=0.90)
    _, low99, high99 = paired_bootstrap_ci(a, b, confidence=0.99)
    assert low99 <= low90 and high90 <= high99


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="paired"):
        paired_bootstrap_ci([1, 0], [1])
    with pytest.raises(ValueError, match="at least one"):
        paired_bootstrap_ci([], [])
    with pytest.raises(ValueError, match="confidence"):
        paired_bootstrap_ci([1], [0], confidence=1.5)


def test_compare_models_pairs_shared_problems() -> None:
    rows = [
        ("p1", "start", False), ("p2", "start", False), ("p3", "start", True),
        ("p1", "trained", True), ("p2", "trained", True), ("p3", "trained", True),
        ("p4", "trained", True),  # not evaluated for start: left out of the pairing
    ]  # fmt: skip
    results = pd.DataFrame(
        [{"problem_id": p, "model": m, "sample_index": 0, "passed": ok} for p, m, ok in rows]
    )
    out = compare_models(results, "start", "trained", n_resamples=500)
    assert out["n_problems"] == 3
    assert out["pass@1_a"] == pytest.approx(1 / 3) and out["pass@1_b"] == 1.0
    assert out["diff"] == pytest.approx(2 / 3)
    assert out["ci_low"] <= out["diff"] <= out["ci_high"]
    with pytest.raises(ValueError, match="no results for model 'other'"):
        compare_models(results, "start", "other")
