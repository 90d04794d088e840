"""pass@k estimator against the closed form, and the per-model tables."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from conself.metrics import pass_at_1_table, pass_at_k, pass_at_k_table, per_problem_table


def closed_form(n: int, c: int, k: int) -> float:
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (5, 2, 1, 0.4),
        (5, 2, 2, 1 - 3 / 10),  # 1 - C(3,2)/C(5,2) = 0.7
        (5, 0, 1, 0.0),
        (5, 0, 3, 0.0),
        (5, 4, 2, 1.0),  # n - c = 1 < k
        (5, 5, 5, 1.0),
        (1, 1, 1, 1.0),
        (1, 0, 1, 0.0),
    ],
)
def test_hand_computed(n: int, c: int, k: int, expected: float) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("n", [1, 7, 20, 200])
def test_matches_closed_form_everywhere(n: int) -> None:
    for c in range(n + 1):
        for k in {1, 2, 5, 10, n}:
            if k <= n:
                assert pass_at_k(n, c, k) == pytest.approx(closed_form(n, c, k), abs=1e-9)


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="cannot be estimated"):
        pass_at_k(3, 0, 5)
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)
    with pytest.raises(ValueError):
        pass_at_k(0, 0, 1)


def _results() -> pd.DataFrame:
    rows = []
    # model a: p1 2/5 samples pass, p2 0/5; model b: p1 5/5, p2 1/5
    for model, passes in {"a": {"p1": 2, "p2": 0}, "b": {"p1": 5, "p2": 1}}.items():
        for pid, c in passes.items():
            for i in range(5):
                rows.append({"model": model, "problem_id": pid, "sample_index": i, "passed": i < c})
    return pd.DataFrame(rows)


def test_tables() -> None:
    results = _results()
    per = per_problem_table(results)
    assert per.set_index(["model", "problem_id"])["pass@1"].to_dict() == {
        ("a", "p1"): 0.4,
        ("a", "p2"): 0.0,
        ("b", "p1"): 1.0,
        ("b", "p2"): 0.2,
    }
    table = pass_at_k_table(results, ks=(1, 2, 10)).set_index("model")
    assert table.loc["a", "pass@1"] == pytest.approx(0.2)
    assert table.loc["a", "pass@2"] == pytest.approx((0.7 + 0.0) / 2)
    assert table.loc["b", "pass@2"] == pytest.approx((1.0 + 0.4) / 2)
    assert math.isnan(table.loc["a", "pass@10"])  # k > n: undefined, not biased
    assert table.loc["a", "n_problems"] == 2 and table.loc["a", "n_samples"] == 10
    one = pass_at_1_table(results).set_index("model")["pass@1"]
    assert one.to_dict() == pytest.approx({"a": 0.2, "b": 0.6})


def test_table_by_difficulty() -> None:
    results = _results()
    results["difficulty"] = results["problem_id"].map({"p1": "easy", "p2": "hard"})
    table = pass_at_1_table(results, by=["difficulty"])
    got = table.set_index(["model", "difficulty"])["pass@1"].to_dict()
    assert got == pytest.approx({("a", "easy"): 0.4, ("a", "hard"): 0.0,
                                 ("b", "easy"): 1.0, ("b", "hard"): 0.2})  # fmt: skip
