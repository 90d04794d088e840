"""pass@k: the unbiased estimator and per-model tables built from evaluation results."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one problem: ``1 - C(n-c, k) / C(n, k)``.

    ``n`` samples of which ``c`` passed. Computed as the product
    ``1 - prod_{i=n-c+1}^{n} (1 - k/i)`` (Chen et al. 2021) because the binomials
    overflow for realistic ``n``. ``k > n`` has no unbiased estimate and is an error.
    """
    if n < 1 or k < 1:
        raise ValueError(f"pass_at_k needs n >= 1 and k >= 1, got n={n}, k={k}")
    if not 0 <= c <= n:
        raise ValueError(f"pass_at_k needs 0 <= c <= n, got c={c}, n={n}")
    if k > n:
        raise ValueError(f"pass@{k} cannot be estimated from n={n} samples")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1, dtype=np.float64)))


def per_problem_table(results: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, problem): ``n`` samples, ``c`` passed, ``pass@1`` (= c / n).

    Why: every model-level number and the paired bootstrap start from this table, so
    problems are weighted equally whatever their sample count.
    """
    _require(results, ["model", "problem_id", "passed"])
    grouped = results.groupby(["model", "problem_id"], sort=True)["passed"]
    table = grouped.agg(n="size", c="sum").reset_index()
    table["c"] = table["c"].astype("int64")
    table["pass@1"] = table["c"] / table["n"]
    return table


def pass_at_k_table(
    results: pd.DataFrame, ks: Sequence[int] = (1,), by: Sequence[str] = ()
) -> pd.DataFrame:
    """Per model (and per ``by`` columns, e.g. ``difficulty``): mean pass@k over problems.

    Columns: ``model``, ``*by``, ``n_problems``, ``n_samples``, ``pass@k`` for each k.
    A k larger than some problem's sample count gives NaN (logged), not a biased number.
    """
    keys = ["model", *by]
    _require(results, [*keys, "problem_id", "passed"])
    counts = (
        results.groupby([*keys, "problem_id"], sort=True, dropna=False)["passed"]
        .agg(n="size", c="sum")
        .reset_index()
    )
    rows = []
    for key, group in counts.groupby(keys, sort=True, dropna=False):
        values = key if isinstance(key, tuple) else (key,)
        row: dict[str, object] = dict(zip(keys, values, strict=True))
        row["n_problems"] = len(group)
        row["n_samples"] = int(group["n"].sum())
        for k in ks:
            if int(group["n"].min()) < k:
                logger.warning("pass@%d undefined for %s: some problem has fewer samples", k, row)
                row[f"pass@{k}"] = float("nan")
            else:
                scores = [
                    pass_at_k(int(n), int(c), k)
                    for n, c in zip(group["n"], group["c"], strict=True)
                ]
                row[f"pass@{k}"] = float(np.mean(scores))
        rows.append(row)
    columns = [*keys, "n_problems", "n_samples", *(f"pass@{k}" for k in ks)]
    return pd.DataFrame(rows, columns=columns)


def pass_at_1_table(results: pd.DataFrame, by: Sequence[str] = ()) -> pd.DataFrame:
    """Per model: pass@1 averaged over problems (greedy decoding: the fraction passed)."""
    return pass_at_k_table(results, ks=(1,), by=by)


def _require(frame: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"results table lacks columns {missing}")
