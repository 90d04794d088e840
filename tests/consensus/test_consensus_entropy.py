"""Pure cores: semantic entropy, consensus scores and pair positions, by hand."""

from __future__ import annotations

import math

import pytest

from conself.consensus import ConsensusError, consensus_scores, pair_positions, semantic_entropy

N = None  # a crash on that input


def test_all_crash_entropy_is_undefined() -> None:
    result = semantic_entropy([(N, N), (N, N), (N, N)])
    assert result.n_samples == 3
    assert result.n_fully_crashed == 3
    assert result.crash_rate == 1.0
    assert math.isnan(result.entropy)
    assert result.cluster_sizes == ()
    assert result.cluster_ids == (-1, -1, -1)


def test_all_agree_entropy_is_exactly_zero() -> None:
    result = semantic_entropy([("1", "2")] * 4)
    assert result.entropy == 0.0
    assert math.copysign(1.0, result.entropy) == 1.0  # not -0.0
    assert result.cluster_sizes == (4,)
    assert result.crash_rate == 0.0


def test_three_versus_one() -> None:
    # p = (3/4, 1/4): SE = -(.75 log2 .75 + .25 log2 .25) = 0.311278 + 0.5 = 0.811278...
    result = semantic_entropy([("b",), ("a",), ("a",), ("a",)])
    assert result.entropy == pytest.approx(0.8112781244591328, abs=1e-15)
    assert result.cluster_sizes == (3, 1)
    assert result.cluster_ids == (1, 0, 0, 0)  # cluster 0 is the majority


def test_two_equal_clusters_is_one_bit_and_ties_keep_first_appearance() -> None:
    result = semantic_entropy([("b",), ("a",), ("a",), ("b",)])
    assert result.entropy == 1.0
    assert result.cluster_ids == (0, 1, 1, 0)


def test_partial_crash_is_its_own_cluster_and_fully_crashed_is_left_out() -> None:
    # 3 inputs. A and B agree; C crashed on input 2 only -> distinct vector;
    # D crashed everywhere -> excluded, counted. Survivors 3: clusters {A,B}, {C}.
    # SE = -(2/3 log2 2/3 + 1/3 log2 1/3) = 0.918295834...
    result = semantic_entropy([("1", "2", "3"), ("1", "2", "3"), ("1", "9", N), (N, N, N)])
    assert result.crash_rate == 0.25
    assert result.n_survivors == 3
    assert result.cluster_sizes == (2, 1)
    assert result.cluster_ids == (0, 0, 1, -1)
    assert result.entropy == pytest.approx(0.9182958340544896, abs=1e-15)


def test_none_equals_none_inside_a_behaviour() -> None:
    # Same crash pattern and same other outputs: same behaviour, one cluster.
    result = semantic_entropy([(N, "x"), (N, "x")])
    assert result.entropy == 0.0
    # Same outputs where both ran, but crashes on different inputs: two clusters.
    assert semantic_entropy([(N, "x", "y"), ("w", "x", N)]).entropy == 1.0


def test_crash_is_not_the_string_none() -> None:
    assert semantic_entropy([("None",), (N,), ("None",)]).cluster_sizes == (2,)


def test_ragged_or_empty_behaviours_are_errors() -> None:
    with pytest.raises(ConsensusError, match="different lengths"):
        semantic_entropy([("1",), ("1", "2")])
    with pytest.raises(ConsensusError, match="at least one input"):
        semantic_entropy([(), ()])


def test_consensus_with_partial_crash() -> None:
    # input 0: A,B,C ran, all "1"          -> A,B,C: 3/3
    # input 1: A,B,C ran: "2","2","9"      -> A,B: 2/3, C: 1/3
    # input 2: only A,B ran, both "3"      -> A,B: 2/2, C crashed: 0
    # A = B = (1 + 2/3 + 1)/3 = 8/9;  C = (1 + 1/3 + 0)/3 = 4/9;  D (all crashed) = 0
    scores = consensus_scores([("1", "2", "3"), ("1", "2", "3"), ("1", "9", N), (N, N, N)])
    assert scores == (8 / 9, 8 / 9, 4 / 9, 0.0)


def test_consensus_counts_itself_and_is_exact_for_ties() -> None:
    # Each program alone on its input gets 1 there, 0 where it crashed: 1/2 each.
    assert consensus_scores([("a", N), (N, "b")]) == (0.5, 0.5)
    # A lone program agrees with itself.
    assert consensus_scores([("a",)]) == (1.0,)


def test_pair_positions_ties_and_rejected_order() -> None:
    # consensus: 1/5, 3/5, 2/5, 2/5, 3/5 -> chosen [1, 4]; rejected [0, 2, 3]
    consensus = [0.2, 0.6, 0.4, 0.4, 0.6]
    crashed = [False] * 5
    programs = ["p0", "p1", "p2", "p3", "p4"]
    assert pair_positions(consensus, crashed, programs, 10) == [
        (1, 0),
        (1, 2),
        (1, 3),
        (4, 0),
        (4, 2),
        (4, 3),
    ]
    assert pair_positions(consensus, crashed, programs, 3) == [(1, 0), (1, 2), (1, 3)]
    assert pair_positions(consensus, crashed, programs, 0) == []


def test_pair_positions_tolerance_treats_float_noise_as_a_tie() -> None:
    pairs = pair_positions([0.7, 0.7 - 1e-15, 0.1], [False] * 3, ["a", "b", "c"], 5)
    assert pairs == [(0, 2), (1, 2)]


def test_pair_positions_prefers_non_crashed_rejected_then_falls_back() -> None:
    # sample 1 fully crashed (lowest), sample 2 lower but alive: only 2 is rejected.
    assert pair_positions([1.0, 0.0, 0.5], [False, True, False], ["a", "b", "c"], 3) == [(0, 2)]
    # no alive lower program: fall back to the fully crashed ones.
    assert pair_positions([1.0, 0.0, 0.0], [False, True, True], ["a", "b", "c"], 3) == [
        (0, 1),
        (0, 2),
    ]


def test_pair_positions_all_equal_gives_nothing() -> None:
    assert pair_positions([0.5, 0.5], [False, False], ["a", "b"], 3) == []
    assert pair_positions([0.0, 0.0], [True, True], ["a", "b"], 3) == []


def test_pair_positions_rejects_negative_cap() -> None:
    with pytest.raises(ConsensusError):
        pair_positions([1.0, 0.0], [False, False], ["a", "b"], -1)
