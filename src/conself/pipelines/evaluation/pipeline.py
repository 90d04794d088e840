"""Evaluation: greedy pass@1 of the starting and trained model on held-out problems."""

from kedro.pipeline import Pipeline, node

from .nodes import diagnose_round, generate_eval_programs, score_eval_programs, summarise_round


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                generate_eval_programs,
                inputs=[
                    "eval_problems",
                    "base_model",
                    "round_model",
                    "params:evaluation",
                    "params:resume",
                ],
                outputs="eval_samples",
                name="generate_eval_programs",
            ),
            node(
                score_eval_programs,
                inputs=[
                    "eval_samples",
                    "eval_problems",
                    "oracles",
                    "params:execution",
                    "params:evaluation",
                ],
                outputs=["eval_results", "eval_summary", "evaluation_metrics"],
                name="score_eval_programs",
            ),
            node(
                summarise_round,
                inputs=[
                    "problems",
                    "curriculum",
                    "preference_pairs",
                    "round_model",
                    "eval_results",
                ],
                outputs="round_report",
                name="summarise_round",
            ),
            node(
                diagnose_round,
                inputs=[
                    "samples",
                    "problems",
                    "oracles",
                    "curriculum",
                    "sample_consensus",
                    "preference_pairs",
                    "params:curriculum",
                    "params:preference",
                    "params:execution",
                ],
                outputs=[
                    "sample_verdicts",
                    "pair_diagnostics",
                    "threshold_sweep",
                    "confidence_correlations",
                    "diagnostics_metrics",
                    "se_distribution_plot",
                    "threshold_sweep_plot",
                    "se_vs_correctness_plot",
                ],
                name="diagnose_round",
            ),
        ],
        tags=["evaluation"],
    )
