"""Preference: curriculum + consensus -> weighted chosen/rejected pairs."""

from kedro.pipeline import Pipeline, node

from .nodes import build_preference_pairs


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                build_preference_pairs,
                inputs=[
                    "curriculum",
                    "samples",
                    "sample_consensus",
                    "problems",
                    "params:preference",
                ],
                outputs=["preference_pairs", "preference_metrics"],
                name="build_preference_pairs",
            )
        ],
        tags=["preference"],
    )
