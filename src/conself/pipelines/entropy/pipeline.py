"""Entropy: executions -> per-problem semantic entropy and per-program consensus."""

from kedro.pipeline import Pipeline, node

from .nodes import compute_problem_stats, compute_sample_consensus


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                compute_problem_stats,
                inputs=["samples", "executions", "problems"],
                outputs="problem_stats",
                name="compute_problem_stats",
            ),
            node(
                compute_sample_consensus,
                inputs=["samples", "executions", "problems"],
                outputs="sample_consensus",
                name="compute_sample_consensus",
            ),
        ],
        tags=["entropy"],
    )
