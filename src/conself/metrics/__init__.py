"""Evaluation engine: oracle verdicts, pass@k and paired bootstrap intervals.

Plain Python (never imports Kedro); all program execution goes through
:mod:`conself.sandbox`. Public API::

    from conself.metrics import evaluate_programs, pass_at_k, paired_bootstrap_ci
    results = evaluate_programs(candidates, problems, oracles, sandbox)  # one row/candidate
    pass_at_1_table(results)            # per model: mean pass@1 over problems
    compare_models(results, "start", "trained")  # pass@1 of both, b - a with 95% CI

Comparison semantics per benchmark: :mod:`conself.metrics.compare`.
"""

from conself.metrics.bootstrap import compare_models, paired_bootstrap_ci
from conself.metrics.compare import call_output_matches, stdio_output_matches, values_match
from conself.metrics.evaluate import (
    CANDIDATE_COLUMNS,
    EVAL_RESULT_COLUMNS,
    evaluate_programs,
    resolve_entry_point,
)
from conself.metrics.passk import pass_at_1_table, pass_at_k, pass_at_k_table, per_problem_table

__all__ = [
    "CANDIDATE_COLUMNS",
    "EVAL_RESULT_COLUMNS",
    "call_output_matches",
    "compare_models",
    "evaluate_programs",
    "paired_bootstrap_ci",
    "pass_at_1_table",
    "pass_at_k",
    "pass_at_k_table",
    "per_problem_table",
    "resolve_entry_point",
    "stdio_output_matches",
    "values_match",
]
