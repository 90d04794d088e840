"""select_curriculum: filters, reasons and min-max normalisation, by hand."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from conself.consensus import ConsensusError, problem_stats, select_curriculum

NAN = math.nan


def stats(*rows: tuple[str, float, float]) -> pd.DataFrame:
    """(problem_id, crash_rate, semantic_entropy) rows, plus an extra column to keep."""
    return pd.DataFrame(
        [
            {"problem_id": p, "crash_rate": c, "semantic_entropy": s, "n_samples": 5}
            for p, c, s in rows
        ]
    )


def test_normalisation_over_three_problems() -> None:
    # SE 0.5, 1.0, 1.5 -> normalised (x - 0.5) / 1.0 = 0, 0.5, 1
    table = stats(("a", 0.0, 0.5), ("b", 0.0, 1.0), ("c", 0.0, 1.5))
    at_03 = select_curriculum(table, tau=0.3)
    assert at_03["normalized_entropy"].tolist() == [0.0, 0.5, 1.0]
    assert at_03["selected"].tolist() == [True, False, False]
    assert at_03["reason"].tolist() == ["selected", "above_tau", "above_tau"]
    at_06 = select_curriculum(table, tau=0.6)
    assert at_06["selected"].tolist() == [True, True, False]
    # strict "<": at tau 0.5 the middle problem (exactly 0.5) is dropped; at 1.0 the top one.
    assert select_curriculum(table, tau=0.5)["selected"].tolist() == [True, False, False]
    assert select_curriculum(table, tau=1.0)["selected"].tolist() == [True, True, False]


def test_normalisation_ignores_dropped_problems() -> None:
    # "x" (crash 0.9, SE 3.0) and "z" (SE 0) must not stretch the range of a, b, c.
    table = stats(
        ("a", 0.0, 0.5), ("x", 0.9, 3.0), ("b", 0.2, 1.0), ("z", 0.0, 0.0), ("c", 0.0, 1.5)
    )
    result = select_curriculum(table, tau=0.6)
    assert result["normalized_entropy"].tolist()[0] == 0.0
    assert result["normalized_entropy"].tolist()[2] == 0.5
    assert result["normalized_entropy"].tolist()[4] == 1.0
    assert math.isnan(result["normalized_entropy"].tolist()[1])
    assert math.isnan(result["normalized_entropy"].tolist()[3])
    assert result["reason"].tolist() == [
        "selected",
        "crash_rate",
        "selected",
        "zero_entropy",
        "above_tau",
    ]


def test_crash_rate_boundary() -> None:
    table = stats(("at", 0.8, 0.5), ("below", 0.79, 0.5), ("ratio", 4 / 5, 0.5))
    result = select_curriculum(table)
    assert result["reason"].tolist() == ["crash_rate", "selected", "crash_rate"]
    assert result["selected"].tolist() == [False, True, False]
    # the parameter moves the boundary
    assert select_curriculum(table, max_crash_rate=0.9)["selected"].tolist() == [True] * 3


def test_reason_precedence() -> None:
    table = stats(
        ("all_crash", 1.0, NAN),  # undefined beats crash_rate
        ("crashy_agree", 0.9, 0.0),  # crash_rate beats zero_entropy
        ("agree", 0.0, 0.0),
        ("agree_noise", 0.0, 1e-13),
        ("low", 0.0, 0.4),
        ("high", 0.0, 2.0),
    )
    result = select_curriculum(table)
    assert result["reason"].tolist() == [
        "undefined_entropy",
        "crash_rate",
        "zero_entropy",
        "zero_entropy",
        "selected",
        "above_tau",
    ]


def test_degenerate_single_problem_is_kept_at_zero() -> None:
    result = select_curriculum(stats(("only", 0.2, 0.9), ("agree", 0.0, 0.0)))
    assert result["normalized_entropy"].tolist()[0] == 0.0
    assert result["selected"].tolist() == [True, False]


def test_degenerate_equal_entropies_are_all_kept() -> None:
    result = select_curriculum(stats(("a", 0.0, 1.0), ("b", 0.1, 1.0)))
    assert result["normalized_entropy"].tolist() == [0.0, 0.0]
    assert result["selected"].tolist() == [True, True]


def test_keeps_every_row_and_column() -> None:
    table = stats(("a", 0.0, 0.5), ("b", 1.0, NAN))
    result = select_curriculum(table)
    assert len(result) == 2
    assert result["n_samples"].tolist() == [5, 5]
    assert list(result.columns)[-3:] == ["normalized_entropy", "selected", "reason"]
    assert "reason" not in table.columns  # input untouched
    assert select_curriculum(table.iloc[:0]).empty


def test_end_to_end_from_tables(tables) -> None:
    n = None
    spec = {
        "crash": [("a", [n]), ("b", [n])],  # undefined
        "agree": [("a", ["1"]), ("b", ["1"])],  # SE 0
        "split31": [("a", ["1"]), ("b", ["1"]), ("c", ["2"]), ("d", ["1"])],  # 0.811
        "split22": [("a", ["1"]), ("b", ["2"]), ("c", ["2"]), ("d", ["1"])],  # 1.0
        "mostly_crash": [("a", ["1"]), ("b", ["2"])] + [(f"c{i}", [n]) for i in range(8)],
    }
    result = select_curriculum(problem_stats(*tables(spec)), tau=0.3)
    # remaining: split31 (0.811) and split22 (1.0) -> normalised 0 and 1
    assert result.set_index("problem_id")["reason"].to_dict() == {
        "crash": "undefined_entropy",
        "agree": "zero_entropy",
        "split31": "selected",
        "split22": "above_tau",
        "mostly_crash": "crash_rate",
    }


def test_bad_parameters_and_columns() -> None:
    with pytest.raises(ConsensusError, match="tau"):
        select_curriculum(stats(("a", 0.0, 0.5)), tau=NAN)
    with pytest.raises(ConsensusError, match="semantic_entropy"):
        select_curriculum(pd.DataFrame({"problem_id": ["a"], "crash_rate": [0.0]}))
