"""Evaluation engine: oracle verdicts, pass@k and paired bootstrap intervals.

Plain Python (never imports Kedro); all program execution goes through
:mod:`conself.sandbox`. Public API::

    from conself.metrics import evaluate_programs, pass_at_k, paired_bootstrap_ci
    results = evaluate_programs(candidates, problems, oracles, sandbox)  # one row/candidate
    pass_at_1_table(results)            # per model: mean pass@1 over problems
    compare_models(results, "start", "trained")  # pass@1 of both, b - a with 95% CI

Comparison semantics per benchmark: :mod:`conself.metrics.compare`.

Oracle diagnostics of the label-free method (ANALYSIS ONLY, never fed to training):
:mod:`conself.metrics.diagnostics` (``sample_verdicts``, ``pair_oracle_rate``,
``threshold_sweep``, ``confidence_correlations``) and their figures in
:mod:`conself.metrics.plots`.
"""

from conself.metrics.bootstrap import compare_models, paired_bootstrap_ci
from conself.metrics.compare import call_output_matches, stdio_output_matches, values_match
from conself.metrics.diagnostics import (
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
from conself.metrics.evaluate import (
    CANDIDATE_COLUMNS,
    EVAL_RESULT_COLUMNS,
    evaluate_programs,
    resolve_entry_point,
)
from conself.metrics.passk import pass_at_1_table, pass_at_k, pass_at_k_table, per_problem_table
from conself.metrics.plots import (
    figure_png,
    se_distribution_figure,
    se_vs_correctness_figure,
    threshold_sweep_figure,
)

__all__ = [
    "CANDIDATE_COLUMNS",
    "CORRELATION_COLUMNS",
    "DEFAULT_TAUS",
    "EVAL_RESULT_COLUMNS",
    "PER_PROBLEM_COLUMNS",
    "SWEEP_COLUMNS",
    "VERDICT_COLUMNS",
    "call_output_matches",
    "compare_models",
    "confidence_correlations",
    "evaluate_programs",
    "figure_png",
    "pair_oracle_rate",
    "paired_bootstrap_ci",
    "pass_at_1_table",
    "pass_at_k",
    "pass_at_k_table",
    "per_problem_table",
    "resolve_entry_point",
    "sample_verdicts",
    "se_distribution_figure",
    "se_vs_correctness_figure",
    "spearman",
    "stdio_output_matches",
    "threshold_sweep",
    "threshold_sweep_figure",
    "values_match",
]
