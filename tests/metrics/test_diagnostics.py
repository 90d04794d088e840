"""Oracle diagnostics on hand-built tables (expected numbers worked out in the comments)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from conself.consensus import problem_stats, sample_consensus, select_curriculum
from conself.metrics import (
    CORRELATION_COLUMNS,
    DEFAULT_TAUS,
    PER_PROBLEM_COLUMNS,
    SWEEP_COLUMNS,
    VERDICT_COLUMNS,
    confidence_correlations,
    pair_oracle_rate,
    sample_verdicts,
    spearman,
    threshold_sweep,
)
from conself.problems import load_problems
from conself.sandbox import Sandbox

# ------------------------------------------------------------------ a hand-built round
#
# Three problems, one test input each, four programs each (distinct texts).
#   A: outputs 1 1 1 2  -> clusters {3, 1}: SE = -(.75 log2 .75 + .25 log2 .25) = 0.811278
#      consensus .75 .75 .75 .25 -> pairs (0,3) (1,3) (2,3)              [chosen weight .75]
#   B: outputs a a b c  -> clusters {2, 1, 1}: SE = .5*1 + 2*(.25*2) = 1.5
#      consensus .5 .5 .25 .25 -> pairs (0,2) (0,3) (1,2) (max 3)         [chosen weight .5]
#   C: outputs w x y z  -> clusters {1,1,1,1}: SE = 2.0, consensus all .25 -> no pair
# Min-max normalised SE: A = 0, B = (1.5 - 0.811278) / (2 - 0.811278) = 0.579380, C = 1.
# A fifth row of A has no extracted program: it is in no table but the verdicts.
#
# Oracle verdicts:  A: pass pass pass fail (+ no_program fails)   -> pass rate 3/4
#                   B: pass fail fail pass                         -> pass rate 2/4
#                   C: fail fail fail fail                         -> pass rate 0
# Oracle-consistent pairs (chosen passes, rejected fails):
#   A: (0,3) yes, (1,3) yes, (2,3) yes                 -> 3 of 3
#   B: (0,2) yes, (0,3) no (rejected passes), (1,2) no (chosen fails) -> 1 of 3

OUTPUTS = {"A": ["1", "1", "1", "2"], "B": ["a", "a", "b", "c"], "C": ["w", "x", "y", "z"]}
PASSED = {"A": [True, True, True, False], "B": [True, False, False, True], "C": [False] * 4}
NLL = {"A": [0.2, 0.4, 0.3, 0.3], "B": [0.5, 0.5, 0.4, 0.6], "C": [0.9, 0.8, 1.0, 0.9]}
TOKEN_ENTROPY = {"A": [2.0] * 4, "B": [1.0] * 4, "C": [0.5] * 4}
SE_A = -(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25))


@pytest.fixture(scope="module")
def round_tables() -> dict[str, pd.DataFrame]:
    samples, executions, verdicts = [], [], []
    for pid, outputs in OUTPUTS.items():
        for sid, output in enumerate(outputs):
            program = f"print({pid!r} + {sid})  # -> {output}"
            samples.append(
                {
                    "problem_id": pid,
                    "sample_id": sid,
                    "program": program,
                    "completion": f"```python\n{program}\n```",
                    "mean_nll": NLL[pid][sid],
                    "mean_topk_entropy": TOKEN_ENTROPY[pid][sid],
                }
            )
            executions.append(
                {
                    "problem_id": pid,
                    "sample_id": sid,
                    "input_index": 0,
                    "outcome": "ok",
                    "output": output,
                }
            )
            verdicts.append({"problem_id": pid, "sample_id": sid, "passed": PASSED[pid][sid]})
    samples.append(
        {
            "problem_id": "A",
            "sample_id": 4,
            "program": None,
            "completion": "no code",
            "mean_nll": 5.0,
            "mean_topk_entropy": 9.0,
        }
    )
    verdicts.append({"problem_id": "A", "sample_id": 4, "passed": False})
    samples_df, executions_df = pd.DataFrame(samples), pd.DataFrame(executions)
    return {
        "samples": samples_df,
        "stats": problem_stats(samples_df, executions_df),
        "consensus": sample_consensus(samples_df, executions_df),
        "verdicts": pd.DataFrame(verdicts),
    }


def test_fixture_has_the_hand_computed_entropies(round_tables: dict[str, pd.DataFrame]) -> None:
    se = round_tables["stats"].set_index("problem_id")["semantic_entropy"]
    assert se.to_dict() == pytest.approx({"A": SE_A, "B": 1.5, "C": 2.0})
    normalized = select_curriculum(round_tables["stats"], tau=0.3).set_index("problem_id")
    assert normalized["normalized_entropy"].to_dict() == pytest.approx(
        {"A": 0.0, "B": (1.5 - SE_A) / (2.0 - SE_A), "C": 1.0}
    )


# ------------------------------------------------------------------ pair oracle rate


def test_pair_oracle_rate_on_four_pairs() -> None:
    verdicts = pd.DataFrame(
        {
            "problem_id": ["p"] * 4 + ["q"] * 2,
            "sample_id": [0, 1, 2, 3, 0, 1],
            "passed": [True, True, False, False, True, False],
        }
    )
    pairs = pd.DataFrame(
        {
            "problem_id": ["p", "p", "p", "q"],
            "pair_index": [0, 1, 2, 0],
            "chosen_sample_id": [0, 0, 2, 0],
            "rejected_sample_id": [1, 2, 3, 1],
            "weight": [0.7, 0.7, 0.4, 0.9],
        }
    )
    # p(0 pass, 1 pass) no; p(0 pass, 2 fail) yes; p(2 fail, 3 fail) no; q(0 pass, 1 fail) yes
    # -> 2 of 4 = 0.5
    rate, table = pair_oracle_rate(pairs, verdicts)
    assert rate == 0.5
    assert table["oracle_consistent"].tolist() == [False, True, False, True]
    assert table["chosen_passed"].tolist() == [True, True, False, True]
    assert table["rejected_passed"].tolist() == [True, False, False, False]
    assert list(table.columns[: len(pairs.columns)]) == list(pairs.columns)


def test_pair_oracle_rate_without_pairs_is_nan() -> None:
    verdicts = pd.DataFrame({"problem_id": ["p"], "sample_id": [0], "passed": [True]})
    pairs = pd.DataFrame(columns=["problem_id", "chosen_sample_id", "rejected_sample_id"])
    rate, table = pair_oracle_rate(pairs, verdicts)
    assert math.isnan(rate)
    assert table.empty and "oracle_consistent" in table


def test_pair_oracle_rate_needs_every_verdict() -> None:
    verdicts = pd.DataFrame({"problem_id": ["p"], "sample_id": [0], "passed": [True]})
    pairs = pd.DataFrame({"problem_id": ["p"], "chosen_sample_id": [0], "rejected_sample_id": [7]})
    with pytest.raises(ValueError, match=r"problem 'p' sample 7 \(rejected_sample_id\)"):
        pair_oracle_rate(pairs, verdicts)
    doubled = pd.concat([verdicts, verdicts])
    with pytest.raises(ValueError, match="sample_id 0 twice"):
        pair_oracle_rate(pairs, doubled)


# ------------------------------------------------------------------ threshold sweep


def test_threshold_sweep_hand_computed(round_tables: dict[str, pd.DataFrame]) -> None:
    sweep = threshold_sweep(
        round_tables["stats"],
        round_tables["samples"],
        round_tables["consensus"],
        round_tables["verdicts"],
        taus=(1.0, 0.6, 0.3),
    )
    assert list(sweep.columns) == SWEEP_COLUMNS
    # tau 1.0: A (0) and B (0.579) < 1; C (exactly 1.0, the max SE) is NOT < 1 -> dropped.
    #          pairs 3 + 3 = 6, consistent 3 + 1 = 4 -> 4/6; weight (3*.75 + 3*.5)/6 = .625
    # tau 0.6: the same two problems (0.579 < 0.6).
    # tau 0.3: A only -> 3 pairs, 3 consistent -> 1.0; weight .75
    assert sweep["tau"].tolist() == [1.0, 0.6, 0.3]
    assert sweep["n_problems"].tolist() == [2, 2, 1]
    assert sweep["n_problems_with_pairs"].tolist() == [2, 2, 1]
    assert sweep["n_pairs"].tolist() == [6, 6, 3]
    assert sweep["n_oracle_consistent"].tolist() == [4, 4, 3]
    assert sweep["oracle_rate"].tolist() == pytest.approx([4 / 6, 4 / 6, 1.0])
    assert sweep["mean_weight"].tolist() == pytest.approx([0.625, 0.625, 0.75])


def test_threshold_sweep_defaults_and_empty_curriculum(
    round_tables: dict[str, pd.DataFrame],
) -> None:
    assert DEFAULT_TAUS == (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1)
    sweep = threshold_sweep(
        round_tables["stats"],
        round_tables["samples"],
        round_tables["consensus"],
        round_tables["verdicts"],
    )
    assert sweep["tau"].tolist() == list(DEFAULT_TAUS)
    # 0.579 < tau for tau >= 0.6 -> 2 problems; below that only A.
    assert sweep["n_problems"].tolist() == [2] * 5 + [1] * 5
    # max_crash_rate 0 drops every problem (crash_rate 0 >= 0): no pairs, NaN rate.
    empty = threshold_sweep(
        round_tables["stats"],
        round_tables["samples"],
        round_tables["consensus"],
        round_tables["verdicts"],
        taus=(0.5,),
        max_crash_rate=0.0,
    )
    assert empty[["n_problems", "n_pairs"]].iloc[0].tolist() == [0, 0]
    assert math.isnan(empty["oracle_rate"].iloc[0]) and math.isnan(empty["mean_weight"].iloc[0])


def test_threshold_sweep_respects_max_pairs(round_tables: dict[str, pd.DataFrame]) -> None:
    # one pair per problem: A (0,3) yes, B (0,2) yes -> 2 of 2
    sweep = threshold_sweep(
        round_tables["stats"],
        round_tables["samples"],
        round_tables["consensus"],
        round_tables["verdicts"],
        taus=(1.0,),
        max_pairs_per_problem=1,
    )
    assert sweep[["n_pairs", "n_oracle_consistent"]].iloc[0].tolist() == [2, 2]


# ------------------------------------------------------------------ spearman


def test_spearman_monotone_reversed_ties_and_degenerate() -> None:
    x = [1.0, 2.0, 3.0, 4.0, 5.0]
    assert spearman(x, [v**3 for v in x]) == (5, pytest.approx(1.0))  # monotone, not linear
    assert spearman(x, [-math.exp(v) for v in x]) == (5, pytest.approx(-1.0))
    # ties: y ranks 1.5 1.5 3.5 3.5; centred x ranks -1.5 -.5 .5 1.5, y -1 -1 1 1
    # -> sum of products 4 / sqrt(5 * 4) = 2 / sqrt(5)
    assert spearman([1, 2, 3, 4], [1, 1, 2, 2]) == (4, pytest.approx(2 / math.sqrt(5)))
    # NaN pairs are dropped; constant side or n < 2 -> NaN
    n, rho = spearman([1, 2, math.nan, 3], [3, 2, 1, 1])
    assert (n, rho) == (3, pytest.approx(-1.0))
    assert math.isnan(spearman([1, 2, 3], [7, 7, 7])[1])
    assert spearman([1.0], [2.0])[0] == 1 and math.isnan(spearman([1.0], [2.0])[1])
    with pytest.raises(ValueError, match="lengths differ"):
        spearman([1, 2], [1])


# ------------------------------------------------------------------ correlations


def test_confidence_correlations_hand_computed(round_tables: dict[str, pd.DataFrame]) -> None:
    per_problem, summary = confidence_correlations(
        round_tables["stats"],
        round_tables["samples"],
        round_tables["verdicts"],
        round_tables["consensus"],
    )
    assert list(per_problem.columns) == PER_PROBLEM_COLUMNS
    assert list(summary.columns) == CORRELATION_COLUMNS
    table = per_problem.set_index("problem_id")
    # A's fifth row has no program: left out (else A would be 3/5, its NLL mean 1.24)
    assert table["n_programs"].tolist() == [4, 4, 4]
    assert table["pass_rate"].tolist() == pytest.approx([0.75, 0.5, 0.0])
    assert table["solved"].tolist() == [True, True, False]
    # NLL means: A (.2+.4+.3+.3)/4 = .3, B 2/4 = .5, C 3.6/4 = .9
    assert table["mean_nll"].tolist() == pytest.approx([0.3, 0.5, 0.9])
    assert table["mean_topk_entropy"].tolist() == pytest.approx([2.0, 1.0, 0.5])
    # majority cluster: A {0,1,2} all pass -> 1; B {0,1} -> .5; C first-seen {0} fails -> 0
    assert table["majority_pass_rate"].tolist() == pytest.approx([1.0, 0.5, 0.0])

    rho = summary.set_index("signal")
    assert set(rho["target"]) == {"pass_rate"}
    # SE .81 < 1.5 < 2 while pass .75 > .5 > 0 -> -1; NLL .3 .5 .9 -> -1;
    # token entropy 2 1 .5 -> +1; majority share .75 .5 .25 -> +1; crash rate all 0 -> NaN
    assert rho.loc["semantic_entropy", ["n", "rho"]].tolist() == [3, pytest.approx(-1.0)]
    assert rho.loc["mean_nll", "rho"] == pytest.approx(-1.0)
    assert rho.loc["mean_topk_entropy", "rho"] == pytest.approx(1.0)
    assert rho.loc["majority_share", "rho"] == pytest.approx(1.0)
    assert rho.loc["crash_rate", "n"] == 3 and math.isnan(rho.loc["crash_rate", "rho"])


def test_confidence_correlations_without_optional_inputs(
    round_tables: dict[str, pd.DataFrame],
) -> None:
    samples = round_tables["samples"].drop(columns=["mean_nll", "mean_topk_entropy"])
    per_problem, summary = confidence_correlations(
        round_tables["stats"], samples, round_tables["verdicts"]
    )
    assert per_problem["mean_nll"].isna().all()
    assert per_problem["majority_pass_rate"].isna().all()
    rho = summary.set_index("signal")
    assert rho.loc["mean_nll", "n"] == 0 and math.isnan(rho.loc["mean_nll", "rho"])
    assert rho.loc["semantic_entropy", "rho"] == pytest.approx(-1.0)


def test_confidence_correlations_needs_verdicts(round_tables: dict[str, pd.DataFrame]) -> None:
    verdicts = round_tables["verdicts"].iloc[1:]
    with pytest.raises(ValueError, match="problem 'A' sample 0 has no oracle verdict"):
        confidence_correlations(round_tables["stats"], round_tables["samples"], verdicts)


# ------------------------------------------------------------------ verdicts, real sandbox

SUM = {
    "id": "sum",
    "question": "Add two numbers.",
    "starter_code": "",
    "input_output": json.dumps({"inputs": ["1 2\n", "10 -3\n"], "outputs": ["3\n", "7\n"]}),
    "difficulty": "EASY",
}


def test_sample_verdicts_with_real_sandbox(tmp_path: Path, sandbox: Sandbox) -> None:
    path = tmp_path / "taco.jsonl"
    path.write_text(json.dumps(SUM) + "\n", encoding="utf-8")
    problems, oracles = load_problems("taco", path)
    pid = str(problems["problem_id"].iloc[0])
    samples = pd.DataFrame(
        {
            "problem_id": [pid, pid, pid],
            "sample_id": [7, 3, 5],
            "program": [
                "a, b = map(int, input().split())\nprint(a + b)\n",  # right
                "a, b = map(int, input().split())\nprint(a - b)\n",  # wrong: 1-2 = -1 != 3
                None,  # no code extracted
            ],
        }
    )
    verdicts = sample_verdicts(samples, problems, oracles, sandbox)
    assert list(verdicts.columns) == VERDICT_COLUMNS
    assert verdicts["sample_id"].tolist() == [7, 3, 5]  # samples' order, its ids
    assert verdicts["passed"].tolist() == [True, False, False]
    assert verdicts["first_failure"].tolist() == [None, "wrong_answer", "no_program"]
    assert verdicts["n_passed"].tolist() == [2, 0, 0]
    assert sample_verdicts(samples.iloc[:0], problems, oracles, sandbox).empty
