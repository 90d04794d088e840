"""Paired bootstrap confidence intervals for the difference between two models.

Why paired: both models are scored on the same problems, and problem difficulty
varies far more than the models do; resampling problems (not scores independently)
keeps that shared variation out of the interval. A 2-4 point pass@1 gain is the size
of benchmark noise, so every reported difference carries this interval.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from conself.metrics.passk import per_problem_table

_CHUNK = 1000  # resamples per block: bounds memory at _CHUNK * n_problems indices


def paired_bootstrap_ci(
    a: Sequence[bool | float],
    b: Sequence[bool | float],
    n_resamples: int = 10_000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float, float]:
    """``(diff, low, high)``: ``diff = mean(b) - mean(a)`` with a percentile bootstrap CI.

    ``a[i]`` and ``b[i]`` are the scores of the two models on problem ``i``. Problems
    are resampled with replacement ``n_resamples`` times from ``numpy``'s
    ``default_rng(seed)``, so the same call always gives the same interval. When every
    paired difference is the same value the interval collapses to that value.
    """
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"a and b must be paired 1-d sequences, got {x.shape} and {y.shape}")
    if x.size == 0:
        raise ValueError("paired_bootstrap_ci needs at least one paired problem")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    d = y - x
    diff = float(d.mean())
    if np.all(d == d[0]):
        return diff, diff, diff
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples, dtype=np.float64)
    for start in range(0, n_resamples, _CHUNK):
        size = min(_CHUNK, n_resamples - start)
        idx = rng.integers(0, d.size, size=(size, d.size))
        means[start : start + size] = d[idx].mean(axis=1)
    alpha = 1.0 - confidence
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return diff, float(low), float(high)


def compare_models(
    results: pd.DataFrame,
    model_a: str,
    model_b: str,
    *,
    n_resamples: int = 10_000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, float | int | str]:
    """pass@1 of two models on the problems both were evaluated on, and ``b - a`` with CI.

    Why only shared problems: a problem one model never saw would make the pairing,
    and hence the interval, meaningless.
    """
    table = per_problem_table(results)
    wide = table.pivot(index="problem_id", columns="model", values="pass@1")
    for model in (model_a, model_b):
        if model not in wide.columns:
            raise ValueError(f"no results for model {model!r}; have {sorted(wide.columns)}")
    paired = wide[[model_a, model_b]].dropna()
    diff, low, high = paired_bootstrap_ci(
        paired[model_a].to_numpy(),
        paired[model_b].to_numpy(),
        n_resamples=n_resamples,
        seed=seed,
        confidence=confidence,
    )
    return {
        "model_a": model_a,
        "model_b": model_b,
        "n_problems": len(paired),
        "pass@1_a": float(paired[model_a].mean()),
        "pass@1_b": float(paired[model_b].mean()),
        "diff": diff,
        "ci_low": low,
        "ci_high": high,
        "confidence": confidence,
    }
