"""Nodes of the evaluation stage: greedy pass@1 of the starting and the trained model.

Only this stage reads ``oracles``: the round itself never sees an expected output.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from conself.metrics import (
    confidence_correlations,
    evaluate_programs,
    pair_oracle_rate,
    paired_bootstrap_ci,
    pass_at_1_table,
    sample_verdicts,
    se_distribution_figure,
    se_vs_correctness_figure,
    threshold_sweep,
    threshold_sweep_figure,
)
from conself.pipelines.execution.nodes import sandbox_config
from conself.sampling import EVAL_SAMPLE_COLUMNS, sample_plain
from conself.sampling.lazy import lazy_sampler, sampler_identity
from conself.sandbox import Sandbox
from conself.shards import run_by_problem_shards

logger = logging.getLogger(__name__)

MODELS = ("start", "trained")


def generate_eval_programs(
    eval_problems: pd.DataFrame,
    base_model: dict[str, Any],
    round_model: dict[str, Any],
    params: dict[str, Any],
    resume: dict[str, Any],
) -> pd.DataFrame:
    """Greedy programs from the plain prompt for the starting and the trained model.

    When training was skipped the trained model is the starting model, so its
    programs are the starting model's (greedy decoding is deterministic). Programs
    are stored per shard under the model's identity, so round N+1's starting model
    (round N's trained model) reuses round N's programs instead of decoding again.
    """
    trained = {
        **base_model,
        "adapter_dir": round_model.get("adapter_dir"),
        "adapter_fingerprints": round_model.get("adapter_fingerprints") or [],
    }
    tables = []
    for label, model in (("start", base_model), ("trained", trained)):
        if label == "trained" and round_model.get("adapter_dir") is None:
            tables.append(tables[0].assign(model=label))
            continue
        sampler = lazy_sampler(model, params)
        table = run_by_problem_shards(
            "eval_samples",
            eval_problems,
            [sampler_identity(model, params), params["max_new_tokens"], params["batch_size"]],
            params,
            resume,
            lambda part, seed, sampler=sampler: sample_plain(
                sampler.get(),
                part,
                n=1,
                temperature=0.0,
                max_new_tokens=params["max_new_tokens"],
                batch_size=params["batch_size"],
                seed=seed,
            ),
            items_per_problem=1,
            unit="programs",
            columns=EVAL_SAMPLE_COLUMNS,
            tokens=lambda table: int(table["n_tokens"].sum()),
        )
        tables.append(table.assign(model=label))
    return pd.concat(tables, ignore_index=True)


def score_eval_programs(
    eval_samples: pd.DataFrame,
    eval_problems: pd.DataFrame,
    oracles: pd.DataFrame,
    execution: dict[str, Any],
    params: dict[str, Any],
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Oracle verdicts per (model, problem), pass@1 overall and per difficulty, with a
    paired bootstrap interval on the start-to-trained difference."""
    with Sandbox(sandbox_config(execution.get("sandbox") or {})) as sandbox:
        results = evaluate_programs(eval_samples, eval_problems, oracles, sandbox)
    metrics: dict[str, Any] = {}
    by_model = {m: results[results["model"] == m].sort_values("problem_id") for m in MODELS}
    for model, table in by_model.items():
        metrics[f"evaluation.pass_at_1.{model}"] = (
            float(table["passed"].mean()) if len(table) else 0.0
        )
    diff, low, high = paired_bootstrap_ci(
        by_model["start"]["passed"].tolist(),
        by_model["trained"]["passed"].tolist(),
        n_resamples=params["bootstrap_resamples"],
        seed=params["bootstrap_seed"],
    )
    metrics |= {
        "evaluation.pass_at_1.diff": diff,
        "evaluation.pass_at_1.diff_ci_low": low,
        "evaluation.pass_at_1.diff_ci_high": high,
        "evaluation.n_problems": float(len(eval_problems)),
    }
    logger.info(
        "pass@1 start %.3f -> trained %.3f (diff %.3f, 95%% CI [%.3f, %.3f])",
        metrics["evaluation.pass_at_1.start"],
        metrics["evaluation.pass_at_1.trained"],
        diff,
        low,
        high,
    )
    with_difficulty = results.merge(
        eval_problems[["problem_id", "difficulty"]], on="problem_id", how="left"
    )
    summary = pass_at_1_table(with_difficulty).assign(difficulty="all")
    if with_difficulty["difficulty"].notna().any():
        summary = pd.concat(
            [summary, pass_at_1_table(with_difficulty, by=("difficulty",))], ignore_index=True
        )
    return results, summary, {k: {"value": float(v), "step": 0} for k, v in metrics.items()}


def summarise_round(
    problems: pd.DataFrame,
    curriculum: pd.DataFrame,
    preference_pairs: pd.DataFrame,
    round_model: dict[str, Any],
    eval_results: pd.DataFrame,
) -> dict[str, Any]:
    """The round's headline numbers in one small report (also an MLflow artifact)."""
    passed = eval_results.groupby("model")["passed"].mean().to_dict()
    return {
        "base_model": round_model["base"],
        "adapter_dir": round_model.get("adapter_dir"),
        "training_skipped_reason": round_model.get("skipped_reason"),
        "n_problems": len(problems),
        "curriculum_size": int(curriculum["selected"].sum()),
        "curriculum_reasons": {k: int(v) for k, v in curriculum["reason"].value_counts().items()},
        "n_pairs": len(preference_pairs),
        "mean_pair_weight": float(preference_pairs["weight"].mean())
        if len(preference_pairs)
        else None,
        "n_eval_problems": int(eval_results["problem_id"].nunique()),
        "pass_at_1": {k: float(v) for k, v in passed.items()},
    }


def diagnose_round(
    samples: pd.DataFrame,
    problems: pd.DataFrame,
    oracles: pd.DataFrame,
    curriculum: pd.DataFrame,
    sample_consensus: pd.DataFrame,
    preference_pairs: pd.DataFrame,
    curriculum_params: dict[str, Any],
    preference_params: dict[str, Any],
    execution: dict[str, Any],
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, Any], Any, Any, Any]:
    """Analysis only: how often consensus picked the oracle-correct program, and why tau.

    Reads oracles, so nothing that feeds the pairs or the training may depend on it.
    """
    with Sandbox(sandbox_config(execution.get("sandbox") or {})) as sandbox:
        verdicts = sample_verdicts(samples, problems, oracles, sandbox)
    rate, pair_table = pair_oracle_rate(preference_pairs, verdicts)
    stats = curriculum.drop(columns=["normalized_entropy", "selected", "reason"])
    sweep = threshold_sweep(
        stats,
        samples,
        sample_consensus,
        verdicts,
        max_crash_rate=curriculum_params["max_crash_rate"],
        max_pairs_per_problem=preference_params["max_pairs_per_problem"],
    )
    per_problem, correlations = confidence_correlations(stats, samples, verdicts, sample_consensus)
    metrics = {
        "diagnostics.pair_oracle_rate": rate,
        "diagnostics.sample_pass_rate": float(verdicts["passed"].mean())
        if len(verdicts)
        else float("nan"),
    }
    metrics |= {f"diagnostics.spearman.{row.signal}": row.rho for row in correlations.itertuples()}
    logger.info("pair oracle rate %.3f; threshold sweep:\n%s", rate, sweep.to_string(index=False))
    return (
        verdicts,
        pair_table,
        sweep,
        correlations,
        # NaN kept (undefined correlation): every round logs the same metric keys
        {k: {"value": float(v), "step": 0} for k, v in metrics.items()},
        se_distribution_figure(curriculum, curriculum_params["tau"]),
        threshold_sweep_figure(sweep),
        se_vs_correctness_figure(per_problem),
    )
