"""problem_stats and sample_consensus on hand-built tables, and their input checks."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from conself.consensus import ConsensusError, problem_stats, sample_consensus

N = None

# 3 inputs, 4 programs (hand-computed in test_consensus_entropy):
# A, B = ("1","2","3"); C = ("1","9",crash); D crashed everywhere.
# crash_rate 1/4, SE 0.918295834..., consensus 8/9, 8/9, 4/9, 0.
PARTIAL = {
    "partial": [
        ("A", ["1", "2", "3"]),
        ("B", ["1", "2", "3"]),
        ("C", ["1", "9", N]),
        ("D", [N, N, N]),
    ]
}


def test_problem_stats_partial_crash(tables) -> None:
    stats = problem_stats(*tables(PARTIAL))
    row = stats.iloc[0]
    assert row["problem_id"] == "partial"
    assert row["n_samples"] == 4
    assert row["n_inputs"] == 3
    assert row["n_fully_crashed"] == 1
    assert row["n_partially_crashed"] == 1
    assert row["crash_rate"] == 0.25
    assert row["semantic_entropy"] == pytest.approx(0.9182958340544896, abs=1e-15)
    assert row["n_clusters"] == 2
    assert list(row["cluster_sizes"]) == [2, 1]
    assert row["majority_share"] == pytest.approx(2 / 3)


def test_sample_consensus_partial_crash(tables) -> None:
    table = sample_consensus(*tables(PARTIAL))
    assert list(table.columns) == [
        "problem_id",
        "sample_id",
        "consensus",
        "fully_crashed",
        "n_crashed_inputs",
        "cluster_id",
    ]
    assert table["sample_id"].tolist() == [0, 1, 2, 3]
    assert table["consensus"].tolist() == [8 / 9, 8 / 9, 4 / 9, 0.0]
    assert table["fully_crashed"].tolist() == [False, False, False, True]
    assert table["n_crashed_inputs"].tolist() == [0, 0, 1, 3]
    assert table["cluster_id"].tolist() == [0, 0, 1, -1]


def test_all_crash_and_all_agree(tables) -> None:
    spec = {
        "crash": [("a", [N, N]), ("b", [N, N])],
        "agree": [("a", ["1", "2"]), ("b", ["1", "2"]), ("c", ["1", "2"])],
    }
    stats = problem_stats(*tables(spec)).set_index("problem_id")
    assert stats.loc["crash", "crash_rate"] == 1.0
    assert math.isnan(stats.loc["crash", "semantic_entropy"])
    assert stats.loc["crash", "n_clusters"] == 0
    assert list(stats.loc["crash", "cluster_sizes"]) == []
    assert math.isnan(stats.loc["crash", "majority_share"])
    assert stats.loc["agree", "semantic_entropy"] == 0.0
    assert stats.loc["agree", "crash_rate"] == 0.0
    consensus = sample_consensus(*tables(spec))
    assert consensus.loc[consensus["problem_id"] == "crash", "consensus"].tolist() == [0.0, 0.0]
    assert consensus.loc[consensus["problem_id"] == "agree", "consensus"].tolist() == [1.0] * 3


def test_three_versus_one_table(tables) -> None:
    spec = {"p": [("a", ["1"]), ("b", ["1"]), ("c", ["2"]), ("d", ["1"])]}
    stats = problem_stats(*tables(spec))
    assert stats.loc[0, "semantic_entropy"] == pytest.approx(0.8112781244591328, abs=1e-15)
    assert sample_consensus(*tables(spec))["consensus"].tolist() == [0.75, 0.75, 0.25, 0.75]


def test_order_is_first_appearance_then_sample_id(tables) -> None:
    samples, executions = tables({"z": [("a", ["1"]), ("b", ["2"])], "a": [("c", ["1"])]})
    shuffled = samples.iloc[[1, 2, 0]].reset_index(drop=True)
    assert problem_stats(shuffled, executions)["problem_id"].tolist() == ["z", "a"]
    table = sample_consensus(shuffled, executions.iloc[::-1])
    assert list(zip(table["problem_id"], table["sample_id"], strict=True)) == [
        ("z", 0),
        ("z", 1),
        ("a", 0),
    ]


def test_rows_without_program_are_not_samples(tables) -> None:
    samples, executions = tables({"p": [("a", ["1"]), ("b", ["2"])]})
    dropped = pd.DataFrame(
        [{"problem_id": "p", "sample_id": 7, "program": None, "completion": "no fence"}]
    )
    stats = problem_stats(pd.concat([samples, dropped], ignore_index=True), executions)
    assert stats.loc[0, "n_samples"] == 2
    assert stats.loc[0, "semantic_entropy"] == 1.0


def test_crash_rate_counts_only_full_crashes(tables) -> None:
    # 5 programs, 4 fully crashed: crash_rate exactly 4/5 == 0.8.
    spec = {"p": [("a", ["1", "2"])] + [(f"c{i}", [N, N]) for i in range(4)]}
    stats = problem_stats(*tables(spec))
    assert stats.loc[0, "crash_rate"] == 0.8
    assert stats.loc[0, "semantic_entropy"] == 0.0


def test_empty_tables_give_empty_frames(tables) -> None:
    samples, executions = tables({"p": [("a", ["1"])]})
    assert problem_stats(samples.iloc[:0], executions.iloc[:0]).empty
    empty = sample_consensus(samples.iloc[:0], executions.iloc[:0])
    assert empty.empty
    assert "consensus" in empty.columns


# --- input checks: a lost row must never look like a crash -----------------------


def test_missing_execution_row_is_an_error(tables) -> None:
    samples, executions = tables(PARTIAL)
    holed = executions[
        ~((executions["sample_id"] == 2) & (executions["input_index"] == 1))
    ].reset_index(drop=True)
    with pytest.raises(ConsensusError, match=r"problem 'partial' sample 2 input 1: missing"):
        problem_stats(samples, holed)
    with pytest.raises(ConsensusError, match=r"sample 2 input 1"):
        sample_consensus(samples, holed)


def test_sample_without_any_execution_is_an_error(tables) -> None:
    samples, executions = tables(PARTIAL)
    with pytest.raises(ConsensusError, match=r"sample 3 input 0: missing"):
        problem_stats(samples, executions[executions["sample_id"] != 3])


def test_problems_table_fixes_the_number_of_inputs(tables) -> None:
    samples, executions = tables({"p": [("a", ["1", "2"]), ("b", ["1", "3"])]})
    problems = pd.DataFrame([{"problem_id": "p", "test_inputs": ["x", "y", "z"]}])
    # input 2 is missing for every sample: only the problems table can tell.
    with pytest.raises(ConsensusError, match=r"sample 0 input 2: missing"):
        problem_stats(samples, executions, problems)
    problems.at[0, "test_inputs"] = ["x", "y"]
    assert problem_stats(samples, executions, problems).loc[0, "semantic_entropy"] == 1.0


def test_duplicate_and_unknown_rows_are_errors(tables) -> None:
    samples, executions = tables({"p": [("a", ["1"]), ("b", ["2"])]})
    with pytest.raises(ConsensusError, match="duplicate execution row"):
        problem_stats(samples, pd.concat([executions, executions.iloc[[0]]]))
    stray = executions.iloc[[0]].assign(sample_id=9)
    with pytest.raises(ConsensusError, match="no such sample"):
        problem_stats(samples, pd.concat([executions, stray]))
    with pytest.raises(ConsensusError, match="sample_id 1 twice"):
        problem_stats(pd.concat([samples, samples.iloc[[1]]]), executions)
    with pytest.raises(ConsensusError, match="out of range"):
        problem_stats(
            samples,
            pd.concat([executions, executions.iloc[[0]].assign(input_index=5)]),
            pd.DataFrame([{"problem_id": "p", "test_inputs": ["x"]}]),
        )


def test_outcome_and_output_must_agree(tables) -> None:
    samples, executions = tables({"p": [("a", ["1"]), ("b", ["2"])]})
    ok_without_output = executions.copy()
    ok_without_output["output"] = ok_without_output["output"].astype(object)
    ok_without_output.at[0, "output"] = None
    with pytest.raises(ConsensusError, match="outcome 'ok' but output is missing"):
        problem_stats(samples, ok_without_output)
    crash_with_output = executions.copy()
    crash_with_output.at[0, "outcome"] = "time_limit"
    with pytest.raises(ConsensusError, match="'time_limit' is a crash but output"):
        problem_stats(samples, crash_with_output)


def test_missing_columns_are_named(tables) -> None:
    samples, executions = tables({"p": [("a", ["1"])]})
    with pytest.raises(ConsensusError, match=r"'executions' lacks column\(s\) \['outcome'\]"):
        problem_stats(samples, executions.drop(columns="outcome"))


def test_every_crash_class_is_a_crash(tables) -> None:
    samples, executions = tables({"p": [("a", ["1", "1"]), ("b", [N, N])]})
    classes = ["compile_error", "nonzero_exit", "memory_limit", "output_limit", "signal"]
    for outcome in [*classes, "time_limit", "no_result"]:
        executions.loc[executions["sample_id"] == 1, "outcome"] = outcome
        stats = problem_stats(samples, executions)
        assert stats.loc[0, "n_fully_crashed"] == 1, outcome


def test_problem_without_inputs_or_unknown_to_problems_is_an_error(tables) -> None:
    samples, executions = tables({"p": [("a", ["1"])], "q": [("b", ["2"])]})
    with pytest.raises(ConsensusError, match=r"problem 'q': no test inputs"):
        problem_stats(samples, executions[executions["problem_id"] == "p"])
    problems = pd.DataFrame([{"problem_id": "p", "test_inputs": ["x"]}])
    with pytest.raises(ConsensusError, match=r"problem 'q' has samples but is not in 'problems'"):
        problem_stats(samples, executions, problems)
