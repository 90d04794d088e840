"""build_pairs: chosen/rejected rules, weights, texts and order, by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from conself.consensus import ConsensusError, build_pairs, sample_consensus

N = None


def pairs_for(tables, spec, ids=None, max_pairs: int = 3) -> pd.DataFrame:
    samples, executions = tables(spec)
    consensus = sample_consensus(samples, executions)
    return build_pairs(list(spec) if ids is None else ids, samples, consensus, max_pairs)


def ids(pairs: pd.DataFrame) -> list[tuple[int, int]]:
    return list(zip(pairs["chosen_sample_id"], pairs["rejected_sample_id"], strict=True))


# 2 inputs, 5 programs:      input 0 votes a:3 b:1 c:1   input 1 votes x:3 y:1 z:1
# s0 (c, z): (1/5 + 1/5)/2 = 1/5      s1 (a, x): (3/5 + 3/5)/2 = 3/5
# s2 (b, x): (1/5 + 3/5)/2 = 2/5      s3 (a, y): (3/5 + 1/5)/2 = 2/5
# s4 (a, x): 3/5
# chosen [s1, s4] (tie, sample order); rejected [s0 (1/5), s2, s3 (2/5 tie, sample order)]
TIES = {
    "ties": [
        ("p0", ["c", "z"]),
        ("p1", ["a", "x"]),
        ("p2", ["b", "x"]),
        ("p3", ["a", "y"]),
        ("p4", ["a", "x"]),
    ]
}


def test_ties_in_chosen_and_rejected(tables) -> None:
    pairs = pairs_for(tables, TIES, max_pairs=10)
    assert ids(pairs) == [(1, 0), (1, 2), (1, 3), (4, 0), (4, 2), (4, 3)]
    assert pairs["pair_index"].tolist() == [0, 1, 2, 3, 4, 5]
    assert pairs["chosen_consensus"].tolist() == [0.6] * 6
    assert pairs["weight"].tolist() == [0.6] * 6
    assert pairs["rejected_consensus"].tolist() == [0.2, 0.4, 0.4] * 2
    assert pairs["chosen"].tolist()[0] == "```python\np1\n```"  # the completion, not the code
    assert pairs["rejected"].tolist()[0] == "```python\np0\n```"


def test_max_pairs_cap(tables) -> None:
    assert ids(pairs_for(tables, TIES)) == [(1, 0), (1, 2), (1, 3)]
    assert ids(pairs_for(tables, TIES, max_pairs=4)) == [(1, 0), (1, 2), (1, 3), (4, 0)]
    assert pairs_for(tables, TIES, max_pairs=0).empty


def test_partial_crash_pairs(tables) -> None:
    # consensus 8/9, 8/9, 4/9, 0 (see test_consensus_tables): D is fully crashed and
    # an alive lower program exists, so D is never rejected.
    spec = {
        "p": [("A", ["1", "2", "3"]), ("B", ["1", "2", "3"]), ("C", ["1", "9", N]), ("D", [N] * 3)]
    }
    pairs = pairs_for(tables, spec)
    assert ids(pairs) == [(0, 2), (1, 2)]
    assert pairs["weight"].tolist() == [8 / 9, 8 / 9]
    assert pairs["rejected_fully_crashed"].tolist() == [False, False]


def test_identical_texts_are_skipped(tables) -> None:
    # 1 input: s0 "A"->1, s1 "T"->1, s2 "T"->2 (same text, other output), s3 "B"->1.
    # consensus 3/4, 3/4, 1/4, 3/4: chosen [0, 1, 3], rejected [2];
    # (1, 2) is skipped (same text); the cap of 3 is not refilled from elsewhere.
    spec = {"p": [("A", ["1"]), ("T", ["1"]), ("T", ["2"]), ("B", ["1"])]}
    pairs = pairs_for(tables, spec)
    assert ids(pairs) == [(0, 2), (3, 2)]
    assert pairs["pair_index"].tolist() == [0, 1]
    assert pairs["weight"].tolist() == [0.75, 0.75]


def test_fallback_to_fully_crashed_rejected(tables) -> None:
    # 2 inputs: s0 (a, crash) and s1 (crash, a) each get (1 + 0)/2 = 1/2 and form two
    # clusters (SE 1). s2 and s3 crashed everywhere: 0. No alive lower program, so the
    # fully crashed ones are rejected: (0,2), (0,3), (1,2) with the cap of 3.
    spec = {"p": [("x", ["a", N]), ("y", [N, "a"]), ("z", [N, N]), ("w", [N, N])]}
    pairs = pairs_for(tables, spec)
    assert ids(pairs) == [(0, 2), (0, 3), (1, 2)]
    assert pairs["weight"].tolist() == [0.5] * 3
    assert pairs["rejected_consensus"].tolist() == [0.0] * 3
    assert pairs["rejected_fully_crashed"].tolist() == [True] * 3


def test_no_pairs_when_all_equal(tables) -> None:
    spec = {
        "crash": [("a", [N]), ("b", [N])],
        "agree": [("a", ["1"]), ("b", ["1"])],
        "split": [("a", ["1"]), ("b", ["2"])],  # 1/2 each: equal, nothing preferred
    }
    pairs = pairs_for(tables, spec)
    assert pairs.empty
    assert "weight" in pairs.columns


def test_order_follows_given_problem_order(tables) -> None:
    spec = {
        "first": [("a", ["1"]), ("b", ["1"]), ("c", ["2"])],
        "second": [("a", ["1"]), ("b", ["2"]), ("c", ["2"])],
    }
    pairs = pairs_for(tables, spec, ids=["second", "first", "second"])
    assert pairs["problem_id"].tolist() == ["second", "second", "first", "first"]
    assert ids(pairs) == [(1, 0), (2, 0), (0, 2), (1, 2)]
    only_first = pairs_for(tables, spec, ids=["first"])
    assert only_first["problem_id"].unique().tolist() == ["first"]


def test_inconsistent_inputs_are_errors(tables) -> None:
    samples, executions = tables(TIES)
    consensus = sample_consensus(samples, executions)
    with pytest.raises(ConsensusError, match="no row in sample_consensus"):
        build_pairs(["unknown"], samples, consensus)
    with pytest.raises(ConsensusError, match="sample 4: present in only one"):
        build_pairs(["ties"], samples[samples["sample_id"] != 4], consensus)
    with pytest.raises(ConsensusError, match="max_pairs_per_problem"):
        build_pairs(["ties"], samples, consensus, -1)
